"""Which result records may be paired: a paired difference compares two runs that differ only by their configs.

A config's run on seed s is paired with the baseline's run on seed s only when

- **settings**: their settings (:func:`.records.comparable`) agree except for the keys the two configs' files set
  (``cfg_keys``): same train overrides, same defaults, same data;
- **versions**: every package both records name (python, boxloss, ultralytics, torch, torchvision, numpy,
  pycocotools, CUDA, cuDNN) has the same version;
- **machine**: the same kind of machine, its CPU model and GPU models (:func:`machine_kind`): the project found CPU
  training reproducible on one machine but not across machines;
- **weights**: a re-scored record (``"rescore"``, :mod:`boxloss.benchmark.rescore`) still describes the weights of
  its source, when the source is among the records: it was made from the source's training run, not an earlier one.

Otherwise the pair is left out of every paired statistic (AP, mask and pose AP, TIDE, the two-stage bootstrap) and
the report says why. What a record does not hold is unknown, and assumed equal rather than made incomparable, so
records written before a field was recorded keep their pairs; the report counts every such assumption:

- ``cfg_keys`` (recorded since the statistics moved to ``boxloss/stats``): without it, a key counts as the config's
  own unless the record's command set it for every config (``benchmark.overrides``);
- a version that is missing or None, a missing machine: assumed equal;
- a re-score without ``rescore.source_finished_at``: matched to its source by ``elapsed_s`` alone (a re-score copies
  its source record, the training time to the microsecond included; with the finish time, both must match).
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from .records import differing_settings

MACHINE_KIND_KEYS = ("cpu", "gpu")  # the hardware model, not its core count, kernel or host name
Assumed = dict[str, set[str]]  # what was unknown and assumed equal -> the runs whose records lack it


def _assume(assumed: Assumed, what: str, record: Mapping[str, Any]) -> None:
    assumed.setdefault(what, set()).add(record["run"])


def machine_kind(record: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """``(CPU model, GPU models)`` of the machine the run trained on; None when the record does not say."""
    machine = record.get("machine")
    if not isinstance(machine, Mapping) or machine.get("cpu") is None:
        return None
    return tuple(machine.get(key) for key in MACHINE_KIND_KEYS)


def _own_keys(record: Mapping[str, Any], assumed: Assumed) -> set[str] | None:
    """The keys its config file set, or None (unknown: every key outside the command's overrides)."""
    keys = record.get("cfg_keys")
    if isinstance(keys, list):
        return set(keys)
    _assume(assumed, "the config's own keys (taken as every key outside the command's train overrides)", record)
    return None


def _show(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def settings_problem(record: Mapping[str, Any], base: Mapping[str, Any], assumed: Assumed) -> str | None:
    differences = differing_settings(base["settings"], record["settings"], ignored=("seed",), symmetric=True)
    own = [_own_keys(r, assumed) for r in (record, base)]
    overrides = {key for r in (record, base) for key in ((r.get("benchmark") or {}).get("overrides") or {})}
    shared = [key for key in differences
              if not any(key in keys if keys is not None else key not in overrides for keys in own)]
    if not shared:
        return None
    shown = ", ".join(f"{key} {_show(differences[key][1])} vs {_show(differences[key][0])}" for key in shared[:3])
    return f"settings differ beyond the configs' own keys ({shown}{', ...' if len(shared) > 3 else ''})"


def versions_problem(record: Mapping[str, Any], base: Mapping[str, Any], assumed: Assumed) -> str | None:
    mine, theirs = record.get("versions") or {}, base.get("versions") or {}
    differ = []
    for package in sorted(set(mine) | set(theirs)):
        if mine.get(package) is None or theirs.get(package) is None:
            for r, versions in ((record, mine), (base, theirs)):
                if versions.get(package) is None:
                    _assume(assumed, f"the {package} version", r)
        elif mine[package] != theirs[package]:
            differ.append(f"{package} {mine[package]} vs {theirs[package]}")
    return f"package versions differ ({', '.join(differ)})" if differ else None


def machine_problem(record: Mapping[str, Any], base: Mapping[str, Any], assumed: Assumed) -> str | None:
    kinds = [machine_kind(r) for r in (record, base)]
    if None in kinds:
        for r, kind in zip((record, base), kinds):
            if kind is None:
                _assume(assumed, "the kind of machine", r)
        return None
    if kinds[0] == kinds[1]:
        return None
    describe = lambda kind: f"CPU {kind[0]}, GPU {kind[1] or 'none'}"  # noqa: E731
    return f"trained on different machines ({describe(kinds[0])} vs {describe(kinds[1])})"


def weights_problem(record: Mapping[str, Any], by_run: Mapping[str, Mapping[str, Any]], assumed: Assumed) -> str | None:
    """Why a re-scored ``record`` no longer describes its source's weights (the source re-trained since)."""
    rescore = record.get("rescore")
    if not isinstance(rescore, Mapping) or rescore.get("from") not in by_run:
        return None
    source = by_run[rescore["from"]]
    same = record.get("elapsed_s") == source.get("elapsed_s")  # a re-score copies its source record, elapsed_s too
    if "source_finished_at" in rescore:
        same = same and rescore["source_finished_at"] == source.get("finished_at")
    else:
        _assume(assumed, "the source run of a re-score (taken from its elapsed_s)", record)
    return None if same else f"re-scored from weights of {source['run']} that a later run replaced"


def pair_problem(record: Mapping[str, Any], base: Mapping[str, Any], by_run: Mapping[str, Mapping[str, Any]],
                 assumed: Assumed) -> str | None:
    """Why ``record`` (a config's run) and ``base`` (the baseline's run on the same seed) cannot be paired, or None.
    ``by_run``: every record summarized, by run name (the sources of re-scores); ``assumed`` counts what was
    unknown and assumed equal."""
    for problem in (weights_problem(record, by_run, assumed), weights_problem(base, by_run, assumed),
                    settings_problem(record, base, assumed), versions_problem(record, base, assumed),
                    machine_problem(record, base, assumed)):
        if problem:
            return problem
    return None


def left_out_pairs(results: Sequence[Mapping[str, Any]], configs: Sequence[str],
                   baseline: str) -> tuple[dict[str, dict[int, str]], dict[str, list[str]]]:
    """``({cfg: {seed: why}}, {what was assumed equal: [runs]})``: the (config, seed) pairs with the baseline that
    are left out, and the runs whose records lacked what a pairing needed (assumed equal)."""
    by_cfg_seed = {(r["cfg"], r["seed"]): r for r in results}
    by_run = {r["run"]: r for r in results}
    left_out: dict[str, dict[int, str]] = {}
    assumed: Assumed = {}
    for cfg in configs:
        for seed in sorted({r["seed"] for r in results}):
            if cfg == baseline or (cfg, seed) not in by_cfg_seed or (baseline, seed) not in by_cfg_seed:
                continue
            problem = pair_problem(by_cfg_seed[cfg, seed], by_cfg_seed[baseline, seed], by_run, assumed)
            if problem:
                left_out.setdefault(cfg, {})[seed] = problem
    return left_out, {what: sorted(runs) for what, runs in sorted(assumed.items())}
