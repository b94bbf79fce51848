"""Re-evaluate a benchmark's finished runs with other val.py settings, same weights: paired by construction.

    python scripts/rescore.py out=runs/benchmark/bccd cfgs=ciou,eiou nms=diou
    python scripts/rescore.py out=runs/benchmark/bccd cfgs=ciou nms=diou nms_diou_beta=0.6 label=diou_nms_b06

For every finished run of ``cfgs`` in ``out`` (its result JSON and its best.pt), each split is evaluated again by
val.py with the given settings (NMS needs no retraining), and a result record is written for the config
``<cfg>-<label>`` (default label: ``<nms>_nms``) in the same results folder, with the run's own settings and the
new evaluation recorded. ``python scripts/benchmark.py summarize out=<out> baseline=<cfg>`` then reports the paired
difference of each re-scored config against its original on the same seeds and weights. Finished re-scores are
skipped on a re-run. Everything is checked before the first evaluation -- every config has finished runs, every
run still has its weights, ``label`` is a plain name -- and bad input gives one line and exit 2; a val.py failure
midway gives one line and exit 1, the re-scores finished before it kept.
"""

from __future__ import annotations

import copy
import datetime
import json
import sys
from pathlib import Path

from boxloss._io import is_plain_name, write_json_atomic
from boxloss.errors import ConfigError
from boxloss.keyvalues import format_help, parse_keyvalues, run_cli
from boxloss.registry import Param

KEYS = {
    "out": Param(None, "the benchmark folder (with results/ and train/)", value_type=str),
    "cfgs": Param(None, "configs to re-score, comma-separated", value_type=str),
    "nms": Param("diou", "val.py's nms= for the re-score", choices=("standard", "diou", "none")),
    "nms_diou_beta": Param(None, "val.py's nms_diou_beta=", lambda b: b > 0, "> 0", value_type=float),
    "label": Param(None, "suffix of the re-scored configs (default: <nms>_nms)", value_type=str),
}


def main(argv: list[str]) -> int:
    from boxloss.benchmark.results import read_result
    from boxloss.cli import val as val_cli

    settings = parse_keyvalues(argv, KEYS)
    if not settings["out"] or not settings["cfgs"]:
        raise ConfigError("out= and cfgs= are required (e.g. out=runs/benchmark/bccd cfgs=ciou,eiou nms=diou)")
    out = Path(settings["out"])
    label = settings["label"] or f"{settings['nms']}_nms"
    if not is_plain_name(label):
        raise ConfigError(f"label={label!r} must be a plain name (letters, digits, '_', '-', '.'): it names result "
                          "files and folders")
    if settings["nms_diou_beta"] is not None and settings["nms"] != "diou":
        raise ConfigError(f"nms_diou_beta= is DIoU-NMS's exponent; it needs nms=diou, not nms={settings['nms']}")
    cfgs = [c for c in settings["cfgs"].split(",") if c]
    results = [r for p in sorted((out / "results").glob("*.json")) if (r := read_result(p)) and r["cfg"] in cfgs]
    missing = [cfg for cfg in cfgs if cfg not in {r["cfg"] for r in results}]
    if missing:
        raise ConfigError(f"no finished runs of {missing[0]} in {out / 'results'}")
    for result in results:
        weights = Path(result["files"]["weights"])
        if not weights.is_file():
            raise ConfigError(f"{result['run']}: its weights {weights} are gone; re-scoring needs them")
    extra = [f"nms={settings['nms']}"] + ([f"nms_diou_beta={settings['nms_diou_beta']}"]
                                           if settings["nms_diou_beta"] else [])
    for result in results:
        name = f"{result['cfg']}-{label}-s{result['seed']}"
        target = out / "results" / f"{name}.json"
        if read_result(target) is not None:
            print(f"rescore: {name} already done")
            continue
        best = Path(result["files"]["weights"])
        metrics = {}
        for split in result["evaluation"]["splits"]:
            val_dir = out / "val" / f"{name}-{split}"
            args = [f"model={best}", f"data={result['settings']['data']}", f"split={split}",
                    f"project={val_dir.parent}", f"name={val_dir.name}", *extra]
            if val_cli.main(args) != 0:
                print(f"rescore.py: error: val.py failed on {best} ({split}); finished re-scores are kept",
                      file=sys.stderr)
                return 1
            metrics[split] = json.loads((val_dir / "metrics.json").read_text())
            print(f"rescore: {name} {split}: AP {metrics[split]['AP']:.4f} AP50 {metrics[split]['AP50']:.4f} "
                  f"AP75 {metrics[split]['AP75']:.4f}")
        record = copy.deepcopy(result)
        record.update(cfg=f"{result['cfg']}-{label}", run=name, metrics=metrics,
                      finished_at=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                      rescore={"from": result["run"], "val": extra,
                               "command": " ".join(["python", "scripts/rescore.py", *argv])})
        # "evaluation" stays the original's, so the summary pairs the two; "rescore" says what differs
        write_json_atomic(target, record, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("rescore.py", lambda: format_help(__doc__, KEYS), main))
