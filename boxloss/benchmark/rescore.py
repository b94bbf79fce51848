"""Re-evaluate a benchmark's finished runs without retraining: other val.py settings (same weights), or TIDE.

    python scripts/benchmark.py rescore out=runs/benchmark/bccd cfgs=ciou,eiou nms=diou
    python scripts/benchmark.py rescore out=runs/benchmark/bccd cfgs=ciou nms=diou nms_diou_beta=0.6 label=b06
    python scripts/benchmark.py rescore out=runs/benchmark/bccd tide=true    # TIDE for every finished run, no weights
    python scripts/benchmark.py rescore out=runs/benchmark/bccd matches=true # per-image matches, for the bootstrap

(``python scripts/rescore.py ...`` is the same command.)

Re-evaluation (``nms=``): for every finished run of ``cfgs`` in ``out`` (its result JSON and its best.pt), each
split is evaluated again by val.py with the given settings (NMS needs no retraining), and a result record is
written for the config ``<cfg>-<label>`` (default label: ``<nms>_nms``) in the same results folder, with the run's
own settings, the new evaluation and its source (``"rescore": {"from": <run>, "source_finished_at": ...}``)
recorded. ``python scripts/benchmark.py summarize out=<out> baseline=<cfg>`` then reports the paired difference of
each re-scored config against its original on the same seeds and weights. A re-scored record goes wherever its
source goes: a ``force=true`` re-run of the source moves both into ``results/superseded/``, and the summary pairs a
re-score only with the weights it was made from (:mod:`boxloss.stats.pairs`). Finished re-scores are skipped on a
re-run. Everything is checked before the first evaluation -- every config has finished runs, every run still has
its weights, ``nms=none`` finds an end-to-end head in every one, ``label`` is a plain name -- and a val.py failure
midway gives one line and exit 1, the re-scores finished before it kept.

TIDE (``tide=true``): for every finished run (of ``cfgs``, default all) whose record has no ``"tide"`` yet (all of
them with ``force=true``), the TIDE decomposition (:mod:`boxloss.evaluation.tide`, foreground IoU 0.5 and 0.75) is
computed from the saved ``val/<run>-<split>/gt.json`` and ``predictions.json`` (no weights, no retraining), written
as ``tide.json`` beside them, and added to the result record as ``"tide": {split: ...}`` together with
``"tide_added_by"`` (this command, when, the evaluator); the metrics are left as they were. A val folder whose
predictions do not reproduce the record's AP50 and AP75 is refused. Runs whose val folders are missing are named
at the end and the exit status is 1 (the others are done).

Bad input (no results folder, unknown configs, keys of the other mode, no run with its val folders) gives one line,
exit status 2, and nothing is written. Like the benchmark and ``summarize``, it holds the folder's lock
(``benchmark.lock``) while it writes: one command writes into a benchmark folder at a time.
"""

from __future__ import annotations

import copy
import datetime
import json
import shutil
import sys
from pathlib import Path
from typing import Callable

from .._io import is_plain_name, write_json_atomic
from ..errors import ConfigError
from ..keyvalues import parse_keyvalues, raw_keyvalues, run_cli
from ..ops.nms import EVALUATION_NMS
from ..param import Param
from ..stats import match_store
from ..stats.records import read_result, run_file
from .lock import folder_lock
from .results import EXTRA_FAMILIES, families_by_split, tide_by_split

