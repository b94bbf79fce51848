"""Pure box operations: DIoU-NMS in torch and the names of the NMS methods (:mod:`.nms`), IoU matrices and box
conversions in numpy (:mod:`.boxes`), oriented boxes (:mod:`.rotated`: corners, the exact polygon IoU matrix, the
minimum-area rectangle).

Nothing here imports ultralytics, or any other part of boxloss: the evaluation, the datasets' statistics and the
ultralytics integration build on these, never the other way round. torchvision is imported only by
:func:`.rotated.rotated_iou`, for its rotated IoU kernel, and OpenCV by :func:`.rotated.min_area_rectangle`, when
they are called.
"""
