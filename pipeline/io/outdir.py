"""The out directory (``--out``): where each step leaves what the next one reads.

``model/`` (the artefact), ``holdout.parquet`` (the held-out rows, with ids and target), the
JSON records of ``model/records.py`` and ``pipeline/records.py`` by their ``FILE`` names, ``report.md`` and its plot,
``logs/`` (the host runner's step logs) and ``champion/`` (the exported champion).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from model.codec import read_record
from model.files import write_bytes_atomic
from pipeline.errors import DataError
from pipeline.records import Image

if TYPE_CHECKING:
    import pandas as pd

MODEL = "model"
HOLDOUT = "holdout.parquet"
CHAMPION = "champion"
REPORT = "report.md"
CONFUSION_PNG = "confusion_matrix.png"
RESIDUALS_PNG = "residuals.png"
LOGS = "logs"


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """Return ``frame`` as Parquet bytes (written later, atomically)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def write_holdout(out: Path, data: bytes) -> None:
    """Write the held-out rows (Parquet bytes) into ``out`` atomically."""
    write_bytes_atomic(out / HOLDOUT, data)


def read_holdout(path: Path) -> pd.DataFrame:
    """Return the held-out rows at ``path``, or raise naming the file and the step that writes it."""
    import pandas as pd

    if not path.is_file():
        raise DataError(f"{path}: held-out rows not found (written by `python -m pipeline train`)")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types
        raise DataError(f"{path}: unreadable Parquet file ({exc})") from None


def built_tag(out: Path) -> str:
    """Return the tag recorded by the last ``image build`` into ``out``."""
    path = out / Image.FILE
    if not path.is_file():
        raise DataError(f"{path}: no image built (run `python -m pipeline image build` first)")
    return read_record(path, Image).tag
