"""The markdown report of a summary (:mod:`.summary`): what was run and on what, the tables of each split, the
paired differences with their verdicts, the pairs left out and why, and the sentences a reader needs."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .._io import format_table
from ..evaluation import AP_KEYS
from . import plots, tide_report
from .records import format_seconds
from .summary import PAIRED_KEYS, TABLE_KEYS


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
        left_out = ((summary.get("pairing") or {}).get("left_out") or {}).get(cfg) or {}
        if not ap["n"]:
            lines.append(f"- {cfg} vs {baseline} ({split}): " + ("every pair left out (see pairing above), no paired "
                                                               "difference." if left_out else
                                                               "no seed in common, no paired difference."))
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
        if left_out:
            text += f"; seed(s) {', '.join(map(str, sorted(left_out)))} left out (see pairing above)"
        lines.append(text + ".")
    return lines


def pairing_lines(summary: Mapping[str, Any]) -> list[str]:
    """The header's lines on pairing: the rule, what older records did not say (assumed equal), the pairs left out
    and why, and the learning curves left out."""
    pairing = summary.get("pairing") or {}
    lines = []
    if summary["baseline_present"] and len(summary["configs"]) > 1:
        assumed = "; ".join(f"{what} for {n} run{'s' * (n != 1)}" for what, n in (pairing.get("assumed") or {}).items())
        lines.append("- pairing: a config's run is paired with the baseline's on the same seed only when their "
                     "settings (beyond the configs' own keys), package versions and kind of machine (CPU and GPU "
                     "model) agree (boxloss/stats/pairs.py)"
                     + (f"; not recorded, so assumed equal: {assumed}" if assumed else ""))
    for cfg, seeds in (pairing.get("left_out") or {}).items():
        by_reason: dict[str, list[str]] = {}
        for seed, reason in seeds.items():
            by_reason.setdefault(reason, []).append(str(seed))
        for reason, listed in by_reason.items():
            lines.append(f"- **left out of the paired comparisons: {cfg} vs {summary['baseline']} on seed"
                         f"{'s' * (len(listed) > 1)} {', '.join(listed)}**: {reason}")
    notes = pairing.get("curves_left_out") or {}
    if notes:
        lines.append("- learning curves left out (a point that is not a number: training diverged, or ultralytics "
                     "logged none): " + "; ".join(f"{run} ({why})" for run, why in notes.items()))
    return lines


def terminal_lines(summary: Mapping[str, Any]) -> list[str]:
    """What ``summarize`` prints: per split the AP table and the verdict sentences, without markdown emphasis."""
    lines = []
    for split in summary["splits"]:
        lines += [f"\n{split}: mean ± std over seeds", stats_table(summary, split, ("AP50", "AP75", "AP90", "AP"))]
        lines += [line.replace("**", "") for line in noise_statements(summary, split)]
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


def format_report(summary: Mapping[str, Any], plot_file: str | None = plots.PLOT_FILE,
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
        *pairing_lines(summary),
        "",
        *_budget_lines(summary),
        *(f"- **{split}: {m['resolved_holm']} of {m['m']} paired comparisons resolved after Holm** "
          f"({m['family']}; {m['resolved_raw']} at an uncorrected 95 %)"
          for split, m in summary["multiplicity"].items() if m["m"]),
        "",
        "Mean ± sample standard deviation over seeds (n seeds; AP values in [0, 1]; `-`: nothing to measure). "
        "Paired differences compare a config with the baseline trained on the same seed (with the same settings "
        "beyond the configs' own keys, package versions and kind of machine). \"Resolved\" is said twice: "
        "at an uncorrected 95 % (the t interval excludes 0) and after Holm's correction over all of a split's "
        "comparisons (configs x metrics; boxloss/stats/multiplicity.py), which keeps the chance of even one "
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
                  "(boxloss/stats/curves.py). A ranking of configs that have not converged holds at this budget "
                  "only.", "", f"![learning curves]({plots.CURVES_PLOT})", "", curves_table(summary), ""]
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
                      "boxloss/stats/power.py).", "", power_table(summary, split), ""]
        for family, entry in (summary.get("families") or {}).items():
            lines += family_lines(summary, family, entry, split)
        if (summary.get("two_stage") or {}).get(split):
            entry = summary["two_stage"][split]
            lines += ["### Seeds or images: where the uncertainty comes from", "",
                      f"Two-stage bootstrap ({entry['resamples']} draws; boxloss/stats/bootstrap.py): the seeds "
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
                lines += [f"![TIDE paired differences]({plots.TIDE_PLOT})", ""]
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
