"""Statistics over seeds, the markdown report and the AP-vs-IoU plot, from the benchmark's result JSONs alone.

- Per config and split, for AP50, AP55, ..., AP95, AP, APs, APm, APl: mean and sample standard deviation
  (n - 1 in the denominator) over the seeds, with n. A metric COCO could not measure (-1, e.g. APl with no large
  objects) is left out of its mean and n.
- Per config other than the baseline: the paired difference config - baseline on the same seed, for AP, AP50,
  AP75 and AP90: the per-seed values, their mean and sample standard deviation, and the power analysis of
  :mod:`.power`: the 95 % t interval and a paired bootstrap interval of the mean, the smallest difference these
  seeds resolve at 95 %, whether this one is resolved (the interval excludes 0), and the seeds needed to resolve
  0.5 and 1 AP at the measured spread. (``within_seed_noise``, |mean| <= std, is kept in summary.json; the report's
  verdict is the 95 % one.)

Files written into ``out`` (atomically): ``summary.json`` (every number), ``ap_vs_iou.png`` (one panel per split,
one line per config, +-1 std error bars) and ``report.md``.
"""

from __future__ import annotations

import io
import json
import math
import os
import statistics
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..evaluation import AP_KEYS, IOU_THRESHOLDS
from .._io import format_table, write_bytes_atomic, write_json_atomic, write_text_atomic
from ..errors import ConfigError
from .plan import EVALUATION_SPLITS
from .power import power_summary
from .results import comparable, format_seconds, read_result, result_file_problem

TABLE_KEYS = (*AP_KEYS, "AP", "APs", "APm", "APl")
PAIRED_KEYS = ("AP", "AP50", "AP75", "AP90")
SUMMARY_FILE, PLOT_FILE, REPORT_FILE = "summary.json", "ap_vs_iou.png", "report.md"


# ---------------------------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------------------------
def mean_std(values: Iterable[float]) -> dict[str, Any]:
    """``{"mean", "std", "n"}``: sample standard deviation (n - 1); mean None for n = 0, std None for n < 2."""
    values = [float(v) for v in values]
    n = len(values)
    return {"mean": statistics.fmean(values) if n else None, "std": statistics.stdev(values) if n >= 2 else None,
            "n": n}


