"""What several commands share: options, the rule for which table a command reads, the config preflight."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config import Config
from pipeline.core.checks import CHECKS
from pipeline.errors import ConfigError, DataError
from pipeline.io.tables import read_columns, read_table

if TYPE_CHECKING:
    import pandas as pd


def add_out(
    parser: argparse.ArgumentParser, help_: str = "artefact directory (default: out/ beside the config)"
) -> None:
    """Add ``--out`` (unset: ``out/`` beside the config, filled in by ``pipeline/cli.py``)."""
    parser.add_argument("--out", type=Path, help=help_)


def add_data(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``--data`` (default: ``data.path`` from the config)."""
    parser.add_argument("--data", type=Path, help=f"table to {what} (default: data.path from the config)")


def read_data(args: argparse.Namespace, config: Config) -> tuple[Path, pd.DataFrame]:
    """Return the table a command works on: ``--data`` (format from its extension), else ``data.path``."""
    if args.data is not None:
        return Path(args.data), read_table(args.data)
    return Path(config.data.path), read_table(config.data.path, config.data.format)


def check_config(config: Config, root: Path, *, data: Path | None = None, model: bool = True) -> None:
    """Check, before any work, what the config names and only the data can confirm; raise :class:`ConfigError`.

    ``schema.skip_checks`` must name checks. The id and slice columns must be columns of the schema or of the table's header (``data``,
    default ``data.path``); whether the table holds the schema is for ``validate`` to say.
    The drift reference must be readable and hold the schema's features (a reference from another
    dataset, or a file with another delimiter, is refused); with ``model``, ``model.params`` must
    be parameters of ``model.kind`` (or ``model.factory``, found under ``root``, the project's root,
    must give an estimator). Metric names and directions were checked at load.
    """
    unknown = [name for name in config.schema.skip_checks if name not in CHECKS]
    if unknown:
        raise ConfigError(
            f"schema.skip_checks names {', '.join(map(repr, unknown))}, not a check (checks: {', '.join(CHECKS)})"
        )
    path = data or Path(config.data.path)
    columns = {c.name for c in config.schema.columns} | set(
        read_columns(path, None if data else config.data.format)
    )
    where = f"the schema or {path}"
    named = [("data.id_columns", name) for name in config.data.id_columns]
    named += [("slices.columns", name) for name in config.slices.columns]
    for key, name in named:
        if name not in columns:
            shown = ", ".join(sorted(columns)[:12]) + (", ..." if len(columns) > 12 else "")
            raise ConfigError(f"{key} names '{name}', which is not a column of {where} (columns: {shown})")
    if config.drift.reference is not None:
        try:
            reference = set(read_columns(config.drift.reference))
        except DataError as exc:
            raise ConfigError(f"drift.reference: {exc}") from None
        lacking = [name for name in config.feature_columns if name not in reference]
        if lacking:
            raise ConfigError(
                f"drift.reference {config.drift.reference} lacks {len(lacking)} of the schema's "
                f"{len(config.feature_columns)} features ({', '.join(lacking[:8])}"
                f"{', ...' if len(lacking) > 8 else ''}); is it from another dataset or another delimiter?"
            )
    if model:
        from pipeline.core.training import estimator_for

        estimator_for(config, root)
