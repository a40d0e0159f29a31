"""Options several commands share, and the one rule for which table a command reads."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from pipeline.config import Config
from pipeline.io.tables import read_table


def add_out(parser: argparse.ArgumentParser, help_: str = "artefact directory (default out)") -> None:
    """Add ``--out`` (default ``out``)."""
    parser.add_argument("--out", type=Path, default=Path("out"), help=help_)


def add_data(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``--data`` (default: ``data.path`` from the config)."""
    parser.add_argument("--data", type=Path, help=f"table to {what} (default: data.path from the config)")


def read_data(args: argparse.Namespace, config: Config) -> tuple[Path, pd.DataFrame]:
    """Return the table a command works on: ``--data`` (format from its extension), else ``data.path``."""
    if args.data is not None:
        return Path(args.data), read_table(args.data)
    return Path(config.data.path), read_table(config.data.path, config.data.format)
