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

import numpy as np

from ..evaluation import AP_KEYS, IOU_THRESHOLDS
from ..evaluation.coco_eval import FAMILY_KEYS
from ..evaluation.matches import ap_per_threshold
from .._io import format_table, write_bytes_atomic, write_json_atomic, write_text_atomic
from ..errors import ConfigError
from ..benchmark.plan import EVALUATION_SPLITS
from . import bootstrap, curves, match_store, tide_report
from .multiplicity import holm_verdicts, paired_t_pvalue
from .power import power_summary
from ..benchmark.results import (NOT_COMPARED_EVALUATION, comparable, format_seconds, portable_path, read_result,
                      result_file_problem, run_file)

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
    evaluation = {k: v for k, v in result["evaluation"].items() if k not in NOT_COMPARED_EVALUATION}
    return json.loads(json.dumps({"data": portable_path(benchmark.get("data")), "evaluation": evaluation},
                                 sort_keys=True))


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
              order: Sequence[str] | None = None, out: str | os.PathLike | None = None,
              resamples: int = bootstrap.RESAMPLES, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Statistics of ``results`` (result records): per config and split, and paired against ``baseline``.

    ``order``: configs in this order first (default: the order of the latest command's ``cfgs``); others follow,
    baseline first then by name. The summary depends only on the results (and, given the benchmark folder
    ``out``, the learning curves and per-image match tables stored there), not on the order they finished in.
    ``resamples``: draws of the two-stage bootstrap (0: leave it out).
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
    multiplicity = {split: _holm(paired[split], power[split]) for split in splits}
    families = {family: _family_summary(results, family, configs, baseline, splits, seeds)
                for family in sorted({f for r in results for f in (r.get("families") or {})})}
    curve_runs: dict[str, dict[int, Any]] = {}
    for result in results:
        curve = result.get("curve")
        if curve is None and out is not None:  # the run's folder as recorded, else the standard layout
            curve = curves.read_curve_file(run_file(result, "train_dir", out) / "results.csv") or \
                curves.read_curve_file(Path(out) / "train" / result["run"] / "results.csv")
        if curve:
            curve_runs.setdefault(result["cfg"], {})[result["seed"]] = curve
    return {"configs": configs, "baseline": baseline, "baseline_present": baseline in present, "splits": splits,
            "seeds": seeds, "runs": sorted(result["run"] for result in results), "stats": stats, "paired": paired,
            "within_seed_noise": noise, "power": power, "multiplicity": multiplicity, "families": families,
            "curves": curves.summarize_curves(curve_runs, configs),
            "tide": tide_report.summarize_tide(results, configs, baseline, splits) if baseline in present else None,
            "two_stage": _two_stage(results, configs, baseline, splits, out, resamples, log)
            if baseline in present else None,
            "meta": _meta(results, configs)}


def _family_summary(results: Sequence[Mapping[str, Any]], family: str, configs: Sequence[str], baseline: str,
                    splits: Sequence[str], seeds: Sequence[int]) -> dict[str, Any]:
    """A metric family beside the boxes (``mask``: COCO mask AP; ``pose``: keypoint AP, OKS) with the box rows'
    statistics: mean ± std per config and split, paired differences against the baseline with their power
    summaries, and Holm over the family's own comparisons of a split."""
    by_run = {(r["cfg"], r["seed"]): r for r in results}
    keys = [key for key in FAMILY_KEYS[family] if key in (*AP_KEYS, "AP", "APs", "APm", "APl")]

    def values(cfg: str, split: str, key: str) -> dict[int, float]:
        found = {}
        for seed in seeds:
            record = by_run.get((cfg, seed))
            value = (((record or {}).get("families") or {}).get(family) or {}).get(split, {}).get(key)
            if _measured(value):
                found[seed] = value
        return found

    present = [cfg for cfg in configs if any(values(cfg, split, "AP") for split in splits)]
    stats = {split: {cfg: {key: {**mean_std(values(cfg, split, key).values()), "seeds": sorted(values(cfg, split, key))}
                           for key in keys} for cfg in present} for split in splits}
    paired = {split: {cfg: {key: paired_difference(values(cfg, split, key), values(baseline, split, key))
                            for key in PAIRED_KEYS} for cfg in present if cfg != baseline}
              for split in splits} if baseline in present else {split: {} for split in splits}
    power = {split: {cfg: {key: power_summary(d["values"]) for key, d in per_key.items()}
                     for cfg, per_key in paired[split].items()} for split in splits}
    return {"keys": keys, "configs": present, "stats": stats, "paired": paired, "power": power,
            "multiplicity": {split: _holm(paired[split], power[split]) for split in splits}}


def _holm(paired: Mapping[str, Any], power: Mapping[str, Any]) -> dict[str, Any]:
    """Holm over one split's AP comparisons (configs x PAIRED_KEYS): verdicts added to ``power`` in place, and
    the family's counts."""
    pvalues = {(cfg, key): paired_t_pvalue(d["values"]) for cfg, per_key in paired.items()
               for key, d in per_key.items()}
    verdicts = holm_verdicts(pvalues)
    for (cfg, key), verdict in verdicts.items():
        power[cfg][key].update(verdict)
    tested = [v for v in verdicts.values() if v["p"] is not None]
    return {"family": f"{len(paired)} configs x {', '.join(PAIRED_KEYS)}", "m": len(tested),
            "resolved_raw": sum(v["p"] < 0.05 for v in tested),
            "resolved_holm": sum(bool(v["resolved_holm"]) for v in tested), "alpha": 0.05}


def _two_stage(results: Sequence[Mapping[str, Any]], configs: Sequence[str], baseline: str, splits: Sequence[str],
               out: str | os.PathLike | None, resamples: int, log: Callable[[str], None]) -> dict[str, Any] | None:
    """The two-stage bootstrap (:mod:`.bootstrap`) of every config against the baseline, per split, from the match
    tables stored in ``out``; None when there are none (or ``resamples`` is 0)."""
    if out is None or resamples <= 0:
        return None
    tables = match_store.load_tables(results, out, splits, log)
    if not any(tables.values()):
        return None
    by_run = {result["run"]: result for result in results}
    two_stage: dict[str, Any] = {}
    for index, split in enumerate(splits):
        if not tables[split]:
            continue
        first = next(iter(tables[split].values()))
        weights = bootstrap.image_weights(len(first.image_ids), resamples, np.random.default_rng(index))
        replicates = bootstrap.replicate_ap(tables[split], weights)

        def runs_of(cfg: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
            return {by_run[run]["seed"]: (ap_per_threshold(tables[split][run]), replicates[run])
                    for run in tables[split] if by_run[run]["cfg"] == cfg}

        base = runs_of(baseline)
        two_stage[split] = {"images": len(first.image_ids), "resamples": resamples,
                            "configs": {cfg: bootstrap.two_stage(runs_of(cfg), base, PAIRED_KEYS)
                                        for cfg in configs if cfg != baseline}}
    return two_stage or None


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


def _holm_verdict(power: Mapping[str, Any]) -> str:
    if power.get("resolved_holm") is None:
        return "-"
    return "**resolved**" if power["resolved_holm"] else "not resolved"


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2g}" if value >= 0.001 else f"{value:.1e}"


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
                         _interval(power.get("t_ci")), _interval(power.get("bootstrap_ci")), _verdict(power),
                         _p(power.get("p")), _p(power.get("p_holm")), _holm_verdict(power)])
    return format_table(["config", "metric", f"mean ± std vs {summary['baseline']}", "n",
                         *(f"seed {s}" for s in seeds), "95 % t CI", "95 % bootstrap CI", "verdict (95 %, uncorrected)",
                         "p", "Holm p", "after Holm"], rows, align_right_from=2)


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
        holm = [key for key, p in per_key.items() if p.get("resolved_holm")]
        needed = (ap.get("seeds_needed") or {}).get("0.005")
        text = (f"- {cfg} vs {baseline} ({split}): AP {ap['mean']:+.4f}, 95 % CI {_interval(ap['t_ci'])} over "
                f"{ap['n']} seeds; these seeds resolve differences above {ap['resolvable']:.4f} AP at 95 %")
        text += f"; resolved: {', '.join(resolved)}" if resolved else "; **none resolved**"
        if resolved:
            text += f" (after Holm: {', '.join(holm)})" if holm else " (none after Holm)"
        rising = [name for name in (cfg, baseline) if _converged(summary, name) is False]
        if rising:
            text += f"; **not converged** ({', '.join(rising)}): this ranking holds at this budget only"
        text += (f"; 0.5 AP (0.005) would need about {needed} seeds" if needed
                 else f"; 0.5 AP (0.005) would need more than {ap.get('max_seeds')} seeds")
        lines.append(text + ".")
    return lines