KEYS = {
    "out": Param(None, "the benchmark folder (with results/ and train/)", value_type=str),
    "cfgs": Param(None, "configs to re-score, comma-separated (tide=true: default every config)", value_type=str),
    "tide": Param(False, "add TIDE (tide.json and each record's \"tide\") from the saved val folders"),
    "force": Param(False, "tide=true: recompute the records that already have \"tide\"; matches=true: the stored "
                   "match tables"),
    "matches": Param(False, "store each evaluation's per-image match table (results/matches/, for the summary's "
                     "two-stage bootstrap over seeds and images) from the saved val folders"),
    "nms": Param("diou", "val.py's nms= for the re-score", choices=EVALUATION_NMS),
    "nms_diou_beta": Param(None, "val.py's nms_diou_beta=", lambda b: b > 0, "> 0", value_type=float),
    "label": Param(None, "suffix of the re-scored configs (default: <nms>_nms)", value_type=str),
}
AP_AGREEMENT = 1e-9  # |TIDE's AP - the record's AP50 / AP75| for a val folder to count as the record's own


def now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def finished_runs(out: Path, cfgs: list[str] | None) -> list[tuple[Path, dict]]:
    """``(path, record)`` of every finished run in ``out/results`` (of ``cfgs`` when given); ConfigError if none."""
    folder = out / "results"
    if not folder.is_dir():
        raise ConfigError(f"{folder} not found: out= must be a benchmark folder")
    runs = [(path, record) for path in sorted(folder.glob("*.json"))
            if (record := read_result(path)) and (cfgs is None or record["cfg"] in cfgs)]
    missing = [cfg for cfg in cfgs or [] if cfg not in {record["cfg"] for _, record in runs}]
    if missing:
        raise ConfigError(f"no finished runs of {', '.join(missing)} in {folder}")
    if not runs:
        raise ConfigError(f"no finished runs in {folder}")
    return runs


def split_tide(out: Path, record: dict) -> dict:
    """``{split: tide}`` for one run from its saved val folders; ValueError naming what is missing or inconsistent."""
    from ..evaluation.tide import tide_errors

    tide = {}
    for split in record["evaluation"]["splits"]:
        folder = out / "val" / f"{record['run']}-{split}"
        files = [folder / "gt.json", folder / "predictions.json"]
        if not all(f.is_file() for f in files):
            raise ValueError(f"{folder} has no gt.json and predictions.json")
        try:
            tide[split] = tide_errors(files[0], json.loads(files[1].read_text()))
        except (OSError, ValueError) as error:
            raise ValueError(f"{folder}: {str(error).splitlines()[0]}") from None
        for key in ("AP50", "AP75"):  # the saved detections must be those the record's metrics came from
            found, recorded = tide[split][key]["ap"], record["metrics"][split][key]
            if not abs(found - recorded) <= AP_AGREEMENT:
                raise ValueError(f"{folder}: its predictions give {key} {found:.6f}, the record {recorded:.6f}")
    return tide


def folder_pass(settings: dict, argv: list[str], mode: str) -> tuple[Path, list[str] | None]:
    """The benchmark folder and configs of a pass that reads only the saved val folders (``mode``: its key=value);
    a key that re-evaluates with the weights is refused beside it."""
    given = raw_keyvalues(argv)
    other_mode = [key for key in ("nms", "nms_diou_beta", "label") if key in given]
    if other_mode:
        raise ConfigError(f"{other_mode[0]}= re-evaluates with the weights; {mode} only reads the saved val "
                          "folders: give one or the other")
    return Path(settings["out"]), [c for c in settings["cfgs"].split(",") if c] if settings["cfgs"] else None


