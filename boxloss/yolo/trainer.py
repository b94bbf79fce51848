"""The trainers of the project (detection, segmentation, pose, oriented boxes): build the project's models, check the
options, keep the state.

The criterion's state (``model.boxloss_state``: IoU-balanced ``w_loc: auto``, running means of stateful losses) is
one dict shared by the training model and the EMA model: ultralytics saves the EMA model in every checkpoint, so the
state travels with it, and on resume it is restored before the criterion is rebuilt.

Checkpoints are crash-safe: ultralytics writes ``last.pt``, ``best.pt`` (and ``epoch<n>.pt``) in place and rewrites
them in place when it strips the optimizer at the end, so a full disk or a kill mid-write leaves a truncated file --
the very ``last.pt`` that ``resume=`` needs. Here every one of those writes goes to a temporary file beside the
checkpoint, renamed over it only when complete (:func:`boxloss._io.atomic_write`): the previous checkpoint stays
intact and loadable until the new one is whole.
"""

from __future__ import annotations

import copy
from pathlib import Path
from unittest import mock

import ultralytics.engine.trainer as ultralytics_trainer
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.models.yolo.obb import OBBTrainer
from ultralytics.models.yolo.pose import PoseTrainer
from ultralytics.models.yolo.segment import SegmentationTrainer
from ultralytics.utils import DEFAULT_CFG, LOGGER, RANK
from ultralytics.utils.torch_utils import unwrap_model

from .. import options
from .._io import atomic_write, write_bytes_atomic
from ..registry import CLS_LOSSES
from .cfg import register_config_keys
from .iou_aware import add_iou_branch
from .model import BoxLossDetectionModel, BoxLossOBBModel, BoxLossPoseModel, BoxLossSegmentationModel
from .postprocess import BoxLossOBBValidator, BoxLossPoseValidator, BoxLossSegmentationValidator, BoxLossValidator

register_config_keys()  # this module is what the DDP child unpickles; keep it self-sufficient


class _AtomicWritePath(type(Path())):
    """A path whose ``write_bytes`` writes a temporary file and renames it into place (and so do paths below it):
    what ultralytics' ``save_model`` writes each checkpoint with."""

    def write_bytes(self, data) -> int:
        write_bytes_atomic(Path(self), data)
        return len(data)


def _atomic_strip_optimizer(f="best.pt", s: str = "", **kwargs):
    """ultralytics' ``strip_optimizer`` (it saves with ``torch.save`` in place), saving to a temporary file renamed
    over the target."""
    result = {}

    def strip(tmp: Path) -> None:
        nonlocal result
        result = _strip_optimizer(f, s=str(tmp), **kwargs)
        if not tmp.exists():  # not an ultralytics checkpoint (warned): nothing written, nothing to replace
            raise FileNotFoundError(tmp)

    try:
        atomic_write(Path(s or f), strip)
    except FileNotFoundError:
        pass
    return result


_strip_optimizer = ultralytics_trainer.strip_optimizer