def _converged(summary: Mapping[str, Any], cfg: str) -> bool | None:
    entry = ((summary.get("curves") or {}).get("configs") or {}).get(cfg)
    return None if entry is None else entry["convergence"]["converged"]


def curves_table(summary: Mapping[str, Any]) -> str:
    """Markdown: per config, val mAP50-95 (mean ± std over seeds) at 25/50/75/100 % of the budget with its rank
    there, and the convergence flag."""
    table = summary["curves"]
    rows = []
    for cfg, entry in table["configs"].items():
        cells = []
        for epoch in table["checkpoints"]:
            at = entry["at"][epoch]["mAP50-95"]
            rank = table["ranks"][epoch].index(cfg) + 1 if cfg in table["ranks"][epoch] else None
            cells.append("-" if at["mean"] is None else f"{_cell(at)} (#{rank})")
        convergence = entry["convergence"]
        gain = convergence["gain"]
        flag = {True: "converged", False: "**not converged**", None: "too short to tell"}[convergence["converged"]]
        detail = "" if gain is None else f" (+{gain:.4f} per further {round(table['window_fraction'] * 100)} %"
        if gain is not None and convergence["t_ci"]:
            detail += f", 95 % CI {_interval(convergence['t_ci'])}"
        rows.append([cfg, str(entry["n"]), *cells, flag + detail + (")" if detail else "")])
    return format_table(["config", "n", *(f"epoch {e}" for e in table["checkpoints"]), "last 10 % of epochs"], rows,
                        align_right_from=1)


