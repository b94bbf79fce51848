"""Run the DIoU paper's simulation experiment (arXiv 1911.08287) for registered box losses.

    python scripts/simulate.py                                  # all registered losses, full protocol
    python scripts/simulate.py --losses ciou,eiou --centres 500 --iterations 100 --out runs/sim-small
    python scripts/simulate.py --losses focal_eiou,focal_eiou:norm=none   # a hyper-parameter overridden
    python scripts/simulate.py --no-iou-factor --out runs/simulate-no-factor

The experiment itself lives in ``boxloss.simulation``; this script parses arguments, reports progress on
stderr, skips losses already finished with the same settings and writes the outputs into ``--out``, each
atomically (temporary file, then rename):

    per_loss/<loss>.json   settings, summary, total-error curve, per-centre final error; written as soon as
                           that loss finishes, so an interrupt loses nothing finished
    curves.csv             iteration, then the total l1 error over all cases for each loss
    curves.png             the same, log-scale y
    error_maps.png         per anchor centre, the summed final error of its 343 cases (paper's Figure 4)
    summary.json           per loss: final mean l1 error per case, mean IoU, fractions with IoU > 0.5 and
                           > 0.9, over all cases and over the cases starting without overlap; seconds

curves.csv and summary.json are rewritten after every loss, the two plots once at the end (an
interrupted run gets them on the re-run, which skips the finished losses). ``--threads`` defaults to 1:
on this shared 2-core machine two OpenMP threads were several times slower per operation than one
whenever another job was busy (6.8 ms against 0.8 ms for one multiply of 1.7M floats).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

import boxloss
from boxloss import simulation

PROTOCOL = "diou-simulation-v1"  # bump when boxloss.simulation changes what a setting produces


def parse_loss(text: str) -> tuple[str, str, dict]:
    """``"name"`` or ``"name:key=value:key=value"`` -> (label, name, overridden parameters).

    Values are converted to the type of the parameter's registry default and checked against it.
    """
    name, *assignments = text.strip().split(":")
    spec = boxloss.get_spec(name)  # KeyError listing the valid names
    overrides = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or key not in spec.params:
            raise ValueError(f"{text!r}: expected key=value with key one of: {', '.join(spec.params) or 'none'}")
        param = spec.params[key]
        if param.type is bool:
            value = {"true": True, "false": False}.get(raw.lower())
        else:
            try:
                value = param.type(raw)
            except ValueError:
                value = None
        if value is None or not param.check(value):
            raise ValueError(f"{text!r}: {key} must be {param.requirement or param.type.__name__}, got {raw!r}")
        overrides[key] = value
    label = ":".join([name] + [f"{key}={overrides[key]}" for key in sorted(overrides)])
    return label, name, overrides


def atomic_write(path: Path, write) -> None:
    """Call ``write(temporary_path)``, then rename the temporary file onto ``path``."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_json(path: Path, data) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1) + "\n"))


def loss_file(out: Path, label: str) -> Path:
    return out / "per_loss" / f"{label.replace(':', '__')}.json"


