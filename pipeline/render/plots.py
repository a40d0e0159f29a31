"""PNG plots for the report: the confusion matrix (classification) and residuals (regression).

matplotlib is imported only when a plot is drawn, with the Agg backend (no display needed).
Each PNG carries a digest of what it shows (a ``Description`` text chunk), so an up-to-date
plot is kept rather than drawn again (:func:`shows`).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from model.records import Confusion


def shows(png: bytes, digest: str) -> bool:
    """Return True when ``png`` was drawn from the data whose digest is ``digest``."""
    return f"Description\x00{digest}".encode() in png


def confusion_png(confusion: Confusion, digest: str) -> bytes:
    """Return a PNG of the confusion matrix (rows: true label, columns: predicted)."""
    plt = _pyplot()
    labels = list(confusion.labels)
    values = np.asarray(confusion.matrix)
    size = 2.2 + 0.6 * len(labels)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    ax.imshow(values, cmap="Blues")
    ticks = range(len(labels))
    ax.set_xticks(ticks, [str(label) for label in labels])
    ax.set_yticks(ticks, [str(label) for label in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (held-out rows)")
    middle = values.max() / 2 if values.size else 0
    for (i, j), count in np.ndenumerate(values):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > middle else "black")
    return _png(fig, digest)


def residual_png(predicted: np.ndarray, residuals: np.ndarray, digest: str) -> bytes:
    """Return a PNG of residuals (true - predicted) against predicted values."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(predicted, residuals, s=8, alpha=0.5)
    ax.axhline(0.0, color="grey", linewidth=1)
    ax.set_xlabel("predicted")
    ax.set_ylabel("residual (true - predicted)")
    ax.set_title("Residuals (held-out rows)")
    return _png(fig, digest)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any, digest: str) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None, "Description": digest})
    _pyplot().close(fig)
    return buffer.getvalue()
