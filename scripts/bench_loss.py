"""Benchmark the registered box losses: the loss alone, and the criterion and training step of YOLO models.

Measures, on CPU (and CUDA when available):
1. forward + backward of every registered box loss (wrapped ones included) on N random box pairs, as a ratio to
   torchvision's ``complete_box_iou_loss``, to ultralytics' ``1 − bbox_iou(..., CIoU=True)`` and to our ciou on the
   same inputs (losses that need more than the boxes get a 640 px image at stride 8);
2. for each ``models=`` YAML (nc=5) on one random batch: the criterion alone (forward + backward of the loss
   given fixed head outputs) and a full training step (model forward + criterion + backward), the stock
   criterion (ultralytics' own ``init_criterion``: ``v8DetectionLoss``, or ``E2ELoss`` for YOLOv10/YOLO26) against
   the project's with each of ``step_losses=``.
Variants are interleaved in a shuffled order within every repetition (drift and order effects cancel),
after warm-up repetitions; the median is reported. torch's thread count is left at its default.

Targets checked: our ciou <= 1.0x torchvision's; eiou and focal_eiou <= 1.2x our ciou; every other IoU-type loss
<= 1.5x our ciou at 10^6 boxes; every loss's training step <= 1.03x the stock one. The rotated losses (xywhr) are
timed the same way on random rotated pairs against ultralytics' ``1 − probiou(pred, target, floor=0.01)`` (the
stock OBB box loss), at the sizes up to 10^5 (the polygon losses keep ~5 kB of graph per pair); target: our probiou
<= 1.05x ultralytics'.

Examples:
    python scripts/bench_loss.py                                      # full: 1e4, 1e5, 1e6 pairs
    python scripts/bench_loss.py sizes=10000,100000 repeats=3         # quick check
    python scripts/bench_loss.py device=cpu skip_train=true out=runs/bench_loss/cpu_losses.md
    python scripts/bench_loss.py skip_losses=true models=yolo11n.yaml,yolo26n.yaml step_losses=ciou,eiou,focal_eiou

Cost: the training section runs (warm-up + repeats) × 2 × (number of losses + 1) YOLOv8n steps; about 7 s a
step on 2 CPU cores, so the defaults take roughly 25 minutes there (skip_train=true for the losses alone).

Output: a markdown table on stdout, written atomically to ``out=`` and, as JSON with every sample, next
to it (same name, ``.json``). Progress goes to stderr. Every argument is key=value (``--help`` lists the keys); the
``--flag`` spelling of earlier releases is refused with one line naming its key.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import torch

import boxloss
from boxloss._io import write_text_atomic
from boxloss.devices import check_device
from boxloss.errors import ConfigError
from boxloss.keyvalues import format_help, parse_keyvalues, run_cli
from boxloss.param import Param
from boxloss.testing.boxes import random_boxes, random_rotated_boxes

REFERENCES = ("torchvision_ciou", "ultralytics_ciou")
ROTATED_REFERENCE = "ultralytics_probiou"  # the rotated losses' baseline: stock OBB box loss
TARGETS = {  # what is checked, and the limit
    "ciou_vs_torchvision": 1.0,
    "probiou_vs_ultralytics": 1.05,
    "eiou_vs_ciou": 1.2,
    "focal_eiou_vs_ciou": 1.2,
    "iou_type_vs_ciou": 1.5,
    "train_step_vs_stock": 1.03,
}
CONTEXT = {"image_size": torch.tensor([640.0, 640.0]), "stride": 8.0, "iou_mean": 0.5}  # random_boxes: grid units
IOU_TYPE_SIZE = 1_000_000  # the 1.5x target is read at this many boxes
ROTATED_MAX_SIZE = 100_000  # the rotated losses are timed at the sizes up to this


def log(message: str) -> None:
    print(f"[bench_loss {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def synchronizer(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def interleaved_medians(runners: dict[str, Callable[[], None]], repeats: int, warmup: int, sync: Callable[[], None],
                        seed: int, label: str) -> dict[str, list[float]]:
    """Time every runner once per repetition, in a fresh shuffled order each time; returns the samples (s)."""
    rng = random.Random(seed)
    samples: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for rep in range(warmup + repeats):
        rng.shuffle(names)
        for name in names:
            sync()
            start = time.perf_counter()
            runners[name]()
            sync()
            elapsed = time.perf_counter() - start
            if rep >= warmup:
                samples[name].append(elapsed)
        log(f"{label}: repetition {rep + 1}/{warmup + repeats}{' (warm-up)' if rep < warmup else ''} done")
    return samples


# ---------------------------------------------------------------------------------------------------------
# 1. The losses alone
# ---------------------------------------------------------------------------------------------------------

def loss_functions() -> dict[str, Callable]:
    """Every registered box loss (defaults) plus the two reference CIoU implementations, name -> fn(p, t)."""
    import torchvision.ops
    from ultralytics.utils.metrics import bbox_iou

    def bound(name):
        spec = boxloss.get_spec(name)
        context = {key: CONTEXT[key] for key in spec.context}
        return lambda pred, target: spec.fn(pred, target, **context)

    functions = {name: bound(name) for name in boxloss.list_losses(boxes="xyxy")}
    functions["torchvision_ciou"] = lambda pred, target: torchvision.ops.complete_box_iou_loss(pred, target)
    functions["ultralytics_ciou"] = lambda pred, target: 1.0 - bbox_iou(pred, target, xywh=False, CIoU=True)
    return functions


def rotated_loss_functions() -> dict[str, Callable]:
    """Every registered rotated box loss (defaults) plus ultralytics' OBB box loss, name -> fn(p, t)."""
    from ultralytics.utils.metrics import probiou

    from boxloss.losses.gaussian import PROBIOU_FLOOR

    functions = {name: boxloss.get_spec(name).fn for name in boxloss.list_losses(boxes="xywhr")}
    functions[ROTATED_REFERENCE] = lambda pred, target: 1.0 - probiou(pred, target, floor=PROBIOU_FLOOR)
    return functions