def tide_tables(summary: Mapping[str, Any], split: str) -> list[str]:
    """Markdown: TIDE's ΔAP per error type (mean ± std over seeds) per config, and the paired differences against
    the baseline with their intervals and Holm verdicts, at each foreground IoU."""
    tide = summary["tide"][split]
    lines = []
    for thr in tide_report.THRESHOLDS:
        rows = [[cfg, str(per_thr[thr]["Loc"]["n"]), *(_cell(per_thr[thr][e], 4) for e in tide_report.TIDE_TYPES)]
                for cfg, per_thr in tide["stats"].items()]
        lines += [f"ΔAP at foreground IoU 0.{thr[2:]} (the AP an oracle fixing that error would add; relative to "
                  f"{thr}):", "", format_table(["config", "n", *tide_report.TIDE_TYPES], rows, align_right_from=1), ""]
        rows = []
        for cfg, per_thr in tide["paired"].items():
            for error in tide_report.TIDE_TYPES:
                entry = per_thr[thr][error]
                rows.append([cfg, error, _cell(entry, 4, signed=True), str(entry["n"]), _interval(entry.get("t_ci")),
                             _interval(entry.get("bootstrap_ci")), _verdict(entry), _p(entry.get("p_holm")),
                             _holm_verdict(entry)])
        if rows:
            lines += [f"Paired ΔAP difference against {summary['baseline']} at 0.{thr[2:]} (< 0: less AP lost to "
                      "that error):", "", format_table(["config", "error", "mean ± std", "n", "95 % t CI",
                                                         "95 % bootstrap CI", "verdict (95 %)", "Holm p",
                                                         "after Holm"], rows, align_right_from=2), ""]
    holm = tide["holm"]
    lines.append(f"TIDE comparisons on `{split}`: {holm['resolved']} of {holm['m']} resolved after Holm "
                 f"({holm['resolved_raw']} at an uncorrected 95 %).")
    return lines


