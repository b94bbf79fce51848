"""A console/markdown table of COCO metrics, one row per model (or loss) compared side by side."""

from __future__ import annotations

from typing import Mapping, Sequence

from .._io import format_table
from .coco_eval import METRIC_KEYS

MISSING = "-"  # a metric with nothing to measure (-1 in COCOeval) or absent


def format_metrics_table(rows: Mapping[str, Mapping[str, float]], columns: Sequence[str] = METRIC_KEYS, *,
                         style: str = "markdown", digits: int = 3, first_column: str = "model") -> str:
    """``{name: metrics}`` as a table: one row per name (in the given order), one column per metric.

    Args:
        rows: metrics per row name, e.g. ``{"ciou": evaluate(...), "eiou": evaluate(...)}``.
        columns: metric keys to show (default: AP50 ... AP95, AP, APs, APm, APl, AR100).
        style: ``"markdown"`` (a GitHub table) or ``"plain"`` (space-aligned, for the console).
        digits: decimals of the values (fractions in [0, 1], as COCOeval prints them).
        first_column: header of the name column.

    Values of -1 (COCOeval's "no ground truth for this") and missing keys are shown as ``-``.
    """
    def cell(value) -> str:
        if value is None or value == -1:
            return MISSING
        if isinstance(value, int):  # counts, e.g. matched detections
            return str(value)
        return f"{float(value):.{digits}f}"

    body = [[str(name), *(cell(metrics.get(key)) for key in columns)] for name, metrics in rows.items()]
    return format_table([first_column, *columns], body, style=style)