def _forward_backward(pred: torch.Tensor, target: torch.Tensor, fn: Callable) -> Callable[[], None]:
    def run():
        leaf = pred.detach().requires_grad_()  # fresh leaf: no gradient accumulation across calls
        fn(leaf, target).sum().backward()
    return run


def bench_losses(device: torch.device, sizes: list[int], repeats: int, warmup: int, seed: int) -> list[dict]:
    """Forward + backward (``loss.sum().backward()``, gradient w.r.t. the predictions) per size and loss: the
    axis-aligned losses on xyxy pairs, then the rotated ones on xywhr pairs (rows with ``boxes`` = xywhr)."""
    functions = loss_functions()
    sync = synchronizer(device)
    rows = []
    for n in sizes:
        pred, target = random_boxes(n, seed, device=device)
        samples = interleaved_medians({name: _forward_backward(pred, target, fn) for name, fn in functions.items()},
                                      repeats, warmup, sync, seed + n, f"losses {device.type} n={n}")
        medians = {name: statistics.median(times) for name, times in samples.items()}
        for name in functions:
            rows.append({
                "device": device.type, "n": n, "boxes": "xyxy", "loss": name, "median_ms": medians[name] * 1e3,
                "min_ms": min(samples[name]) * 1e3,
                "vs_torchvision_ciou": medians[name] / medians["torchvision_ciou"],
                "vs_ultralytics_ciou": medians[name] / medians["ultralytics_ciou"],
                "vs_our_ciou": medians[name] / medians["ciou"],
                "samples_ms": [t * 1e3 for t in samples[name]],
            })
    rotated = rotated_loss_functions()
    for n in [n for n in sizes if n <= ROTATED_MAX_SIZE]:
        pred, target = random_rotated_boxes(n, seed, device=device)
        for index, (group, names) in enumerate(rotated_groups(rotated).items()):
            timed = {name: _forward_backward(pred, target, rotated[name]) for name in (ROTATED_REFERENCE, *names)}
            samples = interleaved_medians(timed, repeats, warmup, sync, seed + n,
                                          f"rotated losses ({group}) {device.type} n={n}")
            medians = {name: statistics.median(times) for name, times in samples.items()}
            shown = names if index else timed  # the reference's own row once, from the first group
            rows += [{"device": device.type, "n": n, "boxes": "xywhr", "loss": name, "group": group,
                      "median_ms": medians[name] * 1e3, "min_ms": min(samples[name]) * 1e3,
                      "vs_ultralytics_probiou": medians[name] / medians[ROTATED_REFERENCE],
                      "samples_ms": [t * 1e3 for t in samples[name]]} for name in shown]
    return rows


