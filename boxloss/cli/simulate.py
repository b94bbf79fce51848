"""Run the DIoU paper's simulation experiment (arXiv 1911.08287) for registered box losses.

    python scripts/simulate.py                                  # every registered loss, full protocol
    python scripts/simulate.py losses=ciou,eiou centres=500 iterations=100 out=runs/sim-small
    python scripts/simulate.py losses=focal_eiou,focal_eiou:norm=none   # a hyper-parameter overridden
    python scripts/simulate.py iou_factor=false out=runs/simulate-no-factor

The experiment itself lives in ``boxloss.simulation``; this script parses arguments, reports progress on
stderr, skips losses already finished with the same settings and writes the outputs into ``out``, each
atomically (temporary file, then rename):

    per_loss/<loss>.json   settings, summary, total-error curve, per-centre final error; written as soon as
                           that loss finishes, so an interrupt loses nothing finished
    curves.csv             iteration, then the total l1 error over all cases for each loss
    curves.png             the same, log-scale y
    error_maps.png         per anchor centre, the summed final error of its 343 cases (paper's Figure 4)
    summary.json           per loss: final mean l1 error per case, mean IoU, fractions with IoU > 0.5 and
                           > 0.9, over all cases and over the cases starting without overlap; seconds

curves.csv and summary.json are rewritten after every loss, the two plots once at the end (an
interrupted run gets them on the re-run, which skips the finished losses). An ``out`` whose summary.json was made
with other settings, or holds losses this run would drop from it, is replaced only with ``force=true`` (a typo must
not overwrite published results); every argument, ``device`` included, is checked before anything is written.
``threads`` defaults to 1: on this shared 2-core machine two OpenMP threads were several times slower per
operation than one whenever another job was busy (6.8 ms against 0.8 ms for one multiply of 1.7M floats).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch

from .. import simulation
from .._io import atomic_write, check_output_folder, write_json_atomic, write_text_atomic
from ..devices import check_device
from ..errors import ConfigError
from ..keyvalues import format_help, parse_keyvalues, parse_value, run_cli
from ..registry import BOX_LOSSES, get_spec
from ..param import Param

PROG = "simulate.py"
PROTOCOL = "diou-simulation-v1"  # bump when boxloss.simulation changes what a setting produces
SIMULATE_KEYS: dict[str, Param] = {
    "losses": Param(None, "comma list of registered box losses, each optionally name:key=value[:key=value] "
                    "(default: every registered loss that wraps none)", value_type=str),
    "centres": Param(5000, "anchor centres in the disc (paper: 5000)", lambda n: n >= 1, ">= 1"),
    "iterations": Param(200, "gradient steps (paper: 200)", lambda n: n >= 0, ">= 0"),
    "seed": Param(0, "seed of the anchor centres", lambda n: n >= 0, ">= 0"),
    "out": Param("runs/simulate", "output directory", lambda p: bool(p), "a non-empty path"),
    "iou_factor": Param(True, "steps -eta (2 - IoU) grad as in the paper; false: plain -eta grad"),
    "device": Param("cpu", "one device: cpu, mps, or a CUDA index (0, cuda:1; cuda is 0)", value_type=(str, int)),
    "threads": Param(1, "torch CPU threads", lambda n: n >= 1, ">= 1"),
    "force": Param(False, "replace an out= whose summary.json has other settings or other losses"),
}


def parse_loss(text: str) -> tuple[str, str, dict]:
    """``"name"`` or ``"name:key=value:key=value"`` -> (label, name, checked hyper-parameters).

    Values are read as YAML scalars and checked by the registry (:meth:`boxloss.registry.LossSpec.bind`).
    """
    name, *assignments = text.strip().split(":")
    try:
        spec = get_spec(name)
    except KeyError as error:
        raise ConfigError(f"losses: {error.args[0]}") from None
    if spec.boxes != "xyxy":
        raise ConfigError(f"losses: {name} takes rotated boxes ({spec.boxes}); the simulation regresses axis-aligned "
                          "boxes")
    overrides = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or key not in spec.params:
            raise ConfigError(f"losses: {text!r}: expected key=value with key one of: "
                              f"{', '.join(spec.params) or 'none'}")
        overrides[key] = parse_value(raw)
    bound = spec.bind(**overrides)
    label = ":".join([name] + [f"{key}={bound.kwargs[key]}" for key in sorted(overrides)])
    return label, name, {key: bound.kwargs[key] for key in overrides}


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
    write_text_atomic(path, "\n".join(lines) + "\n")


def write_json(path: Path, data) -> None:
    write_json_atomic(path, data, indent=1)


def save_figure(fig, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))


def plot_curves(path: Path, records: dict, num_cases: int) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    colours = plt.get_cmap("tab10" if len(records) <= 10 else "tab20")
    styles = ("-", "--", ":", "-.")  # with more than 20 curves the colours repeat, the (colour, style) pairs do not
    for i, (label, record) in enumerate(records.items()):
        ax.plot(record["error_curve"], label=label, linewidth=1.5, color=colours(i % colours.N),
                linestyle=styles[(i // colours.N) % len(styles)])
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"total l1 error over {num_cases:,} cases")
    ax.set_title("DIoU-paper simulation: regression error")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=1 if len(records) <= 16 else 2)
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
        points = ax.scatter(x, y, c=error.numpy(), s=size, cmap=cmap, norm=norm, linewidths=0, antialiased=False)
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


def parse_args(argv: list[str]) -> dict:
    """The checked settings, with ``runs`` = [(label, name, overrides), ...]."""
    args = parse_keyvalues(argv, SIMULATE_KEYS)
    losses = args["losses"]
    if losses is None:
        losses = ",".join(BOX_LOSSES.names(wrapped=False, boxes="xyxy"))
    args["runs"] = [parse_loss(text) for text in str(losses).split(",") if text.strip()]
    if not args["runs"]:
        raise ConfigError("losses= names no loss")
    check_output_folder(args["out"], "out")
    args["out"] = Path(args["out"])
    args["device"] = check_device(args["device"]).torch_name()  # one device: cpu, mps or cuda:<index>
    return args


def check_replaces(out: Path, common: dict, labels: list[str], force: bool) -> None:
    """ConfigError (unless ``force``) when ``out/summary.json`` holds other settings or losses this run would drop."""
    try:
        previous = json.loads((out / "summary.json").read_text())
    except (OSError, ValueError):
        return
    dropped = [label for label in previous.get("losses", {}) if label not in labels]
    if force or (previous.get("settings") == common and not dropped):
        return
    what = f"other settings ({previous.get('settings')})" if previous.get("settings") != common else \
        f"losses this run would drop ({', '.join(dropped[:3])}{', ...' if len(dropped) > 3 else ''})"
    raise ConfigError(f"{out / 'summary.json'} holds {what}; add force=true to replace it, or choose another out=")


def _main(argv: list[str]) -> int:
    args = parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    torch.set_num_threads(args["threads"])
    out = args["out"]
    common = {"protocol": PROTOCOL, "centres": args["centres"], "iterations": args["iterations"], "seed": args["seed"],
              "iou_factor": args["iou_factor"], "dtype": "float32"}
    check_replaces(out, common, [label for label, _, _ in args["runs"]], args["force"])
    (out / "per_loss").mkdir(parents=True, exist_ok=True)
    cases = simulation.build_cases(args["centres"], args["seed"], torch.float32, args["device"])
    print(f"{cases.num_cases:,} cases ({args['centres']} centres x 343), {args['iterations']} iterations, "
          f"device {args['device']}, {args['threads']} thread(s) -> {out}", file=sys.stderr, flush=True)

    records = {}
    runs = args["runs"]
    for position, (label, name, overrides) in enumerate(runs, 1):
        params = get_spec(name).bind(**overrides).kwargs
        settings = {**common, "loss": name, "params": params}
        path = loss_file(out, label)
        record = load_finished(path, settings)
        if record is not None:
            print(f"[{position}/{len(runs)} {label}] already done with these settings: {path}",
                  file=sys.stderr, flush=True)
        else:
            result = simulation.simulate(name, cases, args["iterations"], args["iou_factor"], params,
                                         Progress(label, f"{position}/{len(runs)}"))
            record = {"settings": settings, "device": str(args["device"]), "threads": args["threads"],
                      "summary": simulation.summarize(result), "error_curve": result.error_curve.tolist(),
                      "centre_error": result.centre_error.tolist()}
            del result
            write_json(path, record)
            overall = record["summary"]["all"]
            print(f"[{position}/{len(runs)} {label}] done in {record['summary']['seconds']:.1f} s: mean l1 "
                  f"error {overall['mean_l1_error']:.4g}, mean IoU {overall['mean_iou']:.4f}",
                  file=sys.stderr, flush=True)
        records[label] = record
        write_curves_csv(out / "curves.csv", records)
        write_json(out / "summary.json",
                   {"settings": common, "losses": {key: rec["summary"] for key, rec in records.items()}})
    plot_curves(out / "curves.png", records, cases.num_cases)
    plot_error_maps(out / "error_maps.png", records, cases.centres)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, lambda: format_help(__doc__, SIMULATE_KEYS), _main, argv)


if __name__ == "__main__":
    sys.exit(main())
