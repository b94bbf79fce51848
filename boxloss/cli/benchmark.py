"""Benchmark box losses: a matrix of configs x seeds, each trained then COCO-evaluated, summarized over seeds.

    python scripts/benchmark.py cfgs=ciou,eiou,focal_eiou seeds=0,1,2 data=shapes
    python scripts/benchmark.py cfgs=ciou,eiou seeds=0,1 data=shapes-mini epochs=1 imgsz=128 batch=8 workers=0
    python scripts/benchmark.py cfgs=ciou,eiou seeds=0,1,2 data=my/data.yaml splits=val,test out=runs/benchmark/mine
    python scripts/benchmark.py summarize out=runs/benchmark/shapes       # report from the result JSONs only
    python scripts/benchmark.py summarize out=runs/benchmark/shapes cfgs=eiou,eiou_matched baseline=eiou into=runs/cmp
    python scripts/benchmark.py status cfgs=ciou,eiou seeds=0,1,2 data=shapes jobs=2 minutes=10 runs_per_hour=150
    python scripts/benchmark.py check cfgs=ciou,eiou seeds=0,1 data=datasets/bccd-yolo/data.yaml device=0 cuda_mps=true
    python scripts/benchmark.py rescore out=runs/benchmark/shapes cfgs=ciou,eiou nms=diou   # same weights, DIoU-NMS

Any train.py key=value (epochs, imgsz, batch, ...) goes to every run. Each run trains with boxloss.cli.train and
evaluates best.pt on each split with boxloss.cli.val, both in child processes; its <out>/results/<cfg>-s<seed>.json
is written atomically when it finishes. Re-running the same command skips finished runs; an interrupted run
restarts from scratch (see boxloss/benchmark/). Bad input exits with status 2 and one line before anything is
written; a failed run exits 1 after the others; an interrupt exits 130. ``check`` refuses what the same command would
refuse, and writes nothing; a data YAML that does not exist yet (a dataset still to be converted) is left out of it.
Outputs: results/, logs/, train/, val/, summary.json, ap_vs_iou.png, report.md (boxloss/stats/).
``rescore --help`` lists the keys of rescore (boxloss/benchmark/rescore.py).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from .._io import check_output_folder
from ..benchmark.lock import folder_lock
from ..errors import ConfigError
from ..keyvalues import format_help, run_cli, split_keyvalues
from ..param import Param

PROG = "benchmark.py"
USAGE = ("cfgs=a,b seeds=0,1 data=<data.yaml|shapes|shapes-mini> [key=value ...] | summarize out=<dir> | status "
         "cfgs=... seeds=... data=... [minutes=] [runs_per_hour=] | check cfgs=... seeds=... data=... [key=value ...] | "
         "rescore out=<dir> ...")


def help_text() -> str:
    from ..benchmark.plan import BENCHMARK_KEYS

    return format_help(__doc__, {**BENCHMARK_KEYS, **SUMMARIZE_KEYS, **STATUS_KEYS},
                       "keys (besides every train.py key)")


def summarize_main(argv: list[str], command: str) -> int:
    """``summarize out=<dir> [baseline=<cfg>] [cfgs=a,b] [into=<dir>] [bootstrap=N]``: the report from the result
    files (and the curves and match tables stored beside them);
    ``cfgs`` keeps those configs in that order (e.g. one pair, paired against ``baseline``), ``into`` writes the
    report, summary and plot into another folder, leaving ``out``'s own report as it is."""
    from ..stats import report, report_folder, summary
    from ..stats.records import load_results

    keys = split_keyvalues(argv)
    unknown = sorted(set(keys) - {"out", "baseline", "cfgs", "into", "bootstrap"})
    if unknown:
        raise ConfigError(f"summarize takes out=, baseline=, cfgs=, into= and bootstrap=, not {', '.join(unknown)}")
    resamples = SUMMARIZE_KEYS["bootstrap"].validate("bootstrap", keys.get("bootstrap", 1000))
    out = Path(str(keys.get("out") or ""))
    if not keys.get("out") or not (out / "results").is_dir():
        raise ConfigError(f"out={keys.get('out')!r}: no results/ folder there (summarize out=<benchmark dir>)")
    results = load_results(out / "results", log=lambda line: print(line, file=sys.stderr))
    order = None
    if keys.get("cfgs"):
        order = [c for c in str(keys["cfgs"]).split(",") if c]
        missing = [c for c in order if c not in {result["cfg"] for result in results}]
        if missing:
            raise ConfigError(f"cfgs: {missing[0]!r} has no results in {out / 'results'}")
        results = [result for result in results if result["cfg"] in order]
    baseline = str(keys["baseline"]) if keys.get("baseline") else None
    if baseline is not None and baseline not in {result["cfg"] for result in results}:
        raise ConfigError(f"baseline={baseline!r} has no results in {out / 'results'}"
                          + (" among cfgs=" if order else ""))
    into = Path(str(keys["into"])) if keys.get("into") else out
    check_output_folder(into, "into" if keys.get("into") else "out")
    computed = summary.summarize(results, baseline, order, out=out, resamples=resamples,  # checks before writing
                                 log=lambda line: print(line, file=sys.stderr))
    with folder_lock(into, "into" if keys.get("into") else "out", command, note=_note):
        paths = report_folder.write_report(into, computed, command)
    for line in report.terminal_lines(computed):
        print(line)
    print(f"\nbenchmark: report {paths['report']}")
    return 0


