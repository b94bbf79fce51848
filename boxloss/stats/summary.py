"""Statistics over seeds, from a benchmark's result records alone (the report: :mod:`.report`; the plots:
:mod:`.plots`; the folder they are written to: :mod:`.report_folder`).

- Per config and split, for AP50, AP55, ..., AP95, AP, APs, APm, APl: mean and sample standard deviation
  (n - 1 in the denominator) over the seeds, with n. A metric COCO could not measure (-1, e.g. APl with no large
  objects) is left out of its mean and n.
- Per config other than the baseline: the paired difference config - baseline on the same seed, for AP, AP50,
  AP75 and AP90: the per-seed values, their mean and sample standard deviation, and the power analysis of
  :mod:`.power`: the 95 % t interval and a paired bootstrap interval of the mean, the smallest difference these
  seeds resolve at 95 %, whether this one is resolved (the interval excludes 0), and the seeds needed to resolve
  0.5 and 1 AP at the measured spread; Holm's correction over a split's comparisons (:mod:`.multiplicity`).
  (``within_seed_noise``, |mean| <= std, is kept in summary.json; the report's verdict is the 95 % one.)
- The same for each metric family beside the boxes (mask AP, keypoint AP), for TIDE's ΔAP (:mod:`.tide_report`),
  and the two-stage bootstrap over seeds and images (:mod:`.bootstrap`); the learning curves (:mod:`.curves`).

A pair is made only between runs that differ by their configs alone (:mod:`.pairs`); the others are left out of every
paired number, and ``pairing`` says which and why.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ..errors import ConfigError
from ..evaluation import AP_KEYS
from ..evaluation.coco_eval import FAMILY_KEYS
from ..evaluation.matches import ap_per_threshold
from . import bootstrap, curves, match_store, tide_report
from .multiplicity import holm_verdicts, paired_t_pvalue
from .pairs import left_out_pairs
from .power import mean_std, power_summary
from .records import EVALUATION_SPLITS, NOT_COMPARED_EVALUATION, comparable, default_baseline, portable_path, run_file

TABLE_KEYS = (*AP_KEYS, "AP", "APs", "APm", "APl")
PAIRED_KEYS = ("AP", "AP50", "AP75", "AP90")

LeftOut = Mapping[str, Mapping[int, str]]  # {cfg: {seed: why its pair with the baseline is left out}}
Values = Callable[[str, str, str], dict[int, float]]  # (cfg, split, key) -> {seed: value}


def _measured(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value != -1 and math.isfinite(value)


def paired_difference(config: Mapping[int, float], baseline: Mapping[int, float]) -> dict[str, Any]:
    """``config[seed] - baseline[seed]`` over the seeds both have: ``{"values": {seed: d}, "mean", "std", "n"}``."""
    seeds = sorted(seed for seed in config if seed in baseline and _measured(config[seed])
                   and _measured(baseline[seed]))
    values = {seed: float(config[seed]) - float(baseline[seed]) for seed in seeds}
    return {"values": values, **mean_std(values.values())}


def _kept(by_seed: Mapping[int, Any], left_out: Mapping[int, str] | None) -> dict[int, Any]:
    """``by_seed`` without the seeds whose pair is left out."""
    return {seed: value for seed, value in by_seed.items() if seed not in (left_out or {})}


def within_seed_noise(difference: Mapping[str, Any]) -> bool | None:
    """Whether the mean paired difference lies within one standard deviation of zero; None when std is undefined."""
    if difference.get("mean") is None or difference.get("std") is None:
        return None
    return abs(difference["mean"]) <= difference["std"]


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


def metric_values(results: Sequence[Mapping[str, Any]], family: str | None = None) -> Values:
    """``values(cfg, split, key) -> {seed: value}``: the measured values (:func:`_measured`) of one metric over the
    seeds, read from each record's ``metrics`` (``family`` None: the boxes) or ``families[family]``."""
    by_run = {(r["cfg"], r["seed"]): r for r in results}
    seeds = sorted({r["seed"] for r in results})

    def read(record: Mapping[str, Any], split: str, key: str) -> Any:
        metrics = record["metrics"] if family is None else ((record.get("families") or {}).get(family) or {})
        return metrics.get(split, {}).get(key)

    def values(cfg: str, split: str, key: str) -> dict[int, float]:
        found = {seed: read(by_run[cfg, seed], split, key) for seed in seeds if (cfg, seed) in by_run}
        return {seed: value for seed, value in found.items() if _measured(value)}

    return values


def paired_statistics(values: Values, configs: Sequence[str], baseline: str, splits: Sequence[str],
                      keys: Sequence[str], left_out: LeftOut) -> dict[str, Any]:
    """One metric source's statistics: ``stats`` (mean ± std over seeds per split, config and key), and, when the
    baseline is among ``configs``, ``paired`` (config - baseline on the same seed, the ``left_out`` seeds not
    compared), ``power`` (:func:`.power.power_summary`) and ``multiplicity`` (Holm over a split's comparisons)."""
    stats = {split: {cfg: {key: {**mean_std(values(cfg, split, key).values()), "seeds": sorted(values(cfg, split, key))}
                           for key in keys} for cfg in configs} for split in splits}

    paired = {split: {cfg: {key: paired_difference(values(cfg, split, key),
                                                   _kept(values(baseline, split, key), left_out.get(cfg)))
                            for key in PAIRED_KEYS} for cfg in configs if cfg != baseline}
              for split in splits} if baseline in configs else {split: {} for split in splits}
    power = {split: {cfg: {key: power_summary(d["values"]) for key, d in per_key.items()}
                     for cfg, per_key in paired[split].items()} for split in splits}
    return {"stats": stats, "paired": paired, "power": power,
            "multiplicity": {split: _holm(paired[split], power[split]) for split in splits}}


