"""Check a table against the config's schema and report every failure at once.

    python -m pipeline validate --config ml-cicd.toml --out out

Reads ``data.path`` (or ``--data``) and runs every check: minimum rows, required and
unexpected columns, target present and non-null, label set, class balance, type
coercion (text in a numeric column), ranges, allowed values, null fraction per column,
infinities, and the fraction of rows that repeat an earlier row exactly. Prints a table
and writes ``OUT/validation.json`` (also when checks fail: it is the report); when
``drift.reference`` is set it also writes ``OUT/drift.json`` (drift never fails validate;
the gate step turns it into the drift gate). Exit 0 when every check passes, 2 when any
fails or the table cannot be read (then nothing is written).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from model.codec import write_record
from pipeline.commands.options import add_data, add_out, check_config, read_data
from pipeline.config import load_config, project_root
from pipeline.core.drift import against_reference
from pipeline.core.validation import failure_summary, validate_frame
from pipeline.errors import DataError
from pipeline.io.run import run_id
from pipeline.io.tables import file_hash, read_table
from pipeline.records import Drift, Validation
from pipeline.render.console import validation_table


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``validate`` options."""
    add_data(parser, "check")
    add_out(parser, "output directory (default out)")


def run(args: argparse.Namespace) -> int:
    """Validate the table, write the reports; raise :class:`DataError` (exit 2) when a check failed."""
    config = load_config(args.config)
    check_config(config, project_root(args.config), data=args.data, model=False)
    run = run_id()
    data_path, frame = read_data(args, config)
    data_sha256 = file_hash(data_path)
    started = time.perf_counter()
    report = validate_frame(frame, config, run=run, data_sha256=data_sha256)
    seconds = time.perf_counter() - started
    out = Path(args.out)
    drift = None
    if config.drift.reference is not None:
        reference = config.drift.reference
        drift = against_reference(
            frame, read_table(reference), reference, config, run=run, data_sha256=data_sha256
        )
    print(f"validate {data_path}: {report.rows} rows x {report.columns} columns")
    print(validation_table(report))
    if drift is not None:
        write_record(out / Drift.FILE, drift)
        listed = f" ({', '.join(drift.drifted)})" if drift.drifted else ""
        verdict = {"passed": "within", "failed": "BEYOND"}.get(drift.status, "NOT ALL COMPARED against the")
        print(
            f"drift against {drift.reference}: {len(drift.drifted)} of {len(drift.features)} features "
            f"drifted{listed}, {verdict} limits; wrote {out / Drift.FILE}"
        )
    path = out / Validation.FILE
    write_record(path, report)
    if not report.passed:
        raise DataError(failure_summary(report, str(path)))
    print(f"validation passed: {len(report.checks)} checks in {seconds:.3f} s; wrote {path}")
    return 0