class BoxLossTrainer:
    """What the project adds to ultralytics' trainer of a task (the first base of each trainer below): the project's
    model (and so its criterion), the run's options resolved once and handed down, the criterion state kept, the
    configured NMS."""

    task = "detect"
    model_class: type = BoxLossDetectionModel
    validator_class = BoxLossValidator

    def __init__(self, cfg=DEFAULT_CFG, overrides=None, _callbacks=None,
                 boxloss_options: options.Options | None = None):
        self._boxloss_options = boxloss_options
        super().__init__(cfg=cfg, overrides=overrides, _callbacks=_callbacks)

    @property
    def boxloss_options(self) -> options.Options:
        """The run's options, resolved once per process: those handed to the trainer (train.py resolved them with
        the experiment), else those its model carries (the DDP child's model is the parent's, unpickled), else
        resolved from ``args`` on first use (:func:`boxloss.options.from_args`, for the boxes of the task's model: a
        trainer built from flat arguments, a resumed run). The model, its EMA copy, their criteria and checkpoints
        carry this object; the box loss it names (an unset one: ultralytics' own for those boxes) is written into
        ``args``, so every later checkpoint, a resume and a DDP child name it."""
        if self._boxloss_options is None:
            carried = getattr(unwrap_model(self.model), "boxloss_options", None)
            self._boxloss_options = carried if isinstance(carried, options.Options) else \
                options.from_args(self.args, self.model_class.boxes)
            self.args.box_loss = self._boxloss_options["box_loss"]
        return self._boxloss_options

    def new_model(self, cfg, verbose: bool):
        """The task's model built from ``cfg`` for this dataset (as ultralytics' own ``get_model`` builds it)."""
        return self.model_class(cfg, nc=self.data["nc"], ch=self.data["channels"], verbose=verbose)

    def get_model(self, cfg=None, weights=None, verbose: bool = True):
        model = self.set_model_names_for_load(self.new_model(cfg, verbose and RANK == -1))
        head = model.model[-1]
        if not model.trains(head):
            raise ValueError(f"boxloss cannot train {cfg} as a {self.task} model: its head is {type(head).__name__}; "
                             f"a {self.task} model has a {' or '.join(model.heads)} head")
        saved_head = weights.model[-1] if hasattr(weights, "model") else None
        if self.args.resume and getattr(saved_head, "iou_aware_alpha_migrated", False):  # a run from before 0.2:
            self.args.iou_aware_alpha = saved_head.iou_aware_alpha  # its alpha in today's convention, resolved below
        opts = self.boxloss_options
        if opts["iou_aware"]:  # before loading: stock weights fill every layer but the new branch
            add_iou_branch(model, opts["iou_aware_alpha"], opts["iou_aware_min_cls"])
        model.boxloss_options = opts
        if weights:
            model.load(weights)
        return model

    def set_model_attributes(self):
        super().set_model_attributes()
        opts = self.boxloss_options
        if RANK in {-1, 0}:
            LOGGER.info(f"boxloss: box_loss={opts['box_loss']} cls_loss={opts['cls_loss']} "
                        f"assigner_iou={opts['assigner_iou']} iou_balanced_loc={opts['iou_balanced_loc']} "
                        f"iou_balanced_cls={opts['iou_balanced_cls']} iou_aware={opts['iou_aware']}")

    def set_class_weights(self):
        """ultralytics' class weights (cls_pw), and the training labels' class counts for a class-balanced loss:
        counted once per run from the training set, logged, and kept on the model (so in its checkpoints)."""
        super().set_class_weights()
        spec = CLS_LOSSES.spec(self.boxloss_options["cls_loss"])
        if "class_counts" in spec.context:
            counts = [int(c) for c in self.get_class_counts()]
            model = unwrap_model(self.model)
            model.boxloss_class_counts = counts
            if RANK in {-1, 0}:
                names = self.data["names"]
                LOGGER.info("boxloss: class counts of the training labels for class-balanced weights: "
                            + ", ".join(f"{names[i]} {n}" for i, n in enumerate(counts)))

    def save_model(self):
        """ultralytics' ``save_model`` with every checkpoint written through a temporary file and a rename."""
        paths = self.wdir, self.last, self.best
        self.wdir, self.last, self.best = (_AtomicWritePath(path) for path in paths)
        try:
            return super().save_model()
        finally:
            self.wdir, self.last, self.best = paths

    def final_eval(self):
        """ultralytics' ``final_eval``, its in-place optimizer stripping of last.pt and best.pt made atomic."""
        with mock.patch.object(ultralytics_trainer, "strip_optimizer", _atomic_strip_optimizer):
            return super().final_eval()

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


class BoxLossSegmentationTrainer(BoxLossTrainer, SegmentationTrainer):
    """``SegmentationTrainer`` with the project's model: ultralytics' segmentation loss, the configured box loss."""

    task = "segment"
    model_class = BoxLossSegmentationModel
    validator_class = BoxLossSegmentationValidator


class BoxLossPoseTrainer(BoxLossTrainer, PoseTrainer):
    """``PoseTrainer`` with the project's model: ultralytics' pose loss, the configured box loss."""

    task = "pose"
    model_class = BoxLossPoseModel
    validator_class = BoxLossPoseValidator

    def new_model(self, cfg, verbose: bool):
        return self.model_class(cfg, nc=self.data["nc"], ch=self.data["channels"],
                                data_kpt_shape=self.data["kpt_shape"], verbose=verbose)


class BoxLossOBBTrainer(BoxLossTrainer, OBBTrainer):
    """``OBBTrainer`` with the project's model: ultralytics' oriented-box loss, the configured box loss on rotated
    boxes (unset: ProbIoU, ultralytics' own)."""

    task = "obb"
    model_class = BoxLossOBBModel
    validator_class = BoxLossOBBValidator