def add_tide(out: Path, cfgs: list[str] | None, force: bool, command: str) -> int:
    """tide=true: TIDE for every finished run (of ``cfgs``) without it (all with ``force``) from its saved val
    folders; runs without their folders are named, exit status 1 (ConfigError when none could be done)."""
    todo = []
    for path, record in finished_runs(out, cfgs):
        if force or "tide" not in record:
            todo.append((path, record))
        else:
            print(f"rescore: {record['run']} already has TIDE (force=true recomputes it)")
    computed, problems = [], {}
    for path, record in todo:
        try:
            computed.append((path, record, split_tide(out, record)))
        except ValueError as error:
            problems[record["run"]] = str(error)
    if todo and not computed:
        first = next(iter(problems.items()))
        raise ConfigError(f"none of the {len(todo)} runs could be re-scored (e.g. {first[0]}: {first[1]})")
    for path, record, tide in computed:
        for split, values in tide.items():
            write_json_atomic(out / "val" / f"{record['run']}-{split}" / "tide.json", values, indent=2)
        updated = {**copy.deepcopy(record), "tide": tide,
                   "tide_added_by": {"command": command, "at": now(),
                                     "evaluator": next(iter(tide.values()))["settings"]["evaluator"]}}
        write_json_atomic(path, updated, indent=2)
        shown = "; ".join(f"{split} AP50 {values['AP50']['ap']:.4f} ΔLoc {values['AP50']['delta_ap']['Loc']:.4f}, "
                          f"AP75 {values['AP75']['ap']:.4f} ΔLoc {values['AP75']['delta_ap']['Loc']:.4f}"
                          for split, values in tide.items())
        print(f"rescore: {record['run']}: TIDE added ({shown})")
    for run, problem in problems.items():
        print(f"rescore: {run}: not re-scored: {problem}", file=sys.stderr)
    if problems:
        print(f"rescore: {len(problems)} run(s) not re-scored: {', '.join(problems)}", file=sys.stderr)
    return 1 if problems else 0


def add_matches(out: Path, cfgs: list[str] | None, force: bool) -> int:
    """matches=true: every finished run's per-image match tables from its saved val folders (checked to reproduce
    the record's AP per threshold); runs without their folders are named, exit status 1."""
    problems, stored = {}, 0
    for _, record in finished_runs(out, cfgs):
        for split in record["evaluation"]["splits"]:
            if match_store.matches_path(out, record["run"], split).is_file() and not force:
                continue
            try:
                match_store.save_from_val(out, record["run"], split, out / "val" / f"{record['run']}-{split}",
                                          record["metrics"][split])
                stored += 1
            except ValueError as error:
                problems[f"{record['run']} {split}"] = str(error)
    print(f"rescore: {stored} match table(s) stored in {out / 'results' / match_store.MATCHES_DIR}")
    for run, problem in problems.items():
        print(f"rescore: {run}: no match table: {problem}", file=sys.stderr)
    return 1 if problems else 0


def check_weights(results: list[dict], out: Path, nms: str) -> None:
    """Every run still has its weights, and with ``nms=none`` an end-to-end head (read from the checkpoint, before
    any evaluation); ConfigError naming the first that does not."""
    for result in results:
        weights = run_file(result, "weights", out)
        if not weights.is_file():
            raise ConfigError(f"{result['run']}: its weights {weights} are gone; re-scoring needs them")
    if nms != "none":
        return
    from ..yolo.experiment import load_checkpoint_file
    from ..yolo.val_run import nms_none_refusal

    for result in results:
        weights = run_file(result, "weights", out)
        checkpoint = load_checkpoint_file(weights, f"{result['run']}'s weights")
        refusal = nms_none_refusal(weights, (checkpoint.get("ema") or checkpoint.get("model")).model[-1])
        if refusal:
            raise ConfigError(f"{result['run']}: {refusal}")


