"""Embedded, deterministic synthetic detection dataset ("shapes") in YOLO format, with instance-segmentation
("shapes-seg") and pose ("shapes-pose") labels of the same images, and oriented boxes ("shapes-obb") of the same
shapes turned to any angle.

Why: default configs must train on a fresh machine with no download, and the data must test *localisation
quality*, so that box-regression losses (CIoU, EIoU, ...) can be told apart. A few minutes of CPU training reach
clearly non-trivial AP, while AP at IoU 0.9 stays far from saturated because the boxes are tight, many objects
are small, edges are blurred and noisy, and objects overlap.

What each image contains:

* five classes of distinct shapes (``CLASS_NAMES``): filled rectangle (aspect 1-3, sometimes rotated), filled
  ellipse (aspect 1-3, sometimes rotated), thin bar (aspect 4-10, horizontal or vertical, sometimes tilted by a few
  degrees -- the regime where EIoU and CIoU differ), ring (elliptical outline) and triangle; object long sides range
  from 6 px to 40 % of the image;
* clutter: a coloured, low-frequency background with grain or stripe texture, unlabelled curved strokes and jagged
  blobs (some strokes drawn over objects), colour variation, and a final mild Gaussian blur plus pixel noise;
* overlap and partial occlusion: objects are drawn in sequence, later ones on top.

Modules: :mod:`.render` draws one image and its exact boxes, :mod:`.annotations` derives the polygons (visible
part), keypoints (extreme points, with visibility and flip indices) and oriented boxes, :mod:`.dataset` writes and
reuses the dataset on disk, :mod:`.stats` describes it. ``python -m boxloss.data.synthetic out=DIR`` writes it
elsewhere and prints its statistics. Use :func:`ensure_dataset` to obtain a ``data.yaml`` path, generating the dataset
on first use.
"""

from .annotations import FLIP_IDX, KEYPOINT_NAMES, KPT_SHAPE
from .dataset import (DEFAULT_TRAIN, DEFAULT_VAL, NAME, TASK_NAMES, VERSION, default_root, ensure_dataset, generate,
                      label_text)
from .render import (CLASS_NAMES, DEFAULT_IMGSZ, DEFAULT_MAX_OBJECTS, DEFAULT_MIN_OBJECTS, DEFAULT_MIN_VISIBLE,
                     DEFAULT_SEED, MIN_BOX_PX, THIN_ASPECT, Sample, render_sample)
from .stats import describe, format_description

__all__ = ["VERSION", "NAME", "TASK_NAMES", "KPT_SHAPE", "KEYPOINT_NAMES", "FLIP_IDX", "CLASS_NAMES", "DEFAULT_SEED",
           "DEFAULT_TRAIN", "DEFAULT_VAL", "DEFAULT_IMGSZ", "DEFAULT_MIN_OBJECTS", "DEFAULT_MAX_OBJECTS",
           "DEFAULT_MIN_VISIBLE", "MIN_BOX_PX", "THIN_ASPECT", "Sample",
           "render_sample", "generate", "ensure_dataset", "default_root", "describe", "format_description",
           "label_text"]
