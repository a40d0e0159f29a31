"""The report's calibration section: both models' reliability curves side by side, bin by bin.

Each row is a band of stated probabilities (binary: the positive class's; multiclass: the top class's)
and, for each model, the mean probability its rows were given and how often they came true; a bar
marks how far apart the two are, so a model that is surer (or less sure) than it is right shows at a
glance. The verdict is the ``calibration`` gate's (``pipeline/steps/gate.py``).
"""

from __future__ import annotations

from pipeline.records import Gates, ReliabilityBin
from pipeline.render.tables import markdown_table

BAR_WIDTH = 10  # characters for a gap of 0.5


def calibration_section(gates: Gates | None) -> str:
    """Return the section, or "" when no classifier was compared with a champion."""
    if gates is None or gates.calibration is None:
        return ""
    verdict = gates.result("calibration")
    lines = ["## Calibration vs champion", ""]
    if verdict is not None:
        lines += [f"`calibration` {verdict.status.value}: {verdict.message}", ""]
    candidate = {round(b.low, 6): b for b in gates.calibration.candidate}
    champion = {round(b.low, 6): b for b in gates.calibration.champion}
    rows = []
    for low in sorted(candidate.keys() | champion.keys()):
        either = candidate.get(low) or champion[low]
        rows.append(
            (f"{either.low:.1f}-{either.high:.1f}", _said(candidate.get(low)), _said(champion.get(low)))
        )
    lines += markdown_table(("probabilities", "candidate: rows, said -> came true", "champion"), rows)
    worst = max(
        gates.calibration.candidate, key=lambda b: b.rows * abs(b.observed - b.predicted), default=None
    )
    if worst is not None and abs(worst.observed - worst.predicted) >= 0.05:
        side = "more" if worst.observed > worst.predicted else "less"
        lines += [
            "",
            f"Where it matters most ({worst.rows} rows given {worst.predicted:.2f} on average), the outcome "
            f"came true {side} often than the candidate said ({worst.observed:.2f}).",
        ]
    return "\n".join(lines)


def _said(entry: ReliabilityBin | None) -> str:
    if entry is None:
        return ""
    gap = entry.observed - entry.predicted
    bar = "#" * min(BAR_WIDTH * 2, round(abs(gap) * BAR_WIDTH * 2))
    return f"{entry.rows}, {entry.predicted:.2f} -> {entry.observed:.2f} {bar}".rstrip()
