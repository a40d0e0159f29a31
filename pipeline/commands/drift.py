"""Compare a table with a reference (a CSV, or a model's data profile): PSI per feature, KS for numerics.

    python -m pipeline drift --config configs/pipeline.toml --reference data/churn_reference.csv --out out

PSI uses the reference's quantile bins for numeric features and value frequencies for
categorical and boolean ones (an empty bin counts as a small epsilon). The two-sample KS
test runs on numeric features when the raw reference rows are available (``--reference``),
not against a model's stored profile (``--model DIR``, PSI only). A feature drifts when
PSI > drift.psi_limit, or when the KS statistic > drift.ks_statistic_limit with
p < drift.ks_pvalue_limit; the check fails when more than drift.max_drifted_features
drift. Nulls are left out of both measures (validate checks null fractions). Features are
the schema's columns minus target and ids. Writes ``OUT/drift.json``; exit 1 on failure.
Without --reference or --model, drift.reference from the config is used.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model.artifact import read_metadata
from model.codec import write_record
from pipeline.commands.options import add_data, add_out, read_data
from pipeline.config import load_config
from pipeline.core.drift import against_profile, against_reference, failure_summary
from pipeline.errors import CheckFailed, DataError
from pipeline.io.run import run_id
from pipeline.io.tables import file_hash, read_table
from pipeline.records import Drift
from pipeline.render.console import drift_table


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``drift`` options."""
    add_data(parser, "check")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--reference", type=Path, help="reference table (CSV or Parquet); enables KS")
    source.add_argument("--model", type=Path, help="model artefact dir: compare with its stored profile")
    add_out(parser, "output directory (default out)")


def run(args: argparse.Namespace) -> int:
    """Measure drift, write ``OUT/drift.json``; exit 1 when too many features drifted."""
    config = load_config(args.config)
    data_path, current = read_data(args, config)
    provenance = {"run": run_id(), "data_sha256": file_hash(data_path)}
    if args.model is not None:
        report = against_profile(current, read_metadata(args.model), str(args.model), config, **provenance)
    else:
        reference = args.reference or config.drift.reference
        if reference is None:
            raise DataError("no reference: pass --reference CSV or --model DIR, or set drift.reference")
        report = against_reference(current, read_table(reference), str(reference), config, **provenance)
    out = Path(args.out) / Drift.FILE
    write_record(out, report)
    print(drift_table(report))
    if not report.passed:
        raise CheckFailed(failure_summary(report, str(out)))
    print(f"drift within limits; wrote {out}")
    return 0