def rescore_runs(out: Path, results: list[dict], label: str, val_args: list[str], command: str,
                 prog: str = "benchmark.py") -> int:
    """Evaluate every run of ``results`` again with val.py's ``val_args``, each a record ``<cfg>-<label>-s<seed>``
    beside its source's; exit status 1 (one line) when val.py fails, the re-scores finished before it kept."""
    from ..yolo import val_run

    for result in results:
        name = f"{result['cfg']}-{label}-s{result['seed']}"
        target = out / "results" / f"{name}.json"
        if read_result(target) is not None:
            print(f"rescore: {name} already done")
            continue
        best = run_file(result, "weights", out)
        outputs = {}
        for split in result["evaluation"]["splits"]:
            val_dir = out / "val" / f"{name}-{split}"
            if val_dir.exists():  # an earlier re-score of other weights (its record went aside with its source)
                shutil.rmtree(val_dir)
            args = [f"model={best}", f"data={result['settings']['data']}", f"split={split}",
                    f"project={val_dir.parent}", f"name={val_dir.name}", *val_args]
            if run_cli("val.py", None, val_run.command, args) != 0:  # val.py's command: its errors are its lines
                print(f"{prog}: error: val.py failed on {best} ({split}); finished re-scores are kept",
                      file=sys.stderr)
                return 1
            outputs[split] = {**json.loads((val_dir / "metrics.json").read_text()),
                              "tide": json.loads((val_dir / "tide.json").read_text())}
            match_store.save_from_val(out, name, split, val_dir)  # for the two-stage bootstrap
            print(f"rescore: {name} {split}: AP {outputs[split]['AP']:.4f} AP50 {outputs[split]['AP50']:.4f} "
                  f"AP75 {outputs[split]['AP75']:.4f}")
        record = copy.deepcopy(result)
        record.pop("tide_added_by", None)
        record.update(cfg=f"{result['cfg']}-{label}", run=name, finished_at=now(),
                      metrics={split: {k: v for k, v in values.items() if k != "tide" and k not in EXTRA_FAMILIES}
                               for split, values in outputs.items()},
                      tide=tide_by_split(outputs, list(outputs)),
                      rescore={"from": result["run"], "source_finished_at": result.get("finished_at"),
                               "val": val_args, "command": command})
        families = families_by_split(outputs, list(outputs))  # a segmentation or pose model's mask or pose metrics
        record.pop("families", None)
        if families:
            record["families"] = families
        # "evaluation" stays the original's, so the summary pairs the two; "rescore" says what differs
        write_json_atomic(target, record, indent=2)
    return 0


def main(argv: list[str], command: str, prog: str = "benchmark.py", note: Callable[[str], None] = print) -> int:
    """The ``rescore`` command (``argv``: its key=value arguments; ``command``: as recorded in what it writes;
    ``prog``: the name its error lines carry). Everything is checked before the folder's lock is taken."""
    settings = parse_keyvalues(argv, KEYS)
    if not settings["out"]:
        raise ConfigError("out= is required (e.g. out=runs/benchmark/bccd cfgs=ciou,eiou nms=diou, or tide=true)")
    if settings["tide"] or settings["matches"]:
        out, cfgs = folder_pass(settings, argv, "tide=true" if settings["tide"] else "matches=true")
        finished_runs(out, cfgs)
        with folder_lock(out, "out", command, note=note):
            status = add_tide(out, cfgs, settings["force"], command) if settings["tide"] else 0
            return max(status, add_matches(out, cfgs, settings["force"]) if settings["matches"] else 0)
    if not settings["cfgs"]:
        raise ConfigError("cfgs= is required (e.g. out=runs/benchmark/bccd cfgs=ciou,eiou nms=diou)")
    out = Path(settings["out"])
    label = settings["label"] or f"{settings['nms']}_nms"
    if not is_plain_name(label):
        raise ConfigError(f"label={label!r} must be a plain name (letters, digits, '_', '-', '.'): it names result "
                          "files and folders")
    if settings["nms_diou_beta"] is not None and settings["nms"] != "diou":
        raise ConfigError(f"nms_diou_beta= is DIoU-NMS's exponent; it needs nms=diou, not nms={settings['nms']}")
    results = [record for _, record in finished_runs(out, [c for c in settings["cfgs"].split(",") if c])]
    check_weights(results, out, settings["nms"])
    val_args = [f"nms={settings['nms']}"] + ([f"nms_diou_beta={settings['nms_diou_beta']}"]
                                              if settings["nms_diou_beta"] else [])
    with folder_lock(out, "out", command, note=note):
        return rescore_runs(out, results, label, val_args, command, prog)
