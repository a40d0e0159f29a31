"""Infer the config's [data] and [schema] sections from a table, ready to paste into the config.

    python -m pipeline schema infer data/churn.csv --target churned > schema.toml

Column types (numeric, categorical, boolean) come from the data; numeric ranges are the
observed min/max widened by ``--margin`` of the span (0 keeps the observed values;
never below 0 for a column that has no negatives); text columns with at most
``--max-categories`` distinct values get their allowed values; columns without nulls
are ``nullable = false``, the others get a null limit above the observed fraction;
id-like columns (unique text, or an ``*_id`` name with unique values) become
``data.id_columns``. For a classification target the observed labels become
``schema.labels``. The task is guessed from the target unless ``--task`` is given.
Review the output: it describes this table, not what future tables must look like.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd

from pipeline.core.schema import InferOptions, Inferred, infer_sections
from pipeline.errors import DataError
from pipeline.io.tables import read_table
from pipeline.render.toml import schema_toml


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``schema`` subcommands (``infer``)."""
    actions = parser.add_subparsers(dest="action", required=True)
    infer = actions.add_parser(
        "infer",
        help="print [data] and [schema] TOML inferred from a table",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    infer.add_argument("data", type=Path, help="table to read (CSV or Parquet)")
    infer.add_argument("--target", required=True, help="name of the target column")
    infer.add_argument(
        "--task", choices=("classification", "regression"), help="default: guessed from the target column"
    )
    infer.add_argument("--format", choices=("csv", "parquet"), help="default: from the file extension")
    infer.add_argument(
        "--margin",
        type=float,
        default=0.1,
        help="widen numeric ranges by this fraction of the observed span (default 0.1; 0 = observed)",
    )
    infer.add_argument(
        "--max-categories",
        type=int,
        default=20,
        help="list allowed values for text columns with at most this many (default 20)",
    )


def run(args: argparse.Namespace) -> int:
    """Print the inferred TOML on stdout."""
    if args.margin < 0:
        raise DataError(f"--margin must be >= 0, got {args.margin}")
    frame = read_table(args.data, args.format)
    options = InferOptions(args.task, args.format, args.margin, args.max_categories)
    inferred = infer_sections(frame, str(args.data), args.target, options)
    for note in inferred.notes:
        print(f"schema infer: {note}", file=sys.stderr)
    write_stdout(schema_text(inferred, str(args.data), frame))
    return 0


def infer_toml(frame: pd.DataFrame, path: str, target: str, options: InferOptions | None = None) -> str:
    """Return TOML text with a [data] and a [schema] section describing ``frame``."""
    return schema_text(infer_sections(frame, path, target, options), path, frame)


def schema_text(inferred: Inferred, path: str, frame: pd.DataFrame) -> str:
    """Return the inferred sections as TOML, headed by where they came from."""
    header = [
        f"Inferred by `python -m pipeline schema infer` from {path} ({len(frame)} rows, {frame.shape[1]} columns).",
        "Review ranges, allowed values and null limits before pasting into ml-cicd.toml.",
    ]
    return schema_toml(inferred.data, inferred.schema, header)


def write_stdout(text: str) -> None:
    """Write ``text`` to stdout; a reader that left early (``| head``) is not an error of ours."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
