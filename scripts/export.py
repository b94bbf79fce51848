"""Export a trained checkpoint (IoU-aware head folded in) with ultralytics' exporter.

    python scripts/export.py model=runs/train/iou_aware/weights/best.pt            # ONNX
    python scripts/export.py model=best.pt format=torchscript imgsz=320

The exported model keeps the stock output (1, 4 + nc, anchors): the predicted IoU is already folded into
the class scores, so plain ``ultralytics.YOLO("best.onnx")`` predicts with it. Formats that need no
download: onnx, torchscript (others need packages or tools fetched at export time).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from boxloss.options import ConfigError  # noqa: E402

OFFLINE_FORMATS = ("onnx", "torchscript")
EXPORT_KEYS = {"model", "format", "imgsz", "half", "dynamic", "simplify", "opset", "batch", "device"}


def main(argv: list[str]) -> int:
    from boxloss.yolo import BoxLossYOLO, experiment

    try:
        args = experiment.parse_overrides(argv)
        unknown = sorted(set(args) - EXPORT_KEYS)
        if unknown:
            raise ConfigError(f"unknown export key {unknown[0]!r} (valid: {', '.join(sorted(EXPORT_KEYS))})")
        model = args.pop("model", None)
        if not isinstance(model, str) or not model.endswith(".pt") or not Path(model).is_file():
            raise ConfigError(f"model={model!r} must be an existing .pt checkpoint")
        args.setdefault("format", "onnx")
        if args["format"] not in OFFLINE_FORMATS:
            raise ConfigError(f"format={args['format']!r} is not supported offline; use one of "
                              f"{', '.join(OFFLINE_FORMATS)}")
        experiment.validate({k: v for k, v in args.items() if k != "format"} | {"model": model}, require_data=False)
    except ConfigError as error:
        print(f"export.py: error: {error}", file=sys.stderr)
        return 2
    path = BoxLossYOLO(model).export(**args)
    print(f"export.py: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
