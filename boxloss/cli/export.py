"""Export a trained checkpoint (IoU-aware head folded in) with ultralytics' exporter.

    python scripts/export.py model=runs/train/iou_aware/weights/best.pt            # ONNX
    python scripts/export.py model=best.pt format=torchscript imgsz=320

The exported model keeps the stock output: (1, 4 + nc, anchors), or (1, max_det, 6) for an end-to-end head
(YOLOv10, YOLO26: the one-to-one branch, NMS-free, exported by default; end2end=false exports the one-to-many
branch for external NMS). The predicted IoU of an IoU-aware head is already folded into the class scores, so plain
``ultralytics.YOLO("best.onnx")`` predicts with it. Formats that need no download: onnx, torchscript (others need
packages or tools fetched at export time).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..devices import check_device
from ..errors import ConfigError
from ..keyvalues import format_help, parse_keyvalues, run_cli
from ..param import Param

PROG = "export.py"
OFFLINE_FORMATS = ("onnx", "torchscript")
EXPORT_KEYS: dict[str, Param] = {
    "model": Param(None, "the trained .pt checkpoint to export", value_type=str),
    "format": Param("onnx", "export format (offline ones only)", choices=OFFLINE_FORMATS),
    "imgsz": Param(None, "input image size (default: the checkpoint's)", lambda v: v > 0, "> 0", value_type=int),
    "half": Param(False, "FP16 export"),
    "dynamic": Param(False, "dynamic input shapes (ONNX)"),
    "simplify": Param(True, "simplify the ONNX graph (onnxslim, when installed)"),
    "opset": Param(None, "ONNX opset (default: ultralytics')", lambda v: v > 0, "> 0", value_type=int),
    "batch": Param(1, "export batch size", lambda v: v > 0, "> 0"),
    "device": Param(None, "ultralytics device (cpu, 0, ...)", value_type=(str, int)),
    "end2end": Param(None, "an end-to-end head's NMS-free one-to-one output (default: true for YOLOv10/YOLO26)",
                     value_type=bool),
}


def _main(argv: list[str]) -> int:
    from ..yolo import BoxLossYOLO, experiment
    from ..yolo.model import end_to_end

    args = parse_keyvalues(argv, EXPORT_KEYS)
    model = args.pop("model")
    if model is None:
        raise ConfigError("model= is required (e.g. model=runs/train/eiou/weights/best.pt)")
    if not model.endswith(".pt") or not Path(model).is_file():
        raise ConfigError(f"model={model!r} must be an existing .pt checkpoint")
    check_device(args["device"])
    check_opset(args["opset"], args["format"])
    experiment.check_model(model)
    yolo = BoxLossYOLO(model)
    one_to_one = end_to_end(yolo.model.model[-1])
    end2end = args.pop("end2end")
    if end2end and not one_to_one:
        raise ConfigError(f"end2end=true needs an end-to-end head (YOLOv10, YOLO26); {model!r} has none")
    if one_to_one and end2end is not False:
        args["nms"] = False  # ultralytics' switch for the NMS-free one-to-one branch
    path = yolo.export(**{key: value for key, value in args.items() if value is not None})
    print(f"{PROG}: wrote {path}")
    return 0


def opset_range() -> tuple[int, int]:
    """The ONNX opsets an export can use here: from 9 (ultralytics' minimum for a detector) to the highest both the
    installed torch exporter and the installed onnx package know."""
    import onnx

    highest = onnx.defs.onnx_opset_version()
    try:
        from torch.onnx._constants import ONNX_MAX_OPSET  # private, but the only place torch states it

        highest = min(highest, ONNX_MAX_OPSET)
    except ImportError:
        pass
    return 9, highest


def check_opset(opset: int | None, export_format: str) -> None:
    if opset is None:
        return
    if export_format != "onnx":
        raise ConfigError(f"opset={opset} is an ONNX setting; format={export_format} has none")
    try:
        low, high = opset_range()
    except ImportError:
        raise ConfigError("format=onnx needs the onnx package (pip install onnx)") from None
    if not low <= opset <= high:
        raise ConfigError(f"opset={opset} is out of range: the installed torch and onnx export opsets {low}-{high}")


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, lambda: format_help(__doc__, EXPORT_KEYS), _main, argv)


if __name__ == "__main__":
    sys.exit(main())