def order_configs(results: Sequence[Mapping[str, Any]], baseline: str | None = None,
                  order: Sequence[str] | None = None) -> tuple[list[str], str]:
    """``(configs, baseline)``: the configs of ``results`` in ``order`` first (default: the order of the latest
    command's ``cfgs``), then the baseline, then the others by name; the baseline given, else
    :func:`.records.default_baseline` of the recorded one."""
    present = {result["cfg"] for result in results}
    if order is None:
        latest = max(results, key=lambda r: (r.get("finished_at") or "", r["run"]))
        order = latest["benchmark"].get("cfgs") or []
    listed = [c for c in order if c in present]
    if baseline is None:
        baseline = default_baseline(listed + sorted(present - set(listed)), results[0]["benchmark"].get("baseline"))
    return listed + sorted(present - set(listed), key=lambda c: (c != baseline, c)), baseline


def summarize(results: Sequence[Mapping[str, Any]], baseline: str | None = None,
              order: Sequence[str] | None = None, out: str | os.PathLike | None = None,
              resamples: int = bootstrap.RESAMPLES, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Statistics of ``results`` (result records): per config and split, and paired against ``baseline``.

    ``order``: configs in this order first (default: the order of the latest command's ``cfgs``); others follow,
    baseline first then by name. The summary depends only on the results (and, given the benchmark folder
    ``out``, the learning curves and per-image match tables stored there), not on the order they finished in.
    ``resamples``: draws of the two-stage bootstrap (0: leave it out). Raises ConfigError when there are no
    results or they cannot be summarized together (:func:`check_consistent`).
    """
    if not results:
        raise ConfigError("no finished results to summarize")
    check_consistent(results)
    configs, baseline = order_configs(results, baseline, order)
    present = baseline in configs
    split_set = {split for result in results for split in result["evaluation"]["splits"]}
    splits = [s for s in EVALUATION_SPLITS if s in split_set] + sorted(split_set - set(EVALUATION_SPLITS))
    left_out, assumed = left_out_pairs(results, configs, baseline) if present else ({}, {})
    boxes = paired_statistics(metric_values(results), configs, baseline, splits, TABLE_KEYS, left_out)
    noise = {split: {cfg: {key: within_seed_noise(d) for key, d in per_key.items()}
                     for cfg, per_key in boxes["paired"][split].items()} for split in splits}
    families = {family: _family_summary(results, family, configs, baseline, splits, left_out)
                for family in sorted({f for r in results for f in (r.get("families") or {})})}
    curve_runs, curve_notes = _curves(results, out)
    return {"configs": configs, "baseline": baseline, "baseline_present": present, "splits": splits,
            "seeds": sorted({result["seed"] for result in results}),
            "runs": sorted(result["run"] for result in results), "stats": boxes["stats"], "paired": boxes["paired"],
            "within_seed_noise": noise, "power": boxes["power"], "multiplicity": boxes["multiplicity"],
            "families": families, "curves": curves.summarize_curves(curve_runs, configs),
            "tide": tide_report.summarize_tide(results, configs, baseline, splits, left_out) if present else None,
            "two_stage": _two_stage(results, configs, baseline, splits, out, resamples, left_out, log)
            if present else None,
            "meta": _meta(results, configs),
            "pairing": {"left_out": left_out, "assumed": {what: len(runs) for what, runs in assumed.items()},
                        "curves_left_out": curve_notes}}


def _curves(results: Sequence[Mapping[str, Any]], out: str | os.PathLike | None
            ) -> tuple[dict[str, dict[int, Any]], dict[str, str]]:
    """``({cfg: {seed: curve}}, {run: why its curve is left out})``: each run's learning curve, from its record
    or (given the benchmark folder ``out``) its results.csv; a curve with a non-finite point is left out."""
    curve_runs: dict[str, dict[int, Any]] = {}
    notes = {}
    for result in results:
        curve = result.get("curve")
        if curve is None and out is not None:  # the run's folder as recorded, else the standard layout
            curve = curves.read_curve_file(run_file(result, "train_dir", out) / "results.csv") or \
                curves.read_curve_file(Path(out) / "train" / result["run"] / "results.csv")
        if curve and curves.curve_problem(curve):
            notes[result["run"]] = curves.curve_problem(curve)
        elif curve:
            curve_runs.setdefault(result["cfg"], {})[result["seed"]] = curve
    return curve_runs, notes


def _family_summary(results: Sequence[Mapping[str, Any]], family: str, configs: Sequence[str], baseline: str,
                    splits: Sequence[str], left_out: LeftOut) -> dict[str, Any]:
    """A metric family beside the boxes (``mask``: COCO mask AP; ``pose``: keypoint AP, OKS) with the box rows'
    statistics (:func:`paired_statistics`), over the configs that measured it."""
    keys = [key for key in FAMILY_KEYS[family] if key in TABLE_KEYS]
    values = metric_values(results, family)
    present = [cfg for cfg in configs if any(values(cfg, split, "AP") for split in splits)]
    return {"keys": keys, "configs": present,
            **paired_statistics(values, present, baseline, splits, keys, left_out)}


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
               out: str | os.PathLike | None, resamples: int, left_out: LeftOut,
               log: Callable[[str], None]) -> dict[str, Any] | None:
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
                            "configs": {cfg: bootstrap.two_stage(runs_of(cfg), _kept(base, left_out.get(cfg)),
                                                                 PAIRED_KEYS)
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


def json_safe(value: Any) -> Any:
    """Seed keys as strings (JSON object keys)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value
