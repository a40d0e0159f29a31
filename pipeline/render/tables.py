"""The one table renderer: aligned plain text for terminals, markdown for reports and model cards.

Every number in a table goes through :func:`fmt`, so a metric reads the same in the gate
table, the report, the registry listing and the model card.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def fmt(value: Any) -> str:
    """Return a short human form of a value: ``-`` for None, 4 significant digits for floats."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


def signed(value: Any) -> str:
    """Return a number with its sign and 4 decimals (a delta), ``-`` for anything else."""
    return f"{value:+.4f}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def text_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Return an aligned plain-text table; every column but the last is padded."""
    cells = [[str(c) for c in header], *[[_text(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Return markdown table lines, columns padded so that the plain text lines up too."""
    cells = [[_cell(c) for c in header], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(3, *(len(row[i]) for row in cells)) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(row)) + " |" for row in cells]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return lines


def _text(value: Any) -> str:
    return value if isinstance(value, str) else fmt(value)


def _cell(value: Any) -> str:
    return _text(value).replace("|", "\\|").replace("\n", " ")
