"""The report's plots, as PNG bytes (matplotlib's Agg canvas: no display, no pyplot state): AP against the IoU
threshold (:data:`PLOT_FILE`), the learning curves (:data:`CURVES_PLOT`) and TIDE's paired differences
(:data:`TIDE_PLOT`), each from a summary (:mod:`.summary`)."""

from __future__ import annotations

import io
import math
from typing import Any, Mapping, Sequence

import numpy as np

from ..evaluation import AP_KEYS, IOU_THRESHOLDS
from . import curves, tide_report

PLOT_FILE, CURVES_PLOT, TIDE_PLOT = "ap_vs_iou.png", "curves.png", "tide.png"


def ap_vs_iou_png(summary: Mapping[str, Any]) -> bytes:
    """AP vs IoU threshold, one panel per split, one line per config with ±1 std error bars (PNG bytes, Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    splits, configs = summary["splits"], summary["configs"]
    figure = Figure(figsize=(5.5 * len(splits), 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(splits), squeeze=False)[0]
    width = 0.012  # spread the configs' markers so error bars do not hide each other
    for ax, split in zip(axes, splits):
        for i, cfg in enumerate(configs):
            per_key = summary["stats"][split][cfg]
            offset = (i - (len(configs) - 1) / 2) * width / max(len(configs) - 1, 1)
            x = [t + offset for t in IOU_THRESHOLDS]
            y = [per_key[k]["mean"] if per_key[k]["mean"] is not None else math.nan for k in AP_KEYS]
            err = [per_key[k]["std"] or 0.0 for k in AP_KEYS]
            n = max(per_key[k]["n"] for k in AP_KEYS)
            ax.errorbar(x, y, yerr=err, marker="o", markersize=3.5, capsize=3, linewidth=1.3,
                        label=f"{cfg} (n={n})" + (" — baseline" if cfg == summary["baseline"] else ""))
        ax.set_title(f"split: {split}")
        ax.set_xlabel("IoU threshold")
        ax.set_ylabel("AP (mean ± std over seeds)")
        ax.set_xticks(list(IOU_THRESHOLDS))
        ax.set_xticklabels([f"{t:.2f}" for t in IOU_THRESHOLDS], fontsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    return buffer.getvalue()


def curves_png(curves_summary: Mapping[str, Any]) -> bytes:
    """mAP50-95 and mAP50 against epoch, one line per config (mean over seeds) with a ±1 std band (PNG, Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(curves.CURVE_METRICS))
    for ax, name in zip(axes, curves.CURVE_METRICS):
        for cfg, entry in curves_summary["configs"].items():
            mean = np.asarray(entry["mean"][name])
            std = np.asarray([s if s is not None else 0.0 for s in entry["std"][name]])
            epochs = np.arange(1, len(mean) + 1)
            flag = {True: "", False: ", not converged", None: ""}[entry["convergence"]["converged"]]
            line, = ax.plot(epochs, mean, linewidth=1.4, label=f"{cfg} (n={entry['n']}{flag})")
            ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.15, linewidth=0)
        for epoch in curves_summary["checkpoints"]:
            ax.axvline(epoch, color="0.8", linewidth=0.8, zorder=0)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"val {name} (ultralytics, mean ± std over seeds)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def tide_png(tide: Mapping[str, Any], splits: Sequence[str], baseline: str) -> bytes:
    """Paired ΔAP difference (config - baseline) per error type, one bar group per config, ±1 std of the paired
    differences as error bars; one row per split, one panel per foreground IoU (PNG, Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 3.8 * len(splits)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(splits), len(tide_report.THRESHOLDS), squeeze=False)
    x = np.arange(len(tide_report.TIDE_TYPES))
    for row, split in zip(axes, splits):
        paired = tide[split]["paired"]
        width = 0.8 / max(len(paired), 1)
        for ax, thr in zip(row, tide_report.THRESHOLDS):
            for i, cfg in enumerate(paired):
                entries = [paired[cfg][thr][error] for error in tide_report.TIDE_TYPES]
                means = [e["mean"] if e["mean"] is not None else np.nan for e in entries]
                errors = [e["std"] or 0.0 for e in entries]
                ax.bar(x + (i - (len(paired) - 1) / 2) * width, means, width, yerr=errors, capsize=2,
                       label=f"{cfg} (n={entries[0]['n']})")
            ax.axhline(0, color="0.3", linewidth=0.8)
            ax.set_xticks(x)
            ax.set_xticklabels(tide_report.TIDE_TYPES)
            ax.set_title(f"split {split}: TIDE at foreground IoU 0.{thr[2:]}")
            ax.set_ylabel(f"paired ΔAP difference vs {baseline}\n(< 0: less AP lost to that error)", fontsize=8)
            ax.grid(alpha=0.3, axis="y")
            ax.legend(fontsize=7)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()
