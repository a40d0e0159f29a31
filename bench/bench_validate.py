"""All data checks on a generated 1,000,000-row, 20-column table: time (read excluded), peak memory, pandera.

    .venv/bin/python bench/bench_validate.py [--rows 1000000] [--repeat 3] [--broken]

The parent process generates a seeded table (an id column, 10 float and 3 integer
columns, 4 categorical, 1 boolean, a 0/1 target; about 1% nulls in some columns and
0.1% exact duplicate rows) and a 100,000-row drift reference from another seed, writes
them as Parquet with a matching config into a temp directory, then measures in a fresh
child process so the generator's memory does not count. The child reads both tables with
``pipeline.io.tables.read_table`` (timed separately) and then, ``--repeat`` times, runs what
``validate`` runs: every check of ``validate_frame`` (schema, integrity, leakage, duplicates)
and the drift comparison against the reference (features and label), alternately with
pandera 0.35 validating the same table against the same schema (types, ranges, allowed
values, nulls; lazily, all failures), which is the part pandera covers. Printed: the best
run of each with per-phase times, the ratio, and the child's peak RSS (VmHWM) measured after
the first run of ours, before pandera ran. ``--broken`` plants failures in most columns
(out-of-range values, nulls over the limit, unknown categories, text in a numeric column, 5%
duplicate rows) to time the failure path. Targets (2 cores): all checks within 0.6 s, peak
RSS within 1 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CATEGORIES = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta")


def generate(rows: int, seed: int, broken: bool = False) -> object:
    """Return the seeded benchmark table (a pandas DataFrame); ``broken`` plants many bad values."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {"row_id": np.char.add("R", np.arange(rows).astype(str))}
    for i in range(10):
        values = rng.normal(100.0, 15.0, rows)
        if i % 3 == 0:
            values[rng.random(rows) < 0.01] = np.nan
        columns[f"x{i}"] = values
    for i in range(3):
        columns[f"n{i}"] = rng.integers(0, 1000, rows)
    for i in range(4):
        values = np.asarray(CATEGORIES, dtype=object)[rng.integers(0, len(CATEGORIES), rows)]
        if i % 2 == 0:
            values[rng.random(rows) < 0.01] = None
        columns[f"c{i}"] = values
    columns["flag"] = rng.random(rows) < 0.4
    columns["label"] = (rng.random(rows) < 0.3).astype(int)
    frame = pd.DataFrame(columns)
    if broken:  # failures in most columns: out of range, nulls, bad categories, text in a number column
        for i in range(0, 10, 2):
            frame.loc[rng.random(rows) < 0.2, f"x{i}"] = 5000.0
        frame.loc[rng.random(rows) < 0.2, "x1"] = np.nan
        for i in range(4):
            frame.loc[rng.random(rows) < 0.1, f"c{i}"] = "omega"
        text = frame["n0"].astype(str)
        text[rng.random(rows) < 0.01] = "unknown"
        frame["n0"] = text
    copies = rows // (20 if broken else 1000)  # 5% or 0.1% exact duplicates of other rows
    picked = rng.choice(rows, size=2 * copies, replace=False)
    frame.iloc[picked[copies:]] = frame.iloc[picked[:copies]].to_numpy()
    return frame


def config_text(data: Path, reference: Path) -> str:
    """Return a config whose schema matches the generated table."""
    lines = [
        "[data]",
        f'path = "{data}"',
        'target = "label"',
        'id_columns = ["row_id"]',
        "[drift]",
        f'reference = "{reference}"',
        "[schema]",
        "min_rows = 1000",
        "max_duplicate_fraction = 0.01",
        "min_class_fraction = 0.05",
        "labels = [0, 1]",
        "[schema.columns.row_id]",
        'type = "categorical"',
        "nullable = false",
    ]
    for i in range(10):
        lines += [f"[schema.columns.x{i}]", 'type = "numeric"', "min = -1000", "max = 1000"]
        lines.append("max_null_fraction = 0.05" if i % 3 == 0 else "nullable = false")
    for i in range(3):
        lines += [f"[schema.columns.n{i}]", 'type = "numeric"', "min = 0", "max = 999", "nullable = false"]
    for i in range(4):
        allowed = ", ".join(f'"{c}"' for c in CATEGORIES)
        lines += [f"[schema.columns.c{i}]", 'type = "categorical"', f"allowed = [{allowed}]"]
        lines.append("max_null_fraction = 0.05" if i % 2 == 0 else "nullable = false")
    lines += ["[schema.columns.flag]", 'type = "boolean"', "nullable = false"]
    lines += ["[schema.columns.label]", 'type = "numeric"', "nullable = false"]
    return "\n".join(lines) + "\n"


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pandera_schema(config: object) -> object:
    """Return the pandera DataFrameSchema of the config's columns: types, ranges, allowed values, nulls."""
    import pandera.pandas as pa

    columns = {}
    for column in config.schema.columns:  # type: ignore[attr-defined]
        checks = []
        if column.min is not None or column.max is not None:
            checks.append(pa.Check.in_range(column.min, column.max))
        if column.allowed is not None and column.type == "categorical":
            checks.append(pa.Check.isin(list(column.allowed)))
        dtype = {"numeric": "float64", "boolean": "bool"}.get(column.type)
        columns[column.name] = pa.Column(
            dtype, checks=checks, nullable=column.nullable, coerce=dtype == "float64"
        )
    return pa.DataFrameSchema(columns)


