"""Onboard a table: write a complete, commented config, ready for `run` with no hand edits, and a CI workflow.

    ml-cicd init data/telco.csv --target churned                  # writes ml-cicd.toml, the workflow, .gitignore
    ml-cicd run
    ml-cicd init data/telco.csv --target churned --config ml/telco.toml --ci none

The config holds the inferred schema, the task, the labels and the positive label (stderr says
which and why), a random forest, task-appropriate gates, slices over low-cardinality
categoricals, a registry next to the config, and a drift reference made from the table itself:
a snapshot written next to the config (up to 50,000 rows, chosen by a hash of each row, so the
same table gives the same file). The schema's limits are for fresh data from the same source
(``pipeline/core/schema.py``): ranges past the observed extremes by what the tails allow, null
limits with room for sampling noise and no ``nullable = false`` from a sample without nulls;
every limit loosened to fit the table (duplicate rows, the rarest class, ...) is named on
stderr. Paths in the config are relative to its directory (the project's root).

Beside the config: ``.github/workflows/ml-cicd.yml``, a thin workflow calling the remote ml-cicd
module pinned to this release (``--module``, else the repository and commit pip recorded when
ml-cicd was installed from git, else its published source and ``v<version>``; with none of them
``--ci auto``, the default, writes none and says so, ``--ci github`` refuses; ``--ci none``
writes none), and the ``.gitignore`` lines for ``out/``, the step cache and the registry. An
existing config or workflow is not overwritten unless ``--force``; everything is checked before
anything is written, and nothing is written when the table cannot be read.
"""

from __future__ import annotations

import argparse
import os
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
from pipeline.io.release import module_address
from pipeline.io.shipped import version
from pipeline.io.tables import read_table, table_format
from pipeline.render.toml import config_toml
from pipeline.render.workflow import WORKFLOW, workflow_yaml

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
    parser.add_argument(
        "--force", action="store_true", help="overwrite an existing config, reference and workflow"
    )
    parser.add_argument(
        "--ci",
        choices=("auto", "github", "none"),
        default="auto",
        help=f"github: write {WORKFLOW} calling the remote ml-cicd module; auto (default): when it is known "
        "which module to call; none",
    )
    parser.add_argument(
        "--module",
        help="the remote module the workflow calls, pinned: github.com/OWNER/REPO@TAG-OR-COMMIT "
        "(default: where this ml-cicd was installed from)",
    )


def run(args: argparse.Namespace) -> int:
    """Infer, choose, and write the reference snapshot and the config."""
    config_path = Path(args.config)
    root = config_path.parent
    if config_path.exists() and not args.force:
        raise ConfigError(f"{config_path} exists; pass --force to overwrite it (or choose another --config)")
    workflow = root / WORKFLOW
    module = None
    if args.ci != "none":
        module = args.module or module_address(version())
        if not module and args.ci == "github":
            raise ConfigError(
                "--ci github: cannot tell which ml-cicd module the workflow should call (this ml-cicd was "
                "not installed from a repository); pass --module github.com/OWNER/REPO@TAG, or --ci none"
            )
        if module and "@" not in module:
            raise ConfigError(f"--module {module}: pin it to a release, e.g. {module}@v{version()}")
        if module and workflow.exists() and not args.force:
            raise ConfigError(f"{workflow} exists; pass --force to overwrite it (or --ci none)")
    frame = read_table(args.data)
    data_path = os.path.relpath(
        Path(args.data).resolve(), root.resolve()
    )  # the config names it from where it is
    if Path(args.data).is_absolute() and data_path.startswith(".."):
        data_path = str(args.data)  # outside the project: as given
    inferred = infer_sections(frame, data_path, args.target, InferOptions(task=args.task, fresh=True))
    fmt = table_format(Path(args.data))
    reference = config_path.with_name(f"{config_path.stem}_reference.{fmt}")
    registry = config_path.with_name(f"{config_path.stem}_registry")
    description = args.description or f"Predict {args.target} from {Path(args.data).name}."
    sections = config_sections(inferred, frame, reference.name, registry.name, description)
    text = config_toml(sections)
    try:
        import tomllib

        parse_config(tomllib.loads(text), origin=str(config_path))
    except (ConfigError, ValueError) as exc:  # a bug here, not bad input: say so and write nothing
        raise DataError(f"init produced a config that does not load ({exc}); please report it") from None
    snapshot = reference_rows(frame, inferred.data.get("id_columns") or list(frame.columns))
    write_bytes_atomic(reference, table_bytes(snapshot, fmt))
    write_text_atomic(config_path, text)
    if module is not None:
        workflow.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(workflow, workflow_yaml(module, config_path.name, version()))
        print(
            f"init: wrote {workflow}: the pipeline on every push and pull request, ml-cicd {module}",
            file=sys.stderr,
        )
    elif args.ci == "auto":
        print(
            f"init: no {WORKFLOW} written: this ml-cicd was not installed from a repository, so which module "
            "to call is unknown; pass --module github.com/OWNER/REPO@TAG to write it",
            file=sys.stderr,
        )
    ignored = ignore_lines(root / ".gitignore", ["/out/", "/.cache/", f"/{registry.name}/"])
    if ignored:
        print(f"init: added {', '.join(ignored)} to {root / '.gitignore'}", file=sys.stderr)
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
        f"drift reference {reference} ({len(snapshot)} rows); next: ml-cicd run --config {config_path}",
        file=sys.stderr,
    )
    return 0


def ignore_lines(path: Path, lines: list[str]) -> list[str]:
    """Add to the .gitignore at ``path`` those of ``lines`` it lacks; return what was added."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    present = {line.strip() for line in text.splitlines()}
    missing = [line for line in lines if line not in present]
    if missing:
        joined = text + ("" if not text or text.endswith("\n") else "\n")
        write_text_atomic(
            path, joined + "# ml-cicd: its outputs, step cache and registry\n" + "\n".join(missing) + "\n"
        )
    return missing


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
