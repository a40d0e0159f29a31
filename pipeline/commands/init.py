"""Write a complete, commented config for a new table, ready for `run` with no hand edits.

    python -m pipeline init data/telco.csv --target churned --config configs/telco.toml
    python -m pipeline run --config configs/telco.toml

The config holds the inferred schema, the task, the labels and the positive label (stderr says
which and why), a random forest, task-appropriate gates, slices over low-cardinality
categoricals, a registry next to the config, and a drift reference made from the table itself:
a snapshot written next to the config (up to 50,000 rows, chosen by a hash of each row, so the
same table gives the same file). The schema's limits are for fresh data from the same source
(``pipeline/core/schema.py``): ranges past the observed extremes by what the tails allow, null
limits with room for sampling noise and no ``nullable = false`` from a sample without nulls;
every limit loosened to fit the table (duplicate rows, the rarest class, ...) is named on
stderr. An existing config is not overwritten unless ``--force``; nothing is written when the
table cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from model.files import write_bytes_atomic, write_text_atomic
from model.records import SplitRule
from pipeline.config import parse_config
from pipeline.config_gates import ChampionGate
from pipeline.core.onboarding import config_sections, detectable_note, held_out_warning, loosened_limits
from pipeline.core.schema import InferOptions, infer_sections
from pipeline.core.split import key_hash
from pipeline.errors import ConfigError, DataError
from pipeline.io.outdir import parquet_bytes
from pipeline.io.tables import read_table, table_format
from pipeline.render.toml import config_toml

REFERENCE_ROWS = 50_000


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``init`` options (``--config`` is the file to write)."""
    parser.add_argument("data", type=Path, help="the table to onboard (CSV or Parquet)")
    parser.add_argument("--target", required=True, help="name of the target column")
    parser.add_argument(
        "--task", choices=("classification", "regression"), help="default: guessed from the target column"
    )
    parser.add_argument(
        "--description", default="", help="what the model is for (the model card's first line)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing config and reference")


def run(args: argparse.Namespace) -> int:
    """Infer, choose, and write the reference snapshot and the config."""
    config_path = Path(args.config)
    if config_path.exists() and not args.force:
        raise ConfigError(f"{config_path} exists; pass --force to overwrite it (or choose another --config)")
    frame = read_table(args.data)
    inferred = infer_sections(frame, str(args.data), args.target, InferOptions(task=args.task, fresh=True))
    fmt = table_format(Path(args.data))
    reference = config_path.with_name(f"{config_path.stem}_reference.{fmt}")
    registry = config_path.with_name(f"{config_path.stem}_registry")
    description = args.description or f"Predict {args.target} from {Path(args.data).name}."
    sections = config_sections(inferred, frame, str(reference), str(registry), description)
    text = config_toml(sections)
    try:
        import tomllib

        parse_config(tomllib.loads(text), origin=str(config_path))
    except (ConfigError, ValueError) as exc:  # a bug here, not bad input: say so and write nothing
        raise DataError(f"init produced a config that does not load ({exc}); please report it") from None
    snapshot = reference_rows(frame, inferred.data.get("id_columns") or list(frame.columns))
    write_bytes_atomic(reference, table_bytes(snapshot, fmt))
    write_text_atomic(config_path, text)
    for note in [*inferred.notes, *loosened_limits(inferred, frame)]:
        print(f"init: {note}", file=sys.stderr)
    power = detectable_note(len(frame), str(inferred.data["task"]))
    if power:
        print(f"init: {power}", file=sys.stderr)
    small = held_out_warning(len(frame), ChampionGate().min_rows)
    if small:
        print(f"init: warning: {small}", file=sys.stderr)
    print(
        f"init: wrote {config_path} ({len(inferred.schema['columns'])} columns, {inferred.data['task']}) and the "
        f"drift reference {reference} ({len(snapshot)} rows); next: python -m pipeline run --config {config_path}",
        file=sys.stderr,
    )
    return 0


def reference_rows(frame: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """Return up to ``REFERENCE_ROWS`` rows, chosen by a hash of ``key`` (the same table, the same rows)."""
    if len(frame) <= REFERENCE_ROWS:
        return frame
    order = key_hash(frame, SplitRule(tuple(key), "reference", 1.0)).argsort(kind="stable")
    return frame.iloc[sorted(order[:REFERENCE_ROWS])]


def table_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    """Return ``frame`` as CSV or Parquet bytes."""
    if fmt == "parquet":
        return parquet_bytes(frame)
    return bytes(frame.to_csv(index=False).encode())
