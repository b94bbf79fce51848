"""Benchmark throughput with jobs=1 and jobs=N on this machine, in one sitting: runs per hour and their ratio.

    python scripts/bench_throughput.py data=datasets/bccd-yolo/data.yaml jobs=2
    python scripts/bench_throughput.py data=shapes-mini jobs=2 epochs=1 imgsz=128 cfgs=ciou,eiou seeds=0,1

The same small matrix (cfgs x seeds, short training) is run by scripts/benchmark.py with jobs=1, then with jobs=N,
each into a fresh folder under out= (default runs/bench_throughput); the wall time of each (training and COCO
evaluation of every run) gives runs per hour. Writes <out>/throughput.md and throughput.json (atomically).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

from boxloss._io import write_json_atomic, write_text_atomic
from boxloss.keyvalues import format_help, parse_keyvalues, run_cli
from boxloss.param import Param

KEYS = {
    "data": Param("shapes-mini", "dataset of the matrix", value_type=str),
    "jobs": Param(2, "parallel jobs compared with 1", lambda n: n >= 2, ">= 2"),
    "cfgs": Param("ciou,eiou", "configs of the matrix"),
    "seeds": Param("0,1", "seeds of the matrix"),
    "epochs": Param(2, "epochs per run", lambda n: n >= 1, ">= 1"),
    "imgsz": Param(320, "image size", lambda n: n > 0, "> 0"),
    "batch": Param(16, "batch size", lambda n: n > 0, "> 0"),
    "out": Param("runs/bench_throughput", "output folder"),
}


def timed_matrix(settings: dict, jobs: int, out: Path) -> tuple[float, int]:
    """Wall seconds and finished runs of the matrix with ``jobs`` at once, run through the library (the engine and
    runner scripts/benchmark.py uses), into a fresh ``out``."""
    from boxloss.benchmark import execute
    from boxloss.benchmark.plan import build_plan

    if out.exists():
        shutil.rmtree(out)
    plan = build_plan([f"cfgs={settings['cfgs']}", f"seeds={settings['seeds']}", f"data={settings['data']}",
                       f"epochs={settings['epochs']}", f"imgsz={settings['imgsz']}", f"batch={settings['batch']}",
                       "workers=0", "plots=False", f"jobs={jobs}", f"out={out}"])
    started = time.monotonic()
    outcome = execute.run_plan(plan, log=lambda line: None)
    if outcome.failed:
        raise RuntimeError(f"runs failed: {outcome.failed}")
    return time.monotonic() - started, len(outcome.results)


def main(argv: list[str]) -> int:
    settings = parse_keyvalues(argv, KEYS)
    out = Path(settings["out"])
    out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for jobs in (1, settings["jobs"]):
        seconds, runs = timed_matrix(settings, jobs, out / f"jobs{jobs}")
        rows[jobs] = {"seconds": seconds, "runs": runs, "runs_per_hour": runs * 3600 / seconds}
        print(f"jobs={jobs}: {runs} runs in {seconds:.0f} s, {rows[jobs]['runs_per_hour']:.1f} runs/hour", flush=True)
    ratio = rows[settings["jobs"]]["runs_per_hour"] / rows[1]["runs_per_hour"]
    record = {"settings": settings, "rows": {str(k): v for k, v in rows.items()}, "ratio": ratio,
              "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
              "command": " ".join(["python", "scripts/bench_throughput.py", *argv])}
    write_json_atomic(out / "throughput.json", record, indent=1)
    lines = [f"# Benchmark throughput, jobs=1 vs jobs={settings['jobs']}", "", f"`{record['command']}` "
             f"({os.cpu_count()} CPUs; matrix cfgs={settings['cfgs']} seeds={settings['seeds']}, "
             f"{settings['epochs']} epochs at {settings['imgsz']} px on {settings['data']})", "",
             "| jobs | runs | wall s | runs/hour |", "|---:|---:|---:|---:|"]
    lines += [f"| {jobs} | {row['runs']} | {row['seconds']:.0f} | {row['runs_per_hour']:.1f} |"
              for jobs, row in rows.items()]
    lines += ["", f"Throughput ratio: **{ratio:.2f}x**", ""]
    write_text_atomic(out / "throughput.md", "\n".join(lines))
    print(f"throughput ratio jobs={settings['jobs']} / jobs=1: {ratio:.2f}x -> {out / 'throughput.md'}")
    print(json.dumps(record["rows"]))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("bench_throughput.py", lambda: format_help(__doc__, KEYS), main))