def load_finished(path: Path, settings: dict) -> dict | None:
    """The stored record of a loss if it was run with exactly ``settings``, else None."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if record.get("settings") == settings else None


class Progress:
    """Prints ``[k/n label] iteration i/T, elapsed, ETA`` to stderr about ten times per loss."""

    def __init__(self, label: str, position: str):
        self.label, self.position, self.started = label, position, time.perf_counter()

    def __call__(self, iteration: int, iterations: int) -> None:
        every = max(1, iterations // 10)
        if iteration == 1 or iteration % every == 0 or iteration == iterations:
            elapsed = time.perf_counter() - self.started
            eta = elapsed / iteration * (iterations - iteration)
            print(f"[{self.position} {self.label}] iteration {iteration}/{iterations}, {elapsed:.1f} s, "
                  f"ETA {eta:.0f} s", file=sys.stderr, flush=True)


def write_curves_csv(path: Path, records: dict) -> None:
    labels = list(records)
    curves = [records[label]["error_curve"] for label in labels]
    lines = [",".join(["iteration"] + labels)]
    lines += [",".join([str(i)] + [repr(curve[i]) for curve in curves]) for i in range(len(curves[0]))]
    atomic_write(path, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))


def save_figure(fig, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))


def plot_curves(path: Path, records: dict, num_cases: int) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, record in records.items():
        ax.plot(record["error_curve"], label=label, linewidth=1.5)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"total l1 error over {num_cases:,} cases")
    ax.set_title("DIoU-paper simulation: regression error")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_error_maps(path: Path, records: dict, centres: torch.Tensor) -> None:
    """One panel per loss, centres coloured by summed final error, one shared logarithmic colour scale."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    maps = {label: torch.tensor(record["centre_error"]) for label, record in records.items()}
    values = torch.cat(list(maps.values()))
    positive = values[values > 0]
    vmax = values.max().item() if values.numel() else 1.0
    vmin = positive.min().item() if positive.numel() else vmax / 10
    norm = LogNorm(vmin=vmin, vmax=max(vmax, vmin * 10))
    cmap = plt.get_cmap("viridis").with_extremes(under="black")  # black: error exactly 0
    columns = min(4, len(maps))
    rows = math.ceil(len(maps) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.3 * columns + 1, 3.3 * rows), squeeze=False)
    x, y = centres[:, 0].cpu().numpy(), centres[:, 1].cpu().numpy()
    size = min(30.0, max(2.0, 8000 / len(x)))  # marker area: dense maps for 5,000 centres, visible for few
    for ax, (label, error) in zip(axes.flat, maps.items()):
        points = ax.scatter(x, y, c=error.numpy(), s=size, cmap=cmap, norm=norm, linewidths=0)
        ax.plot(*simulation.TARGET_CENTRE, "r+", markersize=8)
        ax.set_title(f"{label}: mean {error.mean().item():.3g}", fontsize=9)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(maps):]:
        ax.axis("off")
    fig.suptitle("final error per anchor centre (sum over its 343 cases)", fontsize=10)
    fig.colorbar(points, ax=axes.ravel().tolist(), shrink=0.8, label="summed final l1 error (log)")
    save_figure(fig, path)
    plt.close(fig)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--losses", default=",".join(boxloss.list_losses()),
                        help="comma list of registered box losses, each optionally name:key=value[:key=value]")
    parser.add_argument("--centres", type=int, default=5000, help="anchor centres in the disc (paper: 5000)")
    parser.add_argument("--iterations", type=int, default=200, help="gradient steps (paper: 200)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the anchor centres")
    parser.add_argument("--out", type=Path, default=Path("runs/simulate"), help="output directory")
    parser.add_argument("--no-iou-factor", dest="iou_factor", action="store_false",
                        help="plain steps -eta*grad instead of -eta*(2 - IoU)*grad")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    try:
        args.runs = [parse_loss(text) for text in args.losses.split(",") if text.strip()]
    except (KeyError, ValueError) as error:
        parser.error(error.args[0])
    if not args.runs:
        parser.error("--losses names no loss")
    if args.centres < 1 or args.iterations < 0 or args.threads < 1:
        parser.error("--centres and --threads must be >= 1, --iterations >= 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    torch.set_num_threads(args.threads)
    (args.out / "per_loss").mkdir(parents=True, exist_ok=True)
    common = {"protocol": PROTOCOL, "centres": args.centres, "iterations": args.iterations, "seed": args.seed,
              "iou_factor": args.iou_factor, "dtype": "float32"}
    cases = simulation.build_cases(args.centres, args.seed, torch.float32, args.device)
    print(f"{cases.num_cases:,} cases ({args.centres} centres x 343), {args.iterations} iterations, "
          f"device {args.device}, {args.threads} thread(s) -> {args.out}", file=sys.stderr, flush=True)

    records = {}
    for position, (label, name, overrides) in enumerate(args.runs, 1):
        params = {key: param.default for key, param in boxloss.get_spec(name).params.items()} | overrides
        settings = {**common, "loss": name, "params": params}
        path = loss_file(args.out, label)
        record = load_finished(path, settings)
        if record is not None:
            print(f"[{position}/{len(args.runs)} {label}] already done with these settings: {path}",
                  file=sys.stderr, flush=True)
        else:
            result = simulation.simulate(name, cases, args.iterations, args.iou_factor, params,
                                         Progress(label, f"{position}/{len(args.runs)}"))
            record = {"settings": settings, "device": str(args.device), "threads": args.threads,
                      "summary": simulation.summarise(result), "error_curve": result.error_curve.tolist(),
                      "centre_error": result.centre_error.tolist()}
            del result
            write_json(path, record)
            overall = record["summary"]["all"]
            print(f"[{position}/{len(args.runs)} {label}] done in {record['summary']['seconds']:.1f} s: mean l1 "
                  f"error {overall['mean_l1_error']:.4g}, mean IoU {overall['mean_iou']:.4f}",
                  file=sys.stderr, flush=True)
        records[label] = record
        write_curves_csv(args.out / "curves.csv", records)
        write_json(args.out / "summary.json",
                   {"settings": common, "losses": {key: rec["summary"] for key, rec in records.items()}})
    plot_curves(args.out / "curves.png", records, cases.num_cases)
    plot_error_maps(args.out / "error_maps.png", records, cases.centres)
    return 0


if __name__ == "__main__":
    sys.exit(main())
