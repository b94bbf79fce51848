"""Converters from Pascal VOC XML and COCO JSON to YOLO format, each returning a report of what it changed.

    from boxloss.convert import convert_voc, convert_voc_folders, convert_coco, split_dataset
    report = convert_voc("../shared/datasets/bccd/BCCD", "datasets/bccd-yolo")
    report = convert_voc_folders("labelimg/annots", "labelimg/images", "datasets/mine", val=0.2, test=0.1, seed=0)
    report = convert_coco("../shared/datasets/coco128/train2017",
                          "../shared/datasets/coco128/annotations/instances_train2017.json", "datasets/coco128-yolo")
    report = split_dataset("datasets/only-train/data.yaml", "datasets/split", val=0.2, seed=0)
    print(report.summary())

Both write 0-based pixel-edge boxes (the whole image is ``0, 0, W, H``), clipped to the image, as normalised
``class cx cy w h`` lines; both write atomically and refuse to replace an existing output unless ``force``.
The conventions for each source are in :mod:`boxloss.convert.voc` and :mod:`boxloss.convert.coco`, the
report and drop reasons in :mod:`boxloss.convert.report`, the seeded stratified split (of a VOC folder without
``ImageSets``, or of an existing YOLO dataset by :func:`split_dataset`) in :mod:`boxloss.convert.split`. Pure
Python (PIL only to read an image size that an annotation lacks, PyYAML for ``data.yaml``); nothing here imports
ultralytics.
"""

from .coco import convert_coco
from .report import ConversionError, ConversionReport
from .split import split_dataset, stratified_split
from .voc import convert_voc, convert_voc_folders

__all__ = ["convert_voc", "convert_voc_folders", "convert_coco", "split_dataset", "stratified_split",
           "ConversionError", "ConversionReport"]
