"""Converters from Pascal VOC XML and COCO JSON to YOLO format, each returning a report of what it changed.

    from boxloss.convert import convert_voc, convert_coco
    report = convert_voc("../shared/datasets/bccd/BCCD", "datasets/bccd-yolo")
    report = convert_coco("../shared/datasets/coco128/train2017",
                          "../shared/datasets/coco128/annotations/instances_train2017.json", "datasets/coco128-yolo")
    print(report.summary())

Both write 0-based pixel-edge boxes (the whole image is ``0, 0, W, H``), clipped to the image, as normalised
``class cx cy w h`` lines; both write atomically and refuse to replace an existing output unless ``force``.
The conventions for each source are in :mod:`boxloss.convert.voc` and :mod:`boxloss.convert.coco`, the
report and drop reasons in :mod:`boxloss.convert.report`. Pure Python (PIL only to read an image size
that an annotation lacks, PyYAML for ``data.yaml``); nothing here imports ultralytics.
"""

from .coco import convert_coco
from .report import ConversionError, ConversionReport
from .voc import convert_voc

__all__ = ["convert_voc", "convert_coco", "ConversionError", "ConversionReport"]
