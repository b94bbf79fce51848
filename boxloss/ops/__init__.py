"""Pure box operations: DIoU-NMS in torch and the names of the NMS methods (:mod:`.nms`), IoU matrices and box
conversions in numpy (:mod:`.boxes`).

Nothing here imports ultralytics or torchvision, or any other part of boxloss: the evaluation, the datasets'
statistics and the ultralytics integration build on these, never the other way round.
"""
