"""The trainers of the project (detection, segmentation, pose): build the project's models, check the options, keep
the state.

The criterion's state (``model.boxloss_state``: IoU-balanced ``w_loc: auto``, running means of stateful losses) is
one dict shared by the training model and the EMA model: ultralytics saves the EMA model in every checkpoint, so the
state travels with it, and on resume it is restored before the criterion is rebuilt.
"""

from __future__ import annotations

import copy

from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.models.yolo.pose import PoseTrainer
from ultralytics.models.yolo.segment import SegmentationTrainer
from ultralytics.utils import DEFAULT_CFG, LOGGER, RANK
from ultralytics.utils.torch_utils import unwrap_model

from .. import options
from ..registry import CLS_LOSSES
from .cfg import register_config_keys
from .iou_aware import add_iou_branch
from .model import BoxLossDetectionModel, BoxLossPoseModel, BoxLossSegmentationModel, head_task, unsupported_head
from .nms import BoxLossPoseValidator, BoxLossSegmentationValidator, BoxLossValidator

register_config_keys()  # this module is what the DDP child unpickles; keep it self-sufficient


class BoxLossTrainer:
    """What the project adds to ultralytics' trainer of a task (the first base of each trainer below): the project's
    model (and so its criterion), options validated up front, the criterion state kept, the configured NMS."""

    task = "detect"
    validator_class = BoxLossValidator

    def __init__(self, cfg=DEFAULT_CFG, overrides=None, _callbacks=None):
        super().__init__(cfg=cfg, overrides=overrides, _callbacks=_callbacks)
        options.validate(vars(self.args))

    def new_model(self, cfg, verbose: bool):
        """The task's model built from ``cfg`` for this dataset (as ultralytics' own ``get_model`` builds it)."""
        raise NotImplementedError

    def get_model(self, cfg=None, weights=None, verbose: bool = True):
        model = self.set_model_names_for_load(self.new_model(cfg, verbose and RANK == -1))
        head = model.model[-1]
        reason = unsupported_head(head)
        if reason or head_task(head) != self.task:
            raise ValueError(f"boxloss cannot train {cfg} as a {self.task} model: "
                             f"{reason or f'its head is {type(head).__name__}'}")
        opts = options.resolve(self.args)
        if opts["iou_aware"]:  # before loading: stock weights fill every layer but the new branch
            alpha = opts["iou_aware_alpha"]
            head = weights.model[-1] if hasattr(weights, "model") else None
            if self.args.resume and getattr(head, "iou_aware_alpha_migrated", False):
                alpha = self.args.iou_aware_alpha = head.iou_aware_alpha  # the run's alpha, in today's convention
            add_iou_branch(model, alpha, opts["iou_aware_min_cls"])
        if weights:
            model.load(weights)
        return model

    def set_model_attributes(self):
        super().set_model_attributes()
        opts = options.resolve(self.args)
        if RANK in {-1, 0}:
            LOGGER.info(f"boxloss: box_loss={opts['box_loss']} cls_loss={opts['cls_loss']} "
                        f"assigner_iou={opts['assigner_iou']} iou_balanced_loc={opts['iou_balanced_loc']} "
                        f"iou_balanced_cls={opts['iou_balanced_cls']} iou_aware={opts['iou_aware']}")

    def set_class_weights(self):
        """ultralytics' class weights (cls_pw), and the training labels' class counts for a class-balanced loss:
        counted once per run from the training set, logged, and kept on the model (so in its checkpoints)."""
        super().set_class_weights()
        spec = CLS_LOSSES.spec(options.resolve(self.args)["cls_loss"])
        if "class_counts" in spec.context:
            counts = [int(c) for c in self.get_class_counts()]
            model = unwrap_model(self.model)
            model.boxloss_class_counts = counts
            if RANK in {-1, 0}:
                names = self.data["names"]
                LOGGER.info("boxloss: class counts of the training labels for class-balanced weights: "
                            + ", ".join(f"{names[i]} {n}" for i, n in enumerate(counts)))

    def get_validator(self):
        """ultralytics' validator, with the configured NMS (``nms_method``) for the end-of-epoch metrics."""
        validator = super().get_validator()
        validator.__class__ = self.validator_class
        return validator

    def resume_training(self, ckpt):
        """Share the criterion state with the EMA model (saved with it), restored from ``ckpt`` when resuming."""
        model = unwrap_model(self.model)
        saved_model = (ckpt or {}).get("ema") or (ckpt or {}).get("model")
        saved = getattr(saved_model, "boxloss_state", None) if self.resume else None
        model.boxloss_state = copy.deepcopy(saved) if saved else getattr(model, "boxloss_state", None) or {}
        self.ema.ema.boxloss_state = model.boxloss_state
        super().resume_training(ckpt)


class BoxLossDetectionTrainer(BoxLossTrainer, DetectionTrainer):
    """``DetectionTrainer`` with the project's model and criterion."""

    def new_model(self, cfg, verbose: bool):
        return BoxLossDetectionModel(cfg, nc=self.data["nc"], ch=self.data["channels"], verbose=verbose)


class BoxLossSegmentationTrainer(BoxLossTrainer, SegmentationTrainer):
    """``SegmentationTrainer`` with the project's model: ultralytics' segmentation loss, the configured box loss."""

    task = "segment"
    validator_class = BoxLossSegmentationValidator

    def new_model(self, cfg, verbose: bool):
        return BoxLossSegmentationModel(cfg, nc=self.data["nc"], ch=self.data["channels"], verbose=verbose)


class BoxLossPoseTrainer(BoxLossTrainer, PoseTrainer):
    """``PoseTrainer`` with the project's model: ultralytics' pose loss, the configured box loss."""

    task = "pose"
    validator_class = BoxLossPoseValidator

    def new_model(self, cfg, verbose: bool):
        return BoxLossPoseModel(cfg, nc=self.data["nc"], ch=self.data["channels"],
                                data_kpt_shape=self.data["kpt_shape"], verbose=verbose)


TASK_TRAINERS = {"detect": BoxLossDetectionTrainer, "segment": BoxLossSegmentationTrainer, "pose": BoxLossPoseTrainer}
