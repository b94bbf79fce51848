"""The detection trainer of the project: builds :class:`BoxLossDetectionModel` and checks the options."""

from __future__ import annotations

from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import DEFAULT_CFG, LOGGER, RANK

from .. import options
from .cfg import register_config_keys
from .iou_aware import add_iou_branch
from .model import BoxLossDetectionModel

register_config_keys()  # this module is what the DDP child unpickles; keep it self-sufficient


class BoxLossDetectionTrainer(DetectionTrainer):
    """``DetectionTrainer`` with the project's model (and so its criterion); options validated up front."""

    def __init__(self, cfg=DEFAULT_CFG, overrides=None, _callbacks=None):
        super().__init__(cfg=cfg, overrides=overrides, _callbacks=_callbacks)
        options.validate(vars(self.args))

    def get_model(self, cfg=None, weights=None, verbose: bool = True):
        model = self.set_model_names_for_load(
            BoxLossDetectionModel(cfg, nc=self.data["nc"], ch=self.data["channels"], verbose=verbose and RANK == -1)
        )
        opts = options.resolve(self.args)
        if opts["iou_aware"]:  # before loading: stock weights fill every layer but the new branch
            add_iou_branch(model, opts["iou_aware_alpha"], opts["iou_aware_min_cls"])
        if weights:
            model.load(weights)
        return model

    def set_model_attributes(self):
        super().set_model_attributes()
        opts = options.resolve(self.args)
        if RANK in {-1, 0}:
            LOGGER.info(f"boxloss: box_loss={opts['box_loss']} cls_loss={opts['cls_loss']} "
                        f"iou_balanced_loc={opts['iou_balanced_loc']} iou_balanced_cls={opts['iou_balanced_cls']} "
                        f"iou_aware={opts['iou_aware']}")