def two_stage_table(summary: Mapping[str, Any], split: str) -> str:
    """Markdown: per config and metric, the paired difference with the standard deviation (and the total's 95 %
    interval) of the three bootstraps: seeds only, images only, both."""
    entry = summary["two_stage"][split]
    rows = []
    for cfg, per_key in entry["configs"].items():
        if "AP" not in per_key:
            rows.append([cfg, "-", "-", "-", "-", "-", "-", f"n = {per_key['n']} seed(s): needs 2"])
            continue
        for key in PAIRED_KEYS:
            b = per_key[key]
            share = "-" if b["images_share"] is None else f"{b['images_share'] * 100:.0f} %"
            rows.append([cfg, key, f"{b['mean']:+.4f}", f"{b['seeds']['std']:.4f}", f"{b['images']['std']:.4f}",
                         f"{b['both']['std']:.4f}", _interval(b["both"]["ci"]), share])
    return format_table(["config", "metric", f"mean vs {summary['baseline']}", "std: seeds", "std: images",
                         "std: both", "95 % CI: both", "images' share of the variance"], rows, align_right_from=2)


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
        *_budget_lines(summary),
        *(f"- **{split}: {m['resolved_holm']} of {m['m']} paired comparisons resolved after Holm** "
          f"({m['family']}; {m['resolved_raw']} at an uncorrected 95 %)"
          for split, m in summary["multiplicity"].items() if m["m"]),
        "",
        "Mean ± sample standard deviation over seeds (n seeds; AP values in [0, 1]; `-`: nothing to measure). "
        "Paired differences compare a config with the baseline trained on the same seed. \"Resolved\" is said twice: "
        "at an uncorrected 95 % (the t interval excludes 0) and after Holm's correction over all of a split's "
        "comparisons (configs x metrics; boxloss/benchmark/multiplicity.py), which keeps the chance of even one "
        "false \"resolved\" in the family at 5 %.",
        "",
    ]
    if plot_file:
        lines += [f"![AP vs IoU threshold]({plot_file})", ""]
    if summary.get("curves"):
        lines += ["## Learning curves", "",
                  "Ultralytics' own val mAP50-95 after every epoch (not COCO AP), mean ± std over seeds, at 25, 50, 75 "
                  "and 100 % of the budget, with each config's rank there (#1 = highest mean). The last column fits "
                  "a line to each seed's last 10 % of epochs: the gain one more tenth of the budget would bring at "
                  "that rate; **not converged** when its 95 % interval reaches above 0.005 (0.5 AP point) "
                  "(boxloss/benchmark/curves.py). A ranking of configs that have not converged holds at this budget "
                  "only.", "", f"![learning curves]({curves.CURVES_PLOT})", "", curves_table(summary), ""]
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
        for family, entry in (summary.get("families") or {}).items():
            lines += family_lines(summary, family, entry, split)
        if (summary.get("two_stage") or {}).get(split):
            entry = summary["two_stage"][split]
            lines += ["### Seeds or images: where the uncertainty comes from", "",
                      f"Two-stage bootstrap ({entry['resamples']} draws; boxloss/benchmark/bootstrap.py): the seeds "
                      f"resampled, the {entry['images']} images of `{split}` resampled (one draw shared by every run, "
                      "so config and baseline stay paired on the same images), or both; AP recomputed on every "
                      "draw from each run's per-image matches. \"std: seeds\" is the uncertainty the t interval "
                      "above sees; \"std: images\" is what a fixed set of seeds would still have from this small "
                      "split; \"both\" the total.", "", two_stage_table(summary, split), ""]
        if (summary.get("tide") or {}).get(split):
            lines += ["### Where the AP goes (TIDE)", "",
                      "TIDE (Bolya et al., ECCV 2020): for each error type, the AP an oracle that fixes only those "
                      "errors would add (boxloss/evaluation/tide.py; background IoU 0.1). Loc: right class, IoU "
                      "between 0.1 and the foreground IoU; Cls: wrong class, well placed; Both: both wrong; Dupe: "
                      "duplicate; Bkg: background; Miss: object never found; FP / FN: every false positive / "
                      "every missed object removed.", "", *tide_tables(summary, split), ""]
            if summary["tide"][split]["paired"]:
                lines += [f"![TIDE paired differences]({tide_report.TIDE_PLOT})", ""]
    return "\n".join(lines)