def rotated_groups(functions: dict[str, Callable]) -> dict[str, list[str]]:
    """The rotated losses in two groups, each timed interleaved with the reference on its own: the closed-form
    (Gaussian) ones and the polygon ones. Interleaved together, the graph a polygon loss frees (about 5 kB a pair)
    made the next cheap call's time bimodal (spreads of ±100-450 % at 10^4-10^5 pairs on the 2-core CPU)."""
    from boxloss.losses import gaussian

    def base_module(name: str) -> str:
        spec = boxloss.get_spec(name)
        while spec.wraps:
            spec = boxloss.get_spec(spec.wraps)
        return spec.fn.__module__

    names = sorted(name for name in functions if name != ROTATED_REFERENCE)
    closed_form = [name for name in names if base_module(name) == gaussian.__name__]
    return {"closed form": closed_form, "polygon": [name for name in names if name not in closed_form]}


# ---------------------------------------------------------------------------------------------------------
# 2. The criterion and the training step of YOLOv8n
# ---------------------------------------------------------------------------------------------------------

def random_batch(batch_size: int, imgsz: int, nc: int, boxes_per_image: float, device: torch.device,
                 seed: int) -> dict[str, torch.Tensor]:
    """Random images and labels in the ultralytics batch format (normalised xywh boxes)."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.poisson(torch.full((batch_size,), float(boxes_per_image)), generator=g).long().clamp(min=1)
    n = int(counts.sum())
    centre = 0.1 + 0.8 * torch.rand(n, 2, generator=g)
    size = 0.03 + 0.4 * torch.rand(n, 2, generator=g)
    size = torch.minimum(size, 2 * torch.minimum(centre, 1 - centre))  # keep boxes inside the image
    return {
        "img": torch.rand(batch_size, 3, imgsz, imgsz, generator=g).to(device),
        "batch_idx": torch.arange(batch_size).repeat_interleave(counts).float().to(device),
        "cls": torch.randint(0, nc, (n, 1), generator=g).float().to(device),
        "bboxes": torch.cat((centre, size), 1).to(device),
    }


def _detached(outputs):
    """Head outputs as fresh leaves (nested dicts of end-to-end heads included)."""
    if isinstance(outputs, dict):
        return {key: _detached(value) for key, value in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(_detached(value) for value in outputs)
    return outputs.detach().requires_grad_() if torch.is_tensor(outputs) else outputs


def bench_training(device: torch.device, repeats: int, warmup: int, seed: int, batch_size: int, imgsz: int,
                   amp: bool, model_yaml: str = "yolov8n.yaml", losses: list[str] | None = None) -> list[dict]:
    """The stock criterion (ultralytics' init_criterion) vs the project's with each box loss, one model, one batch."""
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    from boxloss.testing.models import build_model  # the tests' model (imports boxloss.yolo: the config keys)
    from boxloss.yolo import BoxLossDetectionModel

    # args: stock hyper-parameters (box, cls, dfl gains)
    model = build_model(model_yaml, BoxLossDetectionModel, init_seed=seed, epochs=10).to(device)
    nc = model.yaml["nc"]  # 5
    criteria = {"stock": DetectionModel.init_criterion(model)}
    for name in losses or boxloss.registry.BOX_LOSSES.names(wrapped=False, boxes="xyxy"):
        model.args = get_cfg(overrides={"box_loss": name, "epochs": 10})
        criteria[name] = model.init_criterion()  # reads model.args now; keeps its own copy of the options
    batch = random_batch(batch_size, imgsz, nc, 6, device, seed)
    log(f"train {device.type}: {model_yaml} nc={nc} imgsz={imgsz} batch={batch_size} boxes={len(batch['cls'])}")

    def autocast():
        return torch.autocast(device.type, enabled=amp and device.type == "cuda")

    with torch.no_grad(), autocast():
        fixed = model(batch["img"])  # fixed head outputs for the criterion-alone timing

    def criterion_runner(criterion):
        def run():
            criterion(_detached(fixed), batch)[0].sum().backward()
        return run

    def step_runner(criterion):
        def run():
            model.zero_grad(set_to_none=True)
            with autocast():
                preds = model(batch["img"])
                loss = criterion(preds, batch)[0].sum()
            loss.backward()
        return run

    sync = synchronizer(device)
    rows = []
    for what, make in (("criterion", criterion_runner), ("train_step", step_runner)):
        samples = interleaved_medians({name: make(c) for name, c in criteria.items()}, repeats, warmup, sync, seed,
                                      f"{what} {device.type}")
        medians = {name: statistics.median(times) for name, times in samples.items()}
        for name in criteria:
            rows.append({"device": device.type, "model": model_yaml, "what": what, "loss": name,
                         "median_ms": medians[name] * 1e3,
                         "min_ms": min(samples[name]) * 1e3, "vs_stock": medians[name] / medians["stock"],
                         "samples_ms": [t * 1e3 for t in samples[name]]})
    return rows


# ---------------------------------------------------------------------------------------------------------
# Targets, report
# ---------------------------------------------------------------------------------------------------------

def check_targets(loss_rows: list[dict], train_rows: list[dict]) -> list[dict]:
    """Each target on the medians (the verdict) and on the fastest samples (robust to other jobs' bursts).

    When the two ratios fall on different sides of the limit, the verdict is marked noisy: re-run with more
    repetitions on a quieter machine before believing it.
    """
    losses = {(r["device"], r["n"], r["loss"]): r for r in loss_rows if r.get("boxes", "xyxy") == "xyxy"}
    rotated = {(r["device"], r["n"], r["loss"]): r for r in loss_rows if r.get("boxes") == "xywhr"}
    steps = {(r["device"], r["model"], r["loss"]): r for r in train_rows if r["what"] == "train_step"}
    pairs = []  # (target, where, row, baseline row)
    for (device, n, loss), row in losses.items():
        if loss == "ciou":
            pairs.append(("ciou_vs_torchvision", f"{device} n={n}", row, losses[(device, n, "torchvision_ciou")]))
        if loss in ("eiou", "focal_eiou"):
            pairs.append((f"{loss}_vs_ciou", f"{device} n={n}", row, losses[(device, n, "ciou")]))
        elif loss not in (*REFERENCES, "ciou") and n == IOU_TYPE_SIZE and boxloss.get_spec(loss).iou_based:
            pairs.append(("iou_type_vs_ciou", f"{device} n={n} {loss}", row, losses[(device, n, "ciou")]))
    for (device, n, loss), row in rotated.items():
        if loss == "probiou":
            pairs.append(("probiou_vs_ultralytics", f"{device} n={n}", row, rotated[(device, n, ROTATED_REFERENCE)]))
    for (device, model, loss), row in steps.items():
        if loss != "stock":
            pairs.append(("train_step_vs_stock", f"{device} {model} {loss}", row, steps[(device, model, "stock")]))
    checks = []
    for target, where, row, base in pairs:
        limit = TARGETS[target]
        value, best = row["median_ms"] / base["median_ms"], row["min_ms"] / base["min_ms"]
        checks.append({"target": target, "where": where, "value": value, "best_of_value": best, "limit": limit,
                       "pass": value <= limit, "noisy": (value <= limit) != (best <= limit)})
    return checks


def spread(samples: list[float]) -> str:
    """Half the min–max range relative to the median, in percent: how much a ratio can be trusted."""
    if len(samples) < 2:
        return "–"
    return f"±{50 * (max(samples) - min(samples)) / statistics.median(samples):.0f}%"


def markdown(meta: dict, loss_rows: list[dict], train_rows: list[dict], checks: list[dict]) -> str:
    lines = [f"# Box-loss benchmark ({meta['date']})", "",
             f"torch {meta['torch']}, torchvision {meta['torchvision']}, ultralytics {meta['ultralytics']}; "
             f"{meta['cpu']} ({meta['cpu_count']} CPUs, {meta['threads']} torch threads)"
             + (f"; {meta['cuda_device']}" if meta.get("cuda_device") else "")
             + f"; {meta['repeats']} repetitions after {meta['warmup']} warm-up, median.", ""]
    rotated_rows = [r for r in loss_rows if r.get("boxes") == "xywhr"]
    loss_rows = [r for r in loss_rows if r.get("boxes", "xyxy") == "xyxy"]
    if loss_rows:
        lines += ["## Loss alone: forward + backward", "",
                  "| device | boxes | loss | median ms | fastest ms | spread | vs torchvision CIoU "
                  "| vs ultralytics CIoU | vs our CIoU |", "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['device']} | {r['n']:,} | {r['loss']} | {r['median_ms']:.2f} | {r['min_ms']:.2f} | "
                  f"{spread(r['samples_ms'])} | "
                  f"{r['vs_torchvision_ciou']:.2f}x | {r['vs_ultralytics_ciou']:.2f}x | {r['vs_our_ciou']:.2f}x |"
                  for r in loss_rows]
        lines.append("")
    if rotated_rows:
        lines += ["## Rotated losses alone: forward + backward (xywhr pairs)", "",
                  "The closed-form (Gaussian) losses and the polygon ones are timed in two groups, each interleaved "
                  "with ultralytics' ProbIoU on its own; a ratio is to the ProbIoU of its group.", "",
                  "| device | boxes | group | loss | median ms | fastest ms | spread | vs ultralytics ProbIoU |",
                  "|---|---:|---|---|---:|---:|---:|---:|"]
        lines += [f"| {r['device']} | {r['n']:,} | {r.get('group', '')} | {r['loss']} | {r['median_ms']:.2f} | "
                  f"{r['min_ms']:.2f} | {spread(r['samples_ms'])} | {r['vs_ultralytics_probiou']:.2f}x |"
                  for r in rotated_rows]
        lines.append("")
    if train_rows:
        lines += [f"## Criterion and training step (batch {meta['batch']}, imgsz {meta['imgsz']}, "
                  f"nc 5, amp {meta['amp']})", "",
                  "| device | model | timed | criterion | median ms | fastest ms | spread | vs stock |",
                  "|---|---|---|---|---:|---:|---:|---:|"]
        lines += [f"| {r['device']} | {r['model']} | {r['what']} | {r['loss']} | {r['median_ms']:.1f} | "
                  f"{r['min_ms']:.1f} | "
                  f"{spread(r['samples_ms'])} | "
                  f"{r['vs_stock']:.3f}x |" for r in train_rows]
        lines.append("")
    if checks:
        lines += ["## Targets", "", "Verdict on the ratio of medians; *noisy* when the ratio of the fastest samples "
                  "falls on the other side of the limit.", "",
                  "| target | where | median ratio | fastest ratio | limit | result |", "|---|---|---:|---:|---:|---|"]
        lines += [f"| {c['target']} | {c['where']} | {c['value']:.3f}x | {c['best_of_value']:.3f}x "
                  f"| {c['limit']:.2f}x | {'pass' if c['pass'] else '**FAIL**'}{' (noisy)' if c['noisy'] else ''} |"
                  for c in checks]
        lines.append("")
    return "\n".join(lines)


KEYS = {
    "sizes": Param("10000,100000,1000000", "comma-separated numbers of box pairs"),
    "repeats": Param(10, "timed repetitions per variant (median reported)", lambda n: n >= 1, ">= 1"),
    "warmup": Param(1, "untimed repetitions first", lambda n: n >= 0, ">= 0"),
    "device": Param("auto", "auto (cpu, plus cuda if available), or comma-separated devices: cpu, cuda, cuda:1"),
    "out": Param("runs/bench_loss/bench_loss.md", "markdown report; the JSON goes next to it with the suffix .json"),
    "batch": Param(16, "training-step batch size", lambda n: n >= 1, ">= 1"),
    "imgsz": Param(320, "training-step image size", lambda n: n > 0, "> 0"),
    "amp": Param(False, "autocast the CUDA training step (as ultralytics does)"),
    "skip_train": Param(False, "only the losses alone"),
    "skip_losses": Param(False, "only the criterion and the training step"),
    "seed": Param(0, "seed of the random boxes and batches"),
    "models": Param("yolov8n.yaml", "comma-separated model YAMLs for the training step"),
    "step_losses": Param(None, "comma-separated box losses timed in the training step (default: every registered "
                         "loss that wraps none)", value_type=str),
}


def devices(choice: str) -> list[torch.device]:
    """``auto``: the CPU, and CUDA when there is one; else each comma-separated device (cpu, mps, cuda, cuda:1),
    present on this machine."""
    if choice == "auto":
        return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    return [torch.device(check_device(part).torch_name()) for part in choice.split(",")]


def parse_args(argv: list[str]) -> SimpleNamespace:
    """The checked settings of a key=value command line, with ``sizes``, ``models`` and ``step_losses`` as lists."""
    args = SimpleNamespace(**parse_keyvalues(argv, KEYS, text_as_typed=True))
    args.out = Path(args.out)
    args.models = [m for m in args.models.split(",") if m]
    args.step_losses = [name for name in (args.step_losses or "").split(",") if name] or None
    for name in args.step_losses or []:
        if name not in boxloss.list_losses(boxes="xyxy"):  # the training step is a detection model's
            raise ConfigError(f"step_losses: {name!r} is not a registered box loss for axis-aligned boxes "
                              f"({', '.join(boxloss.list_losses(boxes='xyxy'))})")
    try:
        args.sizes = [int(float(s)) for s in args.sizes.split(",") if s]
    except ValueError:
        raise ConfigError(f"sizes={args.sizes!r} must be comma-separated integers") from None
    if not args.sizes or min(args.sizes) < 1:
        raise ConfigError(f"sizes={','.join(map(str, args.sizes))}: every size must be >= 1")
    args.devices = devices(args.device)
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    import torchvision
    import ultralytics

    meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "torch": torch.__version__,
        "torchvision": torchvision.__version__, "ultralytics": ultralytics.__version__,
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(), "repeats": args.repeats, "warmup": args.warmup,
        "sizes": args.sizes, "batch": args.batch, "imgsz": args.imgsz, "amp": args.amp, "seed": args.seed,
        "models": args.models,
        "losses": boxloss.list_losses(), "argv": list(argv),
    }
    loss_rows, train_rows = [], []
    for device in args.devices:
        if device.type == "cuda":
            meta["cuda_device"] = torch.cuda.get_device_name(device)
        if not args.skip_losses:
            loss_rows += bench_losses(device, args.sizes, args.repeats, args.warmup, args.seed)
        if not args.skip_train:
            for model in args.models:
                train_rows += bench_training(device, args.repeats, args.warmup, args.seed, args.batch, args.imgsz,
                                             args.amp, model, args.step_losses)
    checks = check_targets(loss_rows, train_rows)
    report = markdown(meta, loss_rows, train_rows, checks)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, report)
    record = {"meta": meta, "losses": loss_rows, "training": train_rows, "targets": checks}
    write_text_atomic(args.out.with_suffix(".json"), json.dumps(record, indent=1))
    log(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("bench_loss.py", lambda: format_help(__doc__, KEYS), main))
