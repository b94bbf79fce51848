"""Converters from Pascal VOC XML, COCO JSON and DOTA text to YOLO format, each returning a report of what it changed.

    from boxloss.convert import convert_voc, convert_voc_folders, convert_coco, convert_dota, split_dataset
    report = convert_voc("../shared/datasets/bccd/BCCD", "datasets/bccd-yolo")
    report = convert_voc_folders("labelimg/annots", "labelimg/images", "datasets/mine", val=0.2, test=0.1, seed=0)
    report = convert_coco("../shared/datasets/coco128/train2017",
                          "../shared/datasets/coco128/annotations/instances_train2017.json", "datasets/coco128-yolo")
    report = convert_dota("datasets/dota-yolo", src="DOTA/train", tile=1024, gap=200)
    report = split_dataset("datasets/only-train/data.yaml", "datasets/split", val=0.2, seed=0)
    print(report.summary())

VOC and COCO write 0-based pixel-edge boxes (the whole image is ``0, 0, W, H``), clipped to the image, as normalised
``class cx cy w h`` lines (COCO also one polygon, ``task="segment"``, or one oriented box, ``task="obb"``, per
object); DOTA writes oriented boxes, ``class x1 y1 x2 y2 x3 y3 x4 y4``. Every converter writes through the one
split writer (:mod:`boxloss.convert.writer`), atomically, and refuses to replace an existing output unless
``force``. The conventions for each source are in :mod:`boxloss.convert.voc`, :mod:`boxloss.convert.coco` and
:mod:`boxloss.convert.dota`, the report and drop reasons in :mod:`boxloss.convert.report`, the seeded stratified
split (of a VOC folder without ``ImageSets``, or of an existing YOLO dataset by :func:`split_dataset`) in
:mod:`boxloss.convert.split`. Pure Python (PIL only to read an image size that an annotation lacks, PyYAML for
``data.yaml``); ultralytics is imported only for oriented boxes: its minimum-area rectangle (COCO ``task="obb"``)
and its DOTA splitter (``tile=``).
"""

from .coco import convert_coco
from .dota import convert_dota
from .report import ConversionError, ConversionReport
from .split import split_dataset, stratified_split
from .voc import convert_voc, convert_voc_folders
from .writer import OutputImage, write_yolo_dataset

__all__ = ["convert_voc", "convert_voc_folders", "convert_coco", "convert_dota", "split_dataset", "stratified_split",
           "write_yolo_dataset", "OutputImage", "ConversionError", "ConversionReport"]