FAMILY_TITLES = {"mask": "Mask AP (segmentation, COCO segm)", "pose": "Keypoint AP (pose, COCO OKS)"}


def family_lines(summary: Mapping[str, Any], family: str, entry: Mapping[str, Any], split: str) -> list[str]:
    """The report's section for a metric family beside the boxes: its AP per threshold and paired rows."""
    view = {**summary, "configs": entry["configs"], "stats": entry["stats"], "paired": entry["paired"],
            "power": entry["power"]}
    lines = [f"### {FAMILY_TITLES.get(family, family)}", "",
             stats_table(view, split, tuple(k for k in entry["keys"] if k in (*AP_KEYS, "AP"))), ""]
    if entry["paired"][split]:
        holm = entry["multiplicity"][split]
        lines += [f"Paired difference against {summary['baseline']} ({family}; {holm['resolved_holm']} of "
                  f"{holm['m']} comparisons resolved after Holm, {holm['resolved_raw']} uncorrected):", "",
                  paired_table(view, split), ""]
    return lines


def _budget_lines(summary: Mapping[str, Any]) -> list[str]:
    """The header's statement of whether the comparison was made on converged models."""
    table = summary.get("curves")
    if not table:
        return ["- convergence: no per-epoch curves recorded (results.csv); whether these runs converged is unknown"]
    flags = {cfg: entry["convergence"]["converged"] for cfg, entry in table["configs"].items()}
    rising = [cfg for cfg, flag in flags.items() if flag is False]
    unknown = [cfg for cfg, flag in flags.items() if flag is None]
    if rising:
        text = (f"- **not converged at this budget ({table['epochs']} epochs)**: {', '.join(rising)} still rising "
                "over the last 10 % of epochs; every ranking below holds at this budget only")
    elif unknown:
        text = f"- convergence: budget too short to tell for {', '.join(unknown)}"
    else:
        text = f"- converged: every config's gain over the last 10 % of {table['epochs']} epochs is within 0.5 AP"
    flips = [e for a, e in zip(table["checkpoints"], table["checkpoints"][1:]) if table["ranks"][a] != table["ranks"][e]]
    if flips:
        text += f"; the ranking changes between checkpoints (by epoch {', '.join(map(str, flips))})"
    return [text]


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
                  log: Callable[[str], None] = print, source: str | os.PathLike | None = None,
                  resamples: int = bootstrap.RESAMPLES) -> dict[str, Path]:
    """``summary.json``, ``ap_vs_iou.png``, ``report.md`` (and ``curves.png``, ``tide.png`` when there are curves
    and TIDE records) in ``out``; prints the AP tables to ``log``. ``source``: the benchmark folder the results
    come from (its curves and match tables; default ``out``)."""
    source = Path(out) if source is None else Path(source)
    out = Path(out)
    summary = summarize(results, baseline, order, out=source, resamples=resamples, log=log)
    paths = {"summary": out / SUMMARY_FILE, "plot": out / PLOT_FILE, "report": out / REPORT_FILE}
    write_json_atomic(paths["summary"], _json_safe(summary), indent=2)
    write_bytes_atomic(paths["plot"], plot_png(summary))
    if summary.get("curves"):
        paths["curves"] = write_bytes_atomic(out / curves.CURVES_PLOT, curves.plot_png(summary["curves"]))
    if summary.get("tide") and any(summary["tide"][split]["paired"] for split in summary["splits"]):
        paths["tide"] = write_bytes_atomic(out / tide_report.TIDE_PLOT,
                                           tide_report.plot_png(summary["tide"], summary["splits"],
                                                                summary["baseline"]))
    write_text_atomic(paths["report"], format_report(summary, PLOT_FILE, summarize_command) + "\n")
    for split in summary["splits"]:
        log(f"\n{split}: mean ± std over seeds")
        log(stats_table(summary, split, ("AP50", "AP75", "AP90", "AP")))
        for line in noise_statements(summary, split):
            log(line.replace("**", ""))
    log(f"\nbenchmark: report {paths['report']}")
    return paths
