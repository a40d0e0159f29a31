"""Reading tables (CSV or Parquet) with one clear error per way a file can be unusable."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

from model.files import sha256_file
from pipeline.errors import DataError, first_line

if TYPE_CHECKING:
    import pandas as pd

_SNIFF_BYTES = 8192
_TAIL_BYTES = 65536
_PARQUET_MAGIC = b"PAR1"
_OTHER_SEPARATORS = {";": "';'", "\t": "tab", "|": "'|'"}


def table_format(path: Path, declared: str | None = None) -> str:
    """Return ``csv`` or ``parquet`` from ``declared`` or the file extension."""
    if declared:
        return declared
    return "parquet" if path.suffix.lower() in {".parquet", ".pq"} else "csv"


def read_table(path: str | Path, fmt: str | None = None) -> pd.DataFrame:
    """Load a table, raising :class:`DataError` naming the file and the problem."""
    path = Path(path)
    kind = _sniff(path, fmt)
    if kind == "csv":
        _check_last_row(path, len(read_columns(path, kind)))
    frame = _read(path, kind, header_only=False)
    if frame.empty:
        raise DataError(f"{path}: header only, no data rows")
    return frame


def read_columns(path: str | Path, fmt: str | None = None) -> list[str]:
    """Return a table's column names, reading only its header (same errors as :func:`read_table`).

    A CSV header is parsed with the standard library, so checking a config does not import pandas.
    """
    path = Path(path)
    kind = _sniff(path, fmt)
    if kind == "parquet":
        return [str(c) for c in _read(path, kind, header_only=True).columns]
    with path.open(encoding="utf-8-sig", newline="") as handle:
        try:
            header = next(csv.reader(handle), [])
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: unreadable CSV ({first_line(exc)})") from None
    if not any(name.strip() for name in header):
        raise DataError(f"{path}: no columns found, expected a header row")
    _check_header(path, header)
    return header


def _check_header(path: Path, header: list[str]) -> None:
    """Refuse a header pandas would silently rename: another separator, blank or repeated names."""
    if len(header) == 1:
        for sep, word in _OTHER_SEPARATORS.items():
            if sep in header[0]:
                shown = header[0] if len(header[0]) <= 60 else header[0][:57] + "..."
                raise DataError(
                    f"{path}: the header reads as one column and looks {word}-separated; expected commas "
                    f"(header: {shown!r})"
                )
    for number, name in enumerate(header, start=1):
        if not name.strip():
            hint = " (a table index written by to_csv? write it with index=False)" if number == 1 else ""
            raise DataError(
                f"{path}: column {number} has no name in the header; expected a name for every column{hint}"
            )
    seen: dict[str, list[int]] = {}
    for number, name in enumerate(header, start=1):
        seen.setdefault(name, []).append(number)
    for name, numbers in seen.items():
        if len(numbers) > 1:
            where = ", ".join(map(str, numbers[:-1])) + f" and {numbers[-1]}"
            raise DataError(
                f"{path}: column name {name!r} appears {len(numbers)} times in the header (columns {where}); "
                "expected unique names"
            )


def _check_last_row(path: Path, width: int) -> None:
    """Refuse a CSV whose last row has fewer fields than the header: a write or download cut short.

    pandas fills a short row with nulls without a word. Only the last row is checked (it is where an
    interrupted copy ends, and reading it costs one seek); a last line holding a quote may be the end
    of a multi-line field, so it is left to the parser.
    """
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(0, size - _TAIL_BYTES))
        tail = handle.read()
    lines = tail.rstrip(b"\r\n").split(b"\n")
    if len(lines) < 2 or b'"' in lines[-1]:
        return
    try:
        fields = next(csv.reader([lines[-1].decode("utf-8").rstrip("\r")]), [])
    except (csv.Error, UnicodeDecodeError):
        return
    if 0 < len(fields) < width:
        raise DataError(
            f"{path}: the last row has {len(fields)} of {width} fields; the file looks cut short, "
            "expected complete rows"
        )


def _sniff(path: Path, fmt: str | None) -> str:
    """Return the table's format after checking the file's first bytes look like it."""
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if not head.strip():
        raise DataError(f"{path}: file is empty, expected a header row and data rows")
    kind = table_format(path, fmt)
    if kind == "parquet":
        if not head.startswith(_PARQUET_MAGIC):
            raise DataError(f"{path}: not a Parquet file (missing PAR1 magic bytes)")
        return kind
    if b"\x00" in head:
        raise DataError(f"{path}: binary content, expected a UTF-8 CSV text file")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # a multi-byte char cut at the sniff boundary is fine
            raise DataError(f"{path}: not UTF-8 text at byte {exc.start}, expected a CSV file") from None
    return kind


def _read(path: Path, kind: str, header_only: bool) -> pd.DataFrame:
    import pandas as pd

    if kind == "parquet":
        try:
            if header_only:
                import pyarrow.parquet as pq

                return pd.DataFrame(columns=pq.read_schema(path).names)
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types
            raise DataError(f"{path}: unreadable Parquet file ({exc})") from None
    else:
        try:
            frame = pd.read_csv(path, nrows=0 if header_only else None)
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: file is empty, expected a header row and data rows") from None
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise DataError(f"{path}: unreadable CSV ({first_line(exc)})") from None
    if frame.shape[1] == 0:
        raise DataError(f"{path}: no columns found, expected a header row")
    return frame


def file_hash(path: str | Path) -> str:
    """Return the sha256 of a data file, naming the file if it is missing."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    return sha256_file(path)