def _measured(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value != -1 and math.isfinite(value)


def paired_difference(config: Mapping[int, float], baseline: Mapping[int, float]) -> dict[str, Any]:
    """``config[seed] - baseline[seed]`` over the seeds both have: ``{"values": {seed: d}, "mean", "std", "n"}``."""
    seeds = sorted(seed for seed in config if seed in baseline and _measured(config[seed])
                   and _measured(baseline[seed]))
    values = {seed: float(config[seed]) - float(baseline[seed]) for seed in seeds}
    return {"values": values, **mean_std(values.values())}


def within_seed_noise(difference: Mapping[str, Any]) -> bool | None:
    """Whether the mean paired difference lies within one standard deviation of zero; None when std is undefined."""
    if difference.get("mean") is None or difference.get("std") is None:
        return None
    return abs(difference["mean"]) <= difference["std"]


# ---------------------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------------------
def load_results(results_dir: str | os.PathLike, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Every complete result record in ``results_dir`` (``*.json``; temporary and incomplete files are skipped)."""
    results = []
    for path in sorted(Path(results_dir).glob("*.json")):
        if path.name.startswith("."):
            continue
        result = read_result(path)
        if result is None:
            log(f"benchmark: skipping {path}: not a complete result ({result_file_problem(path)})")
        else:
            results.append(result)
    return results


def _shared(result: Mapping[str, Any]) -> dict[str, Any]:
    benchmark = result["benchmark"]
    evaluation = {k: v for k, v in result["evaluation"].items() if k != "device"}
    return json.loads(json.dumps({"data": benchmark.get("data"), "evaluation": evaluation}, sort_keys=True))


def check_consistent(results: Sequence[Mapping[str, Any]]) -> None:
    """Results summarized together share the dataset and the evaluation (splits included); a config's seeds share
    all its settings. Raises ConfigError naming the first two runs that differ."""
    first: dict[str, Any] = {}
    per_cfg: dict[str, tuple[str, dict[str, Any]]] = {}
    for result in results:
        shared = _shared(result)
        if not first:
            first = {"run": result["run"], "shared": shared}
        elif shared != first["shared"]:
            raise ConfigError(f"results {first['run']} and {result['run']} come from different benchmark settings "
                              f"({first['shared']} vs {shared}); summarize one setting per out= directory")
        settings = {k: v for k, v in comparable(result["settings"]).items() if k != "seed"}
        if result["cfg"] in per_cfg and per_cfg[result["cfg"]][1] != settings:
            raise ConfigError(f"results {per_cfg[result['cfg']][0]} and {result['run']} of config {result['cfg']} "
                              "were made with different settings")
        per_cfg.setdefault(result["cfg"], (result["run"], settings))


def summarize(results: Sequence[Mapping[str, Any]], baseline: str | None = None,
              order: Sequence[str] | None = None) -> dict[str, Any]:
    """Statistics of ``results`` (result records): per config and split, and paired against ``baseline``.

    ``order``: configs in this order first (default: the order of the latest command's ``cfgs``); others follow,
    baseline first then by name. The summary depends only on the results, not on the order they finished in.
    """
    if not results:
        raise ConfigError("no finished results to summarize")
    if order is None:
        latest = max(results, key=lambda r: (r.get("finished_at") or "", r["run"]))
        order = latest["benchmark"].get("cfgs") or []
    check_consistent(results)
    present = {result["cfg"] for result in results}
    if baseline is None:
        recorded = results[0]["benchmark"].get("baseline")
        baseline = recorded if recorded in present else ("ciou" if "ciou" in present else sorted(present)[0])
    configs = [c for c in (order or []) if c in present]
    configs += sorted(present - set(configs), key=lambda c: (c != baseline, c))
    split_set = {split for result in results for split in result["evaluation"]["splits"]}
    splits = [s for s in EVALUATION_SPLITS if s in split_set] + sorted(split_set - set(EVALUATION_SPLITS))
    seeds = sorted({result["seed"] for result in results})
    by_run = {(result["cfg"], result["seed"]): result for result in results}

    def values(cfg: str, split: str, key: str) -> dict[int, float]:
        return {seed: by_run[cfg, seed]["metrics"][split][key] for seed in seeds
                if (cfg, seed) in by_run and _measured(by_run[cfg, seed]["metrics"].get(split, {}).get(key))}

    stats = {split: {cfg: {key: {**mean_std(values(cfg, split, key).values()),
                                 "seeds": sorted(values(cfg, split, key))}
                           for key in TABLE_KEYS} for cfg in configs} for split in splits}
    paired = {split: {cfg: {key: paired_difference(values(cfg, split, key), values(baseline, split, key))
                            for key in PAIRED_KEYS} for cfg in configs if cfg != baseline}
              for split in splits} if baseline in present else {split: {} for split in splits}
    noise = {split: {cfg: {key: within_seed_noise(d) for key, d in per_key.items()}
                     for cfg, per_key in paired[split].items()} for split in splits}
    power = {split: {cfg: {key: power_summary(d["values"]) for key, d in per_key.items()}
                     for cfg, per_key in paired[split].items()} for split in splits}
    return {"configs": configs, "baseline": baseline, "baseline_present": baseline in present, "splits": splits,
            "seeds": seeds, "runs": sorted(result["run"] for result in results), "stats": stats, "paired": paired,
            "within_seed_noise": noise, "power": power, "meta": _meta(results, configs)}


def _per_cfg(results: Sequence[Mapping[str, Any]], configs: Sequence[str], key: str) -> str:
    """A setting's value, or ``value (cfg), ...`` when the configs differ."""
    by_cfg = {}
    for result in results:
        by_cfg.setdefault(result["cfg"], result["settings"].get(key))
    distinct = {json.dumps(v) for v in by_cfg.values()}
    if len(distinct) == 1:
        return str(next(iter(by_cfg.values())))
    return ", ".join(f"{by_cfg[c]} ({c})" for c in configs if c in by_cfg)


def _unique(items: Iterable[Any]) -> list[Any]:
    seen, unique = set(), []
    for item in items:
        marker = json.dumps(item, sort_keys=True)
        if marker not in seen:
            seen.add(marker)
            unique.append(item)
    return unique


def _meta(results: Sequence[Mapping[str, Any]], configs: Sequence[str]) -> dict[str, Any]:
    ordered = sorted(results, key=lambda r: r.get("finished_at") or "")
    return {
        "commands": _unique(r.get("command") for r in ordered),
        "data": results[0]["benchmark"].get("data"),
        "embedded_data": bool(results[0]["benchmark"].get("embedded_data")),
        "overrides": ordered[-1]["benchmark"].get("overrides"),
        "epochs": _per_cfg(results, configs, "epochs"),
        "imgsz": _per_cfg(results, configs, "imgsz"),
        "batch": _per_cfg(results, configs, "batch"),
        "model": _per_cfg(results, configs, "model"),
        "box_loss": {c: next(r["settings"].get("box_loss") for r in results if r["cfg"] == c) for c in configs},
        "evaluation": {k: v for k, v in results[0]["evaluation"].items()},
        "machines": _unique(r.get("machine") for r in ordered),
        "versions": _unique(r.get("versions") for r in ordered),
        "total_seconds": sum(float(r["elapsed_s"]) for r in results),
        "first_finished": ordered[0].get("finished_at"),
        "last_finished": ordered[-1].get("finished_at"),
    }


# ---------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------
def _cell(stat: Mapping[str, Any], digits: int = 3, signed: bool = False) -> str:
    if stat.get("mean") is None:
        return "-"
    sign = "+" if signed else ""
    text = f"{stat['mean']:{sign}.{digits}f}"
    return text if stat.get("std") is None else f"{text} ± {stat['std']:.{digits}f}"


def stats_table(summary: Mapping[str, Any], split: str, keys: Sequence[str] = TABLE_KEYS) -> str:
    """Markdown: one row per config, ``mean ± std`` per metric, n = number of seeds."""
    rows = []
    for cfg in summary["configs"]:
        per_key = summary["stats"][split][cfg]
        label = f"{cfg} (baseline)" if cfg == summary["baseline"] else cfg
        rows.append([label, str(max(per_key[key]["n"] for key in keys)), *(_cell(per_key[key]) for key in keys)])
    return format_table(["config", "n", *keys], rows, align_right_from=1)


def _interval(values: Any) -> str:
    return "-" if values is None else f"[{values[0]:+.4f}, {values[1]:+.4f}]"


def _verdict(power: Mapping[str, Any]) -> str:
    if power.get("resolved") is None:
        return "n < 2"
    return "**resolved** (95 %)" if power["resolved"] else "not resolved"


def paired_table(summary: Mapping[str, Any], split: str) -> str:
    """Markdown: one row per (config, metric): mean ± std of config - baseline, n, each seed's difference, the 95 % t
    and bootstrap intervals and the verdict at 95 %."""
    seeds = summary["seeds"]
    rows = []
    for cfg, per_key in summary["paired"][split].items():
        for key, difference in per_key.items():
            power = summary["power"][split][cfg][key]
            rows.append([cfg, key, _cell(difference, 4, signed=True), str(difference["n"]),
                         *(f"{difference['values'][s]:+.4f}" if s in difference["values"] else "-" for s in seeds),
                         _interval(power.get("t_ci")), _interval(power.get("bootstrap_ci")), _verdict(power)])
    return format_table(["config", "metric", f"mean ± std vs {summary['baseline']}", "n",
                         *(f"seed {s}" for s in seeds), "95 % t CI", "95 % bootstrap CI", "verdict"], rows,
                        align_right_from=2)


def power_table(summary: Mapping[str, Any], split: str) -> str:
    """Markdown: per (config, metric) the smallest difference these seeds resolve at 95 %, and the seeds needed
    to resolve 0.5 AP (0.005) and 1 AP (0.01) at the measured spread."""
    rows = []
    for cfg, per_key in summary["power"][split].items():
        for key, power in per_key.items():
            needed = power.get("seeds_needed") or {}
            resolvable = power.get("resolvable")
            rows.append([cfg, key, str(power["n"]), "-" if power.get("std") is None else f"{power['std']:.4f}",
                         "-" if resolvable is None else f"{resolvable:.4f}",
                         *(str(needed.get(t)) if needed.get(t) is not None else f"> {power.get('max_seeds')}"
                           for t in ("0.005", "0.01"))])
    return format_table(["config", "metric", "n", "std of the differences", "resolvable at 95 %",
                         "seeds for 0.5 AP (0.005)", "seeds for 1 AP (0.01)"], rows, align_right_from=2)


def noise_statements(summary: Mapping[str, Any], split: str) -> list[str]:
    """Plain sentences: for each config, which paired differences these seeds resolve at 95 %, and how many seeds
    0.5 AP would need."""
    baseline, lines = summary["baseline"], []
    for cfg, per_key in summary["power"][split].items():
        ap = per_key["AP"]
        if not ap["n"]:
            lines.append(f"- {cfg} vs {baseline} ({split}): no seed in common, no paired difference.")
            continue
        if ap.get("std") is None:
            lines.append(f"- {cfg} vs {baseline} ({split}): AP {ap['mean']:+.4f} on {ap['n']} paired seed; one seed "
                         "cannot separate the difference from seed noise.")
            continue
        resolved = [key for key, p in per_key.items() if p.get("resolved")]
        needed = (ap.get("seeds_needed") or {}).get("0.005")
        text = (f"- {cfg} vs {baseline} ({split}): AP {ap['mean']:+.4f}, 95 % CI {_interval(ap['t_ci'])} over "
                f"{ap['n']} seeds; these seeds resolve differences above {ap['resolvable']:.4f} AP at 95 %")
        text += f"; resolved: {', '.join(resolved)}" if resolved else "; **none resolved**"
        text += (f"; 0.5 AP (0.005) would need about {needed} seeds" if needed
                 else f"; 0.5 AP (0.005) would need more than {ap.get('max_seeds')} seeds")
        lines.append(text + ".")
    return lines


def _data_text(data: str, embedded: bool) -> str:
    return f"`{data}` (embedded synthetic dataset)" if embedded else f"`{data}`"


def format_report(summary: Mapping[str, Any], plot_file: str | None = PLOT_FILE,
                  summarize_command: str | None = None) -> str:
    meta = summary["meta"]
    lines = ["# Box-loss benchmark", ""]
    commands = meta["commands"]
    lines.append("Produced by:" if len(commands) == 1 else "Produced by these commands (the results were resumed):")
    lines += ["", "```", *commands, "```", ""]
    if summarize_command:
        lines += ["Summarized by:", "", "```", summarize_command, "```", ""]
    machines = "; ".join(f"CPU {m.get('cpu')} ({m.get('cpu_count')} cores), GPU {m.get('gpu') or 'none'}"
                         for m in meta["machines"] if m) or "unknown"
    version_text = "; ".join(", ".join(f"{k} {v}" for k, v in versions.items()) for versions in meta["versions"]
                             if versions) or "unknown"
    evaluation = meta["evaluation"]
    overrides = " ".join(f"{k}={v}" for k, v in (meta["overrides"] or {}).items()) or "none"
    configs_text = ", ".join(f"{c} (box_loss {meta['box_loss'][c]})" for c in summary["configs"])
    lines += [
        f"- dataset: {_data_text(meta['data'], meta['embedded_data'])}; "
        f"evaluated splits: {', '.join(summary['splits'])}",
        f"- configs: {configs_text}; "
        f"baseline: {summary['baseline']}" + ("" if summary["baseline_present"] else " (no finished run)"),
        f"- seeds: {', '.join(map(str, summary['seeds']))} ({len(summary['runs'])} runs)",
        f"- epochs: {meta['epochs']}; image size: {meta['imgsz']}; batch: {meta['batch']}; model: {meta['model']}",
        f"- train overrides (latest command): {overrides}",
        f"- evaluation: COCO AP with {evaluation.get('tool')} ({evaluation.get('backend')}, max_det "
        f"{evaluation.get('max_det')}, NMS IoU {evaluation.get('iou')}, at the training image size)",
        f"- machine: {machines}",
        f"- total time: {format_seconds(meta['total_seconds'])} (training + evaluation, summed over the runs; "
        f"finished {meta['first_finished']} to {meta['last_finished']})",
        f"- versions: {version_text}",
        "",
        "Mean ± sample standard deviation over seeds (n seeds; AP values in [0, 1]; `-`: nothing to measure). "
        "Paired differences compare a config with the baseline trained on the same seed.",
        "",
    ]
    if plot_file:
        lines += [f"![AP vs IoU threshold]({plot_file})", ""]
    for split in summary["splits"]:
        lines += [f"## Split `{split}`", "", "### AP per IoU threshold", "",
                  stats_table(summary, split, (*AP_KEYS, "AP")), "", "### AP by object size", "",
                  stats_table(summary, split, ("AP", "APs", "APm", "APl")), ""]
        if summary["paired"][split]:
            lines += [f"### Paired difference against {summary['baseline']}", "", paired_table(summary, split), "",
                      *noise_statements(summary, split), "",
                      "### What these seeds can resolve", "",
                      "The smallest paired difference n seeds resolve at 95 % (the half-width of the t interval), and "
                      "the seeds that 0.5 and 1 AP point (0.005 and 0.01 on the tables' 0-1 scale) would need if the "
                      "seed-to-seed spread stays as measured (see "
                      "boxloss/benchmark/power.py).", "", power_table(summary, split), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Plot
# ---------------------------------------------------------------------------------------------------------------
def plot_png(summary: Mapping[str, Any]) -> bytes:
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


def _json_safe(value: Any) -> Any:
    """Seed keys as strings (JSON object keys)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def write_summary(out: str | os.PathLike, results: Sequence[Mapping[str, Any]], baseline: str | None = None,
                  order: Sequence[str] | None = None, summarize_command: str | None = None,
                  log: Callable[[str], None] = print) -> dict[str, Path]:
    """``summary.json``, ``ap_vs_iou.png`` and ``report.md`` in ``out``; prints the AP tables to ``log``."""
    out = Path(out)
    summary = summarize(results, baseline, order)
    paths = {"summary": out / SUMMARY_FILE, "plot": out / PLOT_FILE, "report": out / REPORT_FILE}
    write_json_atomic(paths["summary"], _json_safe(summary), indent=2)
    write_bytes_atomic(paths["plot"], plot_png(summary))
    write_text_atomic(paths["report"], format_report(summary, PLOT_FILE, summarize_command) + "\n")
    for split in summary["splits"]:
        log(f"\n{split}: mean ± std over seeds")
        log(stats_table(summary, split, ("AP50", "AP75", "AP90", "AP")))
        for line in noise_statements(summary, split):
            log(line.replace("**", ""))
    log(f"\nbenchmark: report {paths['report']}")
    return paths
