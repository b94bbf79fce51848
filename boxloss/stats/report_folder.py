"""The report folder: ``summary.json`` (every number), ``ap_vs_iou.png``, ``report.md`` (and ``curves.png``,
``tide.png`` when there are curves and TIDE records), written whole or not at all.

Every file is rendered in memory, written into a temporary folder inside the report folder, and only when all of
them are there renamed into place (a rename needs no space): a full disk or any other failed write leaves the
previous report as it was, and is one line naming the file that could not be written.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .._io import make_temp_dir
from ..errors import ConfigError
from . import bootstrap, plots, report
from .summary import json_safe, summarize

SUMMARY_FILE, REPORT_FILE = "summary.json", "report.md"
REPORT_FILES = (SUMMARY_FILE, plots.PLOT_FILE, plots.CURVES_PLOT, plots.TIDE_PLOT, REPORT_FILE)


def render(summary: Mapping[str, Any], summarize_command: str | None = None) -> dict[str, bytes]:
    """``{file name: content}`` of the report folder of ``summary``."""
    files = {SUMMARY_FILE: (json.dumps(json_safe(summary), indent=2) + "\n").encode(),
             plots.PLOT_FILE: plots.ap_vs_iou_png(summary)}
    if summary.get("curves"):
        files[plots.CURVES_PLOT] = plots.curves_png(summary["curves"])
    if summary.get("tide") and any(summary["tide"][split]["paired"] for split in summary["splits"]):
        files[plots.TIDE_PLOT] = plots.tide_png(summary["tide"], summary["splits"], summary["baseline"])
    files[REPORT_FILE] = (report.format_report(summary, plots.PLOT_FILE, summarize_command) + "\n").encode()
    return files


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def write_report(into: str | os.PathLike, summary: Mapping[str, Any],
                 summarize_command: str | None = None) -> dict[str, Path]:
    """Write the report folder of ``summary`` into ``into`` (created if needed), whole or not at all; returns
    ``{"summary", "plot", "report"[, "curves", "tide"]: path}``. A plot the previous report had and this one has not
    is removed with it. ConfigError (one line naming the file) when a file cannot be written."""
    into = Path(into)
    files = render(summary, summarize_command)
    had_report = (into / SUMMARY_FILE).is_file()
    try:
        into.mkdir(parents=True, exist_ok=True)
        staging = make_temp_dir(into, ".report.", ".partial")
    except OSError as error:
        raise ConfigError(f"cannot write the report folder {into}: {error.strerror or error}") from None
    try:
        for name, data in files.items():
            try:
                _write(staging / name, data)
            except OSError as error:
                raise ConfigError(f"cannot write {into / name}: {error.strerror or error}; the report in {into} is "
                                  "unchanged") from None
        for name in files:
            os.replace(staging / name, into / name)
        for name in set(REPORT_FILES) - set(files) if had_report else ():
            (into / name).unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    keys = {SUMMARY_FILE: "summary", plots.PLOT_FILE: "plot", REPORT_FILE: "report", plots.CURVES_PLOT: "curves",
            plots.TIDE_PLOT: "tide"}
    return {keys[name]: into / name for name in files}


def write_summary(out: str | os.PathLike, results: Sequence[Mapping[str, Any]], baseline: str | None = None,
                  order: Sequence[str] | None = None, summarize_command: str | None = None,
                  log: Callable[[str], None] = print, source: str | os.PathLike | None = None,
                  resamples: int = bootstrap.RESAMPLES) -> dict[str, Path]:
    """Summarize ``results`` (:func:`.summary.summarize`) and write the report folder into ``out``; prints the AP
    tables to ``log``. ``source``: the benchmark folder the results come from (its curves and match tables;
    default ``out``)."""
    summary = summarize(results, baseline, order, out=Path(out) if source is None else Path(source),
                        resamples=resamples, log=log)
    paths = write_report(out, summary, summarize_command)
    for line in report.terminal_lines(summary):
        log(line)
    log(f"\nbenchmark: report {paths['report']}")
    return paths