def rescore_main(argv: list[str], prog: str = "benchmark.py", launcher: list[str] | None = None) -> int:
    """``rescore out=<dir> ...`` (:mod:`boxloss.benchmark.rescore`) as a command of its own: its own ``--help``,
    its error lines named ``prog``; ``launcher``: how it was started, for the command recorded in what it writes
    (default: this command's ``rescore`` subcommand)."""
    from ..benchmark import rescore

    command = shlex.join([*(launcher or [*_launcher(["rescore", *argv]), "rescore"]), *argv])
    return run_cli(prog, lambda: format_help(rescore.__doc__, rescore.KEYS),
                   lambda args: rescore.main(args, command, prog, note=lambda line: _note(line, prog)), argv)


SUMMARIZE_KEYS = {
    "bootstrap": Param(1000, "summarize: draws of the two-stage bootstrap over seeds and images (0: leave it out)",
                       lambda n: n == 0 or n >= 100, "0 or >= 100"),
}
STATUS_KEYS = {
    "minutes": Param(10.0, "status: the machine time to forecast, in minutes", lambda m: m >= 0, ">= 0"),
    "runs_per_hour": Param(None, "status: the measured throughput at this concurrency (default: measured from the "
                           "folder's finished runs, else the H200 measurement of the BCCD protocol, 153 runs/h)",
                           lambda r: r > 0, "> 0", value_type=float),
}


def status_main(argv: list[str]) -> int:
    """``status <the run's own keys> [minutes=] [runs_per_hour=]``: what is finished, what is still to do in the
    order it starts, and what ``minutes`` more at ``runs_per_hour`` would finish (runs and whole seeds). Writes
    nothing."""
    from ..benchmark import plan as planning
    from ..benchmark.results import scan
    from ..benchmark.status import H200_BCCD_RUNS_PER_HOUR, measured_rate, outlook

    mine = [arg for arg in argv if arg.partition("=")[0] in STATUS_KEYS]
    settings = {key: param.validate(key, split_keyvalues(mine).get(key, param.default))
                for key, param in STATUS_KEYS.items()}
    plan = planning.build_plan([arg for arg in argv if arg not in mine])
    scanned = scan(plan)  # read once, for the rate and the outlook
    measured = measured_rate(plan, scanned)
    if settings["runs_per_hour"]:
        rate, source = settings["runs_per_hour"], "given"
    elif measured:
        at_once = f"jobs={plan.execution.jobs}" if plan.execution.engine != "ray" else \
            f"{measured.concurrency:g} at once on the Ray cluster, as the runs recorded"
        rate, source = measured.runs_per_hour, f"measured: {measured.runs} finished run(s) of this folder at {at_once}"
    else:
        rate, source = H200_BCCD_RUNS_PER_HOUR, ("the H200 measurement of the BCCD protocol; nothing has "
                                                  "finished here yet, give runs_per_hour= for this machine")
    print(f"benchmark status: rate {rate:.3g} runs/h ({source})")
    for line in outlook(plan, settings["minutes"], rate, scanned).lines():
        print(f"benchmark status: {line}")
    return 0


def _note(line: str, prog: str = PROG) -> None:
    print(f"{prog}: note: {line}", file=sys.stderr)


def _launcher(argv: list[str]) -> list[str]:
    """How this command was started, for the command recorded with every result."""
    if sys.argv[1:] != argv:  # called from Python
        return ["python", "scripts/benchmark.py"]
    started = Path(sys.argv[0])
    if started.name.startswith("boxloss-"):  # the console script
        return [started.name]
    if started.resolve() == Path(__file__).resolve():
        return ["python", "-m", "boxloss.cli.benchmark"]
    return ["python", sys.argv[0]]


def _main(argv: list[str]) -> int:
    command = shlex.join([*_launcher(argv), *argv])
    if argv[:1] == ["summarize"]:
        return summarize_main(argv[1:], command)
    if argv[:1] == ["status"]:
        return status_main(argv[1:])
    if argv[:1] == ["check"]:  # the keys of a run, checked before its dataset exists (scripts/bccd_protocol.sh)
        from ..benchmark import plan as planning

        planning.build_plan(argv[1:], data_pending=True)
        return 0
    from ..benchmark import plan as planning

    if not argv:
        raise ConfigError(f"nothing to do; usage: {USAGE}")
    plan = planning.build_plan(argv, command)
    with folder_lock(plan.out, "out", command, note=_note):  # one benchmark per out= at a time
        return _run_plan(plan)


def _run_plan(plan) -> int:
    from ..benchmark import execute, results

    def log(line: str) -> None:
        print(line, flush=True)

    try:
        outcome = execute.run_plan(plan, log=log)
    except KeyboardInterrupt:
        finished = len(list((plan.out / "results").glob("*.json"))) if (plan.out / "results").is_dir() else 0
        waiting = results.waiting_runs(plan.out)
        print(f"\nbenchmark: interrupted; {finished} finished result(s) kept in {plan.out / 'results'}"
              + (f" and {len(waiting)} in results/waiting/ for the rest of their seed" if waiting else "")
              + "; run the same command again to continue", file=sys.stderr)
        return 130
    for name, reason in outcome.failed.items():
        print(f"benchmark: {name} failed: {reason}", file=sys.stderr)
    return 1 if outcome.failed else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["rescore"]:
        return rescore_main(argv[1:])
    return run_cli(PROG, help_text, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