def child(config_path: Path, repeat: int) -> None:
    """Measure in this (fresh) process and print one JSON line."""
    started = time.perf_counter()
    from pipeline.config import load_config
    from pipeline.core.drift import against_reference
    from pipeline.core.duplicates import duplicate_rows
    from pipeline.core.validation import validate_frame
    from pipeline.io.tables import read_table

    imported = time.perf_counter() - started
    config = load_config(config_path)
    started = time.perf_counter()
    frame = read_table(config.data.path)
    reference = read_table(config.drift.reference)
    read_seconds = time.perf_counter() - started
    after_read = _rss_mb("VmRSS")

    def ours() -> tuple[float, dict[str, float], object, object]:
        timings: dict[str, float] = {}
        began = time.perf_counter()
        report = validate_frame(frame, config, timings=timings)
        middle = time.perf_counter()
        drift = against_reference(frame, reference, "reference", config)
        timings["drift"] = time.perf_counter() - middle
        return time.perf_counter() - began, timings, report, drift

    runs = [ours()]
    peak = _rss_mb("VmHWM")
    schema = pandera_schema(config)
    theirs: list[float] = []
    pandera_failures = 0
    for _ in range(repeat):
        began = time.perf_counter()
        try:
            schema.validate(frame, lazy=True)  # type: ignore[attr-defined]
        except Exception as exc:  # pandera's SchemaErrors: a failing table is still a measured run
            pandera_failures = len(getattr(exc, "failure_cases", []))
        theirs.append(time.perf_counter() - began)
        runs.append(ours())
    best = min(runs, key=lambda r: r[0])
    drift = best[3]
    result = {
        "rows": len(frame),
        "reference_rows": len(reference),
        "columns": frame.shape[1],
        "import_s": imported,
        "read_s": read_seconds,
        "validate_s": [r[0] for r in runs],
        "pandera_s": theirs,
        "pandera_failure_cases": pandera_failures,
        "phases": best[1],
        "passed": best[2].passed,  # type: ignore[attr-defined]
        "failures": [f.message for f in best[2].failures],  # type: ignore[attr-defined]
        "drifted": list(drift.drifted),  # type: ignore[attr-defined]
        "label_drifted": bool(drift.label and drift.label.drifted),  # type: ignore[attr-defined]
        "rss_after_read_mb": after_read,
        "peak_rss_mb": peak,
    }
    # Baseline after the peak was read: pandas' own full-row check, and a cross-check of the count.
    started = time.perf_counter()
    result["pandas_duplicated"] = int(frame.duplicated().sum())
    result["pandas_duplicated_s"] = time.perf_counter() - started
    started = time.perf_counter()
    result["duplicate_rows"] = duplicate_rows(frame)
    result["duplicate_rows_s"] = time.perf_counter() - started
    print(json.dumps(result))


def main() -> None:
    """Generate the table, measure validation in a child process, print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to generate (default 1000000)")
    parser.add_argument("--repeat", type=int, default=3, help="validation runs in the child (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--broken", action="store_true", help="plant failures in most columns")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.repeat)
        return
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        frame = generate(args.rows, args.seed, args.broken)
        data = Path(tmp) / "table.parquet"
        frame.to_parquet(data, index=False)  # type: ignore[attr-defined]
        del frame
        reference = Path(tmp) / "reference.parquet"
        generate(min(args.rows, 100_000), args.seed + 1).to_parquet(reference, index=False)  # type: ignore[attr-defined]
        config = Path(tmp) / "pipeline.toml"
        config.write_text(config_text(data, reference))
        print(f"generated {args.rows} rows x 20 columns in {time.perf_counter() - started:.1f} s")
        argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            str(config),
            "--repeat",
            str(args.repeat),
        ]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"child failed (exit {done.returncode}):\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    times = result["validate_s"]
    print(
        f"table: {result['rows']} rows x {result['columns']} columns; validation passed: {result['passed']}"
    )
    for message in result["failures"][:12]:
        print(f"  failure: {message}")
    if len(result["failures"]) > 12:
        print(f"  ... and {len(result['failures']) - 12} more failures")
    print(
        f"child: imports {result['import_s']:.2f} s, read_table (Parquet) {result['read_s']:.2f} s (not counted)"
    )
    drifted = ", ".join(result["drifted"]) or "none"
    print(
        f"drift against a {result['reference_rows']}-row reference: drifted features {drifted}; label drifted: {result['label_drifted']}"
    )
    print(
        f"all checks (validate_frame + drift, read excluded): best {min(times):.3f} s, all runs "
        + ", ".join(f"{t:.3f}" for t in times)
        + " s (target <= 0.6 s)"
    )
    print("  phases of the best run: " + ", ".join(f"{k} {v:.3f} s" for k, v in result["phases"].items()))
    schema_part = sum(result["phases"][k] for k in ("table", "target", "columns"))
    theirs = result["pandera_s"]
    print(
        f"pandera 0.35, the schema part only (types, ranges, allowed values, nulls), alternating with ours: "
        f"best {min(theirs):.3f} s, all runs " + ", ".join(f"{t:.3f}" for t in theirs) + " s; "
        f"ours for that part {schema_part:.3f} s (ratio pandera/ours {min(theirs) / schema_part:.1f}x); "
        f"all of ours / pandera's schema part {min(times) / min(theirs):.2f}x"
    )
    same = "same count" if result["duplicate_rows"] == result["pandas_duplicated"] else "COUNTS DIFFER"
    print(
        f"duplicate rows: {result['duplicate_rows']} in {result['duplicate_rows_s']:.3f} s (hash + confirm) vs "
        f"pandas DataFrame.duplicated {result['pandas_duplicated']} in {result['pandas_duplicated_s']:.3f} s ({same})"
    )
    print(
        f"peak RSS of the child (VmHWM, after the first run of ours: interpreter, imports, both reads, all checks): "
        f"{result['peak_rss_mb']:.0f} MB (target <= 1024 MB); RSS after the read {result['rss_after_read_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
