"""Defaults from evidence: does fresh data from the same source pass, and is a planted defect caught?

    .venv/bin/python bench/bench_defaults.py [--seeds 20] [--only churn,cancer,...] [--no-split] [--no-planted]

**Split-half runs.** For each table and seed, the rows are shuffled and cut in two halves:
``init`` onboards one half (as a team onboards the table it has), then ``validate`` checks the
other half against that config and its drift reference (the first half), as next week's data
from the same source. Every run should pass. Tables: the bundled ``data/churn.csv``; tables made
from the datasets scikit-learn ships (no network), shaped as users have them (breast cancer with
a text target, an id, a 0/1 flag, a text category and 2% nulls; diabetes with ``sex`` as text;
wine with named cultivars and a yes/no flag; iris with named species; digits); and the churn
table with a free categorical (``state``: 51 values of unequal frequency, too many for an
allowed list). Printed per table: the rows per half, how many of the runs failed validation
(and which check on which column), how many failed drift (features, or the label), the best
single-feature leakage score among the real features and the label's distance.

**Planted defects, each beside its clean twin** (the same rows without the defect), on the
checked half after ``init`` onboarded the other: conflicting labels (copies of 0.25% of the rows
with the other label, so 0.5% of the rows conflict; the twin keeps the labels); a feature that
leaks the target with a ROC AUC of 0.99 (the label plus Gaussian noise; the twin's noise gives
0.95, the strongest real feature measured); the label's share moved by 10 points at 25,000 rows a
side (``python -m pipeline synth --rows 50000``'s table); half the rows of the free categorical
turned to values the reference never had (at 2,000 and at 300 rows a side); a null surge (20% of
one column's rows); a unit error (1% of one column's values times 100). Printed: how many of the
runs caught the defect and how many of the twins failed, with the statistic measured.

**Calibration** (``--calibration``, no CLI, many draws): how often fresh data from one source goes
beyond each allowance that leaves room for sampling noise. Ranges: 200 random halves of each real
table, the old rule (10% of the span) beside :func:`pipeline.core.schema.fresh_range`, with the
share of columns where a unit error (10 or 100 times a typical large value) would still be caught;
null limits, never-seen categories and the Jensen-Shannon noise floor: the worst chance over a grid
of sources, for fresh samples as large as the onboarded one and ten times larger.

Every figure says over how many seeds (or draws) it was measured. The split-half and planted runs go
in-process through the real CLI (``pipeline.cli.main``) on CSV files in a temp directory.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run as a script from anywhere: import pipeline/ and model/

from pipeline.cli import main  # noqa: E402  needs the path above
from pipeline.config import load_config  # noqa: E402
from pipeline.core import integrity  # noqa: E402
from pipeline.core.synth import churn_frame  # noqa: E402
from pipeline.io.tables import read_table  # noqa: E402
from tests.conftest import (  # noqa: E402  the real tables, as the tests build them
    diabetes_table,
    iris_named,
    realistic_cancer,
    wine_with_flag,
    with_states,
)

STATES = 51
STATE_RATIO = 0.918  # each state this share of the one before: 8.3% down to 0.12%, like US state populations


# ---------------------------------------------------------------------------------------------
# Tables, shaped as users have them.


def churn() -> pd.DataFrame:
    """The bundled churn table (4,000 rows)."""
    return read_table(REPO / "data" / "churn.csv")


def digits() -> pd.DataFrame:
    """digits: 64 pixel intensities (0-16), many of them almost always 0, and the digit."""
    from sklearn.datasets import load_digits

    return pd.DataFrame(load_digits(as_frame=True).frame)


def states() -> pd.DataFrame:
    """The churn table with a free categorical (``state``, 51 values)."""
    return with_states(churn())


@dataclass(frozen=True)
class Table:
    """A table for the split-half runs: how to build it and its target."""

    name: str
    build: Callable[[], pd.DataFrame]
    target: str


TABLES = (
    Table("churn", churn, "churned"),
    Table("cancer", realistic_cancer, "diagnosis"),
    Table("diabetes", diabetes_table, "target"),
    Table("wine", wine_with_flag, "cultivar"),
    Table("iris", iris_named, "species"),
    Table("digits", digits, "target"),
    Table("states", states, "churned"),
)


# ---------------------------------------------------------------------------------------------
# One onboarding and one check, through the real CLI.


@dataclass(frozen=True)
class Onboarded:
    """A config ``init`` wrote for one half, and what it said on stderr."""

    config: Path
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Checked:
    """What ``validate`` (and the drift it writes) said about a table against an onboarded config."""

    failures: tuple[str, ...]  # "check column" of each validation failure
    drifted: tuple[str, ...]  # features beyond their drift limits
    label: dict[str, Any] | None  # the label's comparison from drift.json
    features: dict[str, dict[str, Any]]  # each feature's comparison from drift.json

    @property
    def drift_failed(self) -> bool:
        """Return True when the drift step would exit 1: a feature drifted, or the label did."""
        return bool(self.drifted) or bool(self.label and self.label["drifted"])

    @property
    def failed(self) -> bool:
        """Return True when validate or drift said "failed"."""
        return bool(self.failures) or self.drift_failed

    def reasons(self) -> list[str]:
        """Return why it failed: each validation failure, each drifted feature, the label."""
        label = ["drift label"] if self.label and self.label["drifted"] else []
        return [*self.failures, *(f"drift {name}" for name in self.drifted), *label]

    def unseen(self, feature: str) -> float:
        """Return the share of rows whose ``feature`` value the reference never had."""
        return float(sum(self.features[feature]["unseen"].values()))


def quiet(argv: list[str]) -> tuple[int, str]:
    """Run ``python -m pipeline ARGV`` in-process; return its exit code and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def onboard(frame: pd.DataFrame, target: str, where: Path) -> Onboarded:
    """Write ``frame`` as CSV and run ``init`` on it."""
    where.mkdir(parents=True, exist_ok=True)
    data, config = where / "onboarded.csv", where / "model.toml"
    frame.to_csv(data, index=False)
    code, err = quiet(["init", str(data), "--target", target, "--config", str(config), "--force"])
    if code != 0:
        raise SystemExit(f"init failed ({code}): {err}")
    notes = tuple(
        line.removeprefix("init: ") for line in err.splitlines() if not line.startswith("init: wrote")
    )
    return Onboarded(config, notes)


def check(onboarded: Onboarded, frame: pd.DataFrame, name: str = "checked") -> Checked:
    """Write ``frame`` as CSV next to the config and run ``validate`` on it; read both reports."""
    where = onboarded.config.parent
    data, out = where / f"{name}.csv", where / f"out-{name}"
    frame.to_csv(data, index=False)
    code, err = quiet(["validate", "--config", str(onboarded.config), "--data", str(data), "--out", str(out)])
    if code not in (0, 2) or not (out / "validation.json").is_file():
        raise SystemExit(f"validate crashed ({code}): {err}")
    validation = json.loads((out / "validation.json").read_text())
    drift = json.loads((out / "drift.json").read_text())
    failures = tuple(f"{f['check']} {f['column'] or '-'}" for f in validation["failures"])
    features = {f["feature"]: f for f in drift["features"]}
    drifted = tuple(drift["drifted"]) + tuple(drift["missing"])
    return Checked(failures, drifted, drift["label"], features)


def halves(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return two random halves of ``frame`` (the first for init, the second to check)."""
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = len(frame) // 2
    return frame.iloc[np.sort(order[:cut])], frame.iloc[np.sort(order[cut:])]


def best_leakage(onboarded: Onboarded, frame: pd.DataFrame) -> tuple[str, float] | None:
    """Return the feature with the highest single-feature leakage score on ``frame``, and the score."""
    config = load_config(onboarded.config)
    columns = integrity.features(frame, config)
    schema = dataclasses.replace(config.schema, leakage_limit=0.5000001)  # every score comes back
    found = integrity.leakage_failures(frame, columns, dataclasses.replace(config, schema=schema))
    best = max(found, key=lambda f: float(f.observed), default=None)
    return (str(best.column), float(best.observed)) if best is not None else None


def conflicting_share(onboarded: Onboarded, frame: pd.DataFrame) -> float | None:
    """Return the share of rows with another row's features and another label (None: check not judged)."""
    config = load_config(onboarded.config)
    if config.data.task != "classification":
        return None
    found = integrity.conflicting_failures(frame, integrity.features(frame, config), config.data.target, 0.0)
    if found is None:
        return None
    return float(found[0].observed["share"]) if found else 0.0


# ---------------------------------------------------------------------------------------------
# Split-half runs.


def spread(values: Iterable[float]) -> str:
    """Return ``min / median / max`` of ``values`` (or ``-``)."""
    numbers = [v for v in values if v is not None]
    if not numbers:
        return "-"
    return f"{min(numbers):.4f} / {float(np.median(numbers)):.4f} / {max(numbers):.4f}"


def split_half(table: Table, seeds: int, root: Path) -> None:
    """Print the split-half figures of one table over ``seeds`` seeds."""
    frame = table.build()
    failed = validate_failed = drift_failed = 0
    reasons: Counter[str] = Counter()
    notes: Counter[str] = Counter()
    leaks: list[tuple[str, float]] = []
    conflicts: list[float] = []
    labels: list[float] = []
    methods: set[str] = set()
    unseen: list[float] = []
    started = time.perf_counter()
    for seed in range(seeds):
        first, second = halves(frame, seed)
        onboarded = onboard(first, table.target, root / table.name / str(seed))
        second = read_back(onboarded, second)
        checked = check(onboarded, second)
        failed += checked.failed
        validate_failed += bool(checked.failures)
        drift_failed += checked.drift_failed
        reasons.update(set(checked.reasons()))
        notes.update(_note_kind(n) for n in onboarded.notes)
        best = best_leakage(onboarded, second)
        if best is not None:
            leaks.append(best)
        share = conflicting_share(onboarded, second)
        if share is not None:
            conflicts.append(share)
        if checked.label and checked.label["statistic"] is not None:
            tested = checked.label["p_adjusted"] is not None
            labels.append(float(checked.label["p_adjusted" if tested else "statistic"]))
            methods.add(f"{checked.label['method']} {'p' if tested else 'distance'}")
        unseen.append(max((checked.unseen(name) for name in checked.features), default=0.0))
    seconds = time.perf_counter() - started
    rows = f"{len(frame) // 2}|{len(frame) - len(frame) // 2}"
    print(
        f"{table.name:<9} {rows:>10}  failed {failed:>2}/{seeds}  validate {validate_failed:>2}/{seeds}  "
        f"drift {drift_failed:>2}/{seeds}  ({seconds:.0f} s)"
    )
    for reason, count in reasons.most_common(8):
        print(f"{'':<11} {count:>2}/{seeds} runs: {reason}")
    if leaks:
        column, _ = max(leaks, key=lambda item: item[1])
        print(
            f"{'':<11} best real single-feature leakage score, min/median/max over {len(leaks)} seeds: "
            f"{spread(s for _, s in leaks)} (highest: {column})"
        )
    if conflicts:
        print(f"{'':<11} conflicting-label share over {len(conflicts)} seeds: {spread(conflicts)}")
    if labels:
        print(f"{'':<11} label {'/'.join(sorted(methods))} over {len(labels)} seeds: {spread(labels)}")
    if any(unseen):
        print(f"{'':<11} largest never-seen share of a feature over {len(unseen)} seeds: {spread(unseen)}")
    for kind, count in sorted(notes.items()):
        print(f"{'':<11} init note in {count:>2}/{seeds} runs: {kind}")


def _note_kind(note: str) -> str:
    """Return the first words of an init note, so notes of one kind count together."""
    return note.split(":")[0] if ":" in note else note[:60]


def read_back(onboarded: Onboarded, frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` as the CLI reads it from CSV (types as a user's file gives them)."""
    path = onboarded.config.parent / "read-back.csv"
    frame.to_csv(path, index=False)
    return read_table(path)


# ---------------------------------------------------------------------------------------------
# Planted defects and their clean twins.


Planter = Callable[[pd.DataFrame, np.random.Generator], tuple[pd.DataFrame, pd.DataFrame]]
Measure = Callable[[Onboarded, pd.DataFrame, Checked], float | None]


@dataclass(frozen=True)
class Planted:
    """A defect planted in the checked half, its clean twin, and what to measure on each."""

    name: str
    table: Callable[[], pd.DataFrame]
    target: str
    plant: Planter  # the checked half -> (with the defect, its clean twin)
    measure: Measure
    caught: Callable[[Checked], bool]
    rows: int | None = None  # rows sampled from the table first (None: all)
    onboarded_as: Callable[[pd.DataFrame], pd.DataFrame] = lambda frame: frame  # the half init sees


def run_planted(case: Planted, seeds: int, root: Path) -> None:
    """Print how often ``case``'s defect was caught and how often its clean twin failed."""
    base = case.table()
    caught = twins_failed = 0
    on_defect: list[float] = []
    on_twin: list[float] = []
    reasons: Counter[str] = Counter()
    started = time.perf_counter()
    for seed in range(seeds):
        frame = base if case.rows is None else base.sample(case.rows, random_state=seed)
        first, second = halves(frame, seed)
        onboarded = onboard(case.onboarded_as(first), case.target, root / case.name / str(seed))
        defect, twin = case.plant(second.reset_index(drop=True), np.random.default_rng(1000 + seed))
        found, clean = check(onboarded, defect, "defect"), check(onboarded, twin, "twin")
        caught += case.caught(found)
        twins_failed += clean.failed
        reasons.update(set(clean.reasons()))
        for checked, table, values in ((found, defect, on_defect), (clean, twin, on_twin)):
            value = case.measure(onboarded, read_back(onboarded, table), checked)
            if value is not None:
                values.append(value)
    seconds = time.perf_counter() - started
    print(
        f"{case.name:<40} caught {caught:>2}/{seeds}  clean twin failed {twins_failed:>2}/{seeds}  "
        f"({seconds:.0f} s)"
    )
    if on_defect or on_twin:
        print(f"{'':<4} measured, min/median/max: defect {spread(on_defect)}; twin {spread(on_twin)}")
    for reason, count in reasons.most_common(4):
        print(f"{'':<4} twin failed {count:>2}/{seeds} on: {reason}")


def conflicting(share: float) -> Planter:
    """Return a planter: copies of ``share``/2 of the rows with the other label (twin: the same label)."""

    def plant(frame: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
        target = "churned" if "churned" in frame.columns else "diagnosis"
        pairs = max(1, round(len(frame) * share / 2))
        copies = frame.iloc[rng.choice(len(frame), pairs, replace=False)].copy()
        for column in [c for c in frame.columns if str(c).endswith("_id")]:
            copies[column] = [f"{v}-copy" for v in copies[column]]  # a new row, not an exact duplicate
        labels = sorted(frame[target].unique())
        flipped = copies.assign(**{target: [labels[int(v == labels[0])] for v in copies[target]]})
        return pd.concat([frame, flipped], ignore_index=True), pd.concat([frame, copies], ignore_index=True)

    return plant


def leaking(frame: pd.DataFrame, target: str, auc: float, seed: int = 5) -> np.ndarray:
    """Return a feature leaking ``target``: the label (0/1) plus Gaussian noise giving ROC AUC ``auc``."""
    from scipy.stats import norm

    positive = frame[target].astype(str).isin({"1", "malignant"}).to_numpy(dtype=float)
    sigma = 1.0 / (np.sqrt(2.0) * float(norm.ppf(auc)))  # AUC = Phi(1 / (sigma sqrt 2))
    return np.round(positive + np.random.default_rng(seed).normal(0.0, sigma, len(frame)), 4)


def leak_planted(name: str, table: Callable[[], pd.DataFrame], target: str) -> Planted:
    """The leak case: feature ``leak`` at ROC AUC 0.99 in the checked half; 0.95 in init's half and the twin."""

    def built() -> pd.DataFrame:
        frame = table()
        return frame.assign(leak_99=leaking(frame, target, 0.99), leak_95=leaking(frame, target, 0.95))

    def onboarded_as(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.drop(columns="leak_99").rename(columns={"leak_95": "leak"})

    def plant(frame: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
        defect = frame.drop(columns="leak_95").rename(columns={"leak_99": "leak"})
        return defect, onboarded_as(frame)

    def measure(onboarded: Onboarded, frame: pd.DataFrame, checked: Checked) -> float | None:
        config = load_config(onboarded.config)
        schema = dataclasses.replace(config.schema, leakage_limit=0.5000001)  # the score comes back
        columns = [c for c in integrity.features(frame, config) if c.name == "leak"]
        found = integrity.leakage_failures(frame, columns, dataclasses.replace(config, schema=schema))
        return float(found[0].observed) if found else None

    return Planted(
        name, built, target, plant, measure, lambda c: "leakage leak" in c.failures, None, onboarded_as
    )


def label_shift(points: float) -> Planter:
    """Return a planter raising the share of ``churned`` = 1 by ``points`` (0.10: 10 points)."""

    def plant(frame: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
        zeros = np.flatnonzero(frame["churned"].to_numpy() == 0)
        shifted = frame.copy()
        shifted.loc[rng.choice(zeros, round(points * len(frame)), replace=False), "churned"] = 1
        return shifted, frame

    return plant


def unseen_states(share: float) -> Planter:
    """Return a planter giving ``share`` of the rows a ``state`` the reference never had."""

    def plant(frame: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
        moved = rng.random(len(frame)) < share
        new = np.array([f"N{i:02d}" for i in range(STATES)], dtype=object)
        planted = frame.copy()
        planted.loc[moved, "state"] = rng.choice(new, int(moved.sum()))
        return planted, frame

    return plant


def null_surge(column: str, share: float) -> Planter:
    """Return a planter nulling ``share`` of ``column``'s rows."""

    def plant(frame: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
        planted = frame.copy()
        planted.loc[rng.random(len(frame)) < share, column] = np.nan
        return planted, frame

    return plant


def unit_error(column: str, share: float) -> Planter:
    """Return a planter multiplying ``share`` of ``column``'s values (at least one) by 100."""

    def plant(frame: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
        planted = frame.copy()
        rows = rng.choice(len(frame), max(1, round(share * len(frame))), replace=False)
        planted.loc[rows, column] = planted.loc[rows, column] * 100
        return planted, frame

    return plant


def synth_churn() -> pd.DataFrame:
    """The table ``python -m pipeline synth --rows 50000`` writes."""
    return churn_frame(50_000, 7)


def _conflicts(onboarded: Onboarded, frame: pd.DataFrame, checked: Checked) -> float | None:
    return conflicting_share(onboarded, frame)


def _label(onboarded: Onboarded, frame: pd.DataFrame, checked: Checked) -> float | None:
    return None if checked.label is None else checked.label["statistic"]


def _unseen(onboarded: Onboarded, frame: pd.DataFrame, checked: Checked) -> float | None:
    return checked.unseen("state")


def _nothing(onboarded: Onboarded, frame: pd.DataFrame, checked: Checked) -> float | None:
    return None


def _state_caught(checked: Checked) -> bool:
    return "state" in checked.drifted or "allowed state" in checked.failures


def _label_caught(checked: Checked) -> bool:
    return bool(checked.label and checked.label["drifted"])


def planted_cases() -> list[Planted]:
    """Return the planted defects, each measured on its clean twin too."""
    return [
        Planted(
            "conflicting labels 0.5% (churn)",
            churn,
            "churned",
            conflicting(0.005),
            _conflicts,
            lambda c: "conflicting_labels churned" in c.failures,
        ),
        Planted(
            "conflicting labels 0.5% (cancer)",
            realistic_cancer,
            "diagnosis",
            conflicting(0.005),
            _conflicts,
            lambda c: "conflicting_labels diagnosis" in c.failures,
        ),
        leak_planted("leak AUC 0.99 (churn)", churn, "churned"),
        leak_planted("leak AUC 0.99 (cancer)", realistic_cancer, "diagnosis"),
        Planted(
            "label +10 points, 25,000 rows/side",
            synth_churn,
            "churned",
            label_shift(0.10),
            _label,
            _label_caught,
        ),
        Planted(
            "label +5 points, 25,000 rows/side",
            synth_churn,
            "churned",
            label_shift(0.05),
            _label,
            _label_caught,
        ),
        Planted(
            "50% unseen state, 2,000 rows/side", states, "churned", unseen_states(0.5), _unseen, _state_caught
        ),
        Planted(
            "50% unseen state, 300 rows/side",
            states,
            "churned",
            unseen_states(0.5),
            _unseen,
            _state_caught,
            rows=600,
        ),
        Planted(
            "5% unseen state, 2,000 rows/side", states, "churned", unseen_states(0.05), _unseen, _state_caught
        ),
        Planted(
            "null surge 20% (churn monthly_charges)",
            churn,
            "churned",
            null_surge("monthly_charges", 0.2),
            _nothing,
            lambda c: "nulls monthly_charges" in c.failures,
        ),
        Planted(
            "null surge 20% (cancer mean radius)",
            realistic_cancer,
            "diagnosis",
            null_surge("mean radius", 0.2),
            _nothing,
            lambda c: "nulls mean radius" in c.failures,
        ),
        Planted(
            "unit error x100, 1% of rows (churn tenure)",
            churn,
            "churned",
            unit_error("tenure_months", 0.01),
            _nothing,
            lambda c: "range tenure_months" in c.failures,
        ),
        Planted(
            "unit error x100, 1 row (cancer mean area)",
            realistic_cancer,
            "diagnosis",
            unit_error("mean area", 0.0),
            _nothing,
            lambda c: "range mean area" in c.failures,
        ),
    ]


# ---------------------------------------------------------------------------------------------
# Calibration of the allowances for sampling noise.


def calibrate_ranges(seeds: int) -> None:
    """Print, per real table, how often the other half of a random split leaves the inferred ranges."""
    from pipeline.core.fresh import fresh_range, widen

    def old(values: np.ndarray, integer: bool) -> tuple[float, float]:
        return widen(float(values.min()), float(values.max()), 0.1, integer)

    print(f"ranges: runs with a value of the other half outside a range, of {seeds} random halves")
    for table in TABLES[:5]:
        frame = table.build()
        numeric = [
            c
            for c in frame.columns
            if c != table.target and pd.api.types.is_numeric_dtype(frame[c]) and frame[c].nunique() > 2
        ]
        cells = []
        for name, rule in (("10% of the span", old), ("fresh_range", fresh_range)):
            failed = caught10 = caught100 = checked = 0
            for seed in range(seeds):
                first, second = halves(frame[numeric], seed)
                outside = False
                for column in numeric:
                    values = first[column].dropna().to_numpy(dtype=float)
                    low, high = rule(values, pd.api.types.is_integer_dtype(frame[column]))
                    fresh = second[column].dropna().to_numpy(dtype=float)
                    outside |= bool((fresh < low).any() or (fresh > high).any())
                    typical = float(np.quantile(np.abs(fresh), 0.9))
                    checked += 1
                    caught10 += 10 * typical > high
                    caught100 += 100 * typical > high
                failed += outside
            cells.append(
                f"{name}: {failed:>3}/{seeds} (unit error caught x10 {caught10 / checked:.0%}, "
                f"x100 {caught100 / checked:.0%})"
            )
        print(f"  {table.name:<9} {len(numeric):>2} columns  " + "  ".join(cells))


def _worst(chances: dict[str, float]) -> str:
    key = max(chances, key=lambda k: chances[k])
    return f"{chances[key]:.4f} ({key})"


def calibrate_shares(draws: int) -> None:
    """Print the worst chance that a fresh sample's null share exceeds :func:`null_limit`, over true shares."""
    from pipeline.core.fresh import null_limit

    rng = np.random.default_rng(0)
    print(
        f"null limits: worst chance a fresh sample exceeds the limit, over true null shares ({draws} draws each)"
    )
    for rows in (75, 285, 2000, 25_000):
        cells = []
        for ratio in (1, 10):
            chances = {}
            for share in (0.0, *np.geomspace(0.1 / rows, 0.3, 30)):
                observed = rng.binomial(rows, share, draws)
                fresh = rng.binomial(rows * ratio, share, draws) / (rows * ratio)
                limits = np.array([null_limit(int(x), rows) for x in observed])
                chances[f"share {share:.4f}"] = float(np.mean(fresh > limits + 1e-12))
            cells.append(f"fresh x{ratio}: {_worst(chances)}")
        print(f"  {rows:>6} rows: limit with no nulls {null_limit(0, rows):g}; " + "; ".join(cells))


def _sources() -> dict[str, np.ndarray]:
    """Return category distributions: the 51 states, 51 and 4 even ones, a long tail of 1,000 (Zipf)."""
    states = STATE_RATIO ** np.arange(STATES)
    zipf = 1.0 / np.arange(1, 1001)
    return {
        "51 states": states / states.sum(),
        "51 even": np.full(51, 1 / 51),
        "4 values, one at 1%": np.array([0.6, 0.3, 0.09, 0.01]),
        "Zipf 1,000": zipf / zipf.sum(),
    }


def calibrate_categories(draws: int) -> None:
    """Print how often fresh data of one source breaks the never-seen limit and the Jensen-Shannon floor."""
    from pipeline.core.statistics import jensen_shannon, jensen_shannon_floor, pooled, unseen_limit

    rng = np.random.default_rng(0)
    print(
        f"never-seen categories (floor 0.01): chance a fresh sample goes beyond unseen_limit ({draws} draws each)"
    )
    for name, source in _sources().items():
        cells = []
        for rows, ratio in ((75, 1), (300, 1), (300, 10), (2000, 1), (2000, 10)):
            beyond = 0
            for _ in range(draws):
                seen = rng.multinomial(rows, source)
                fresh = rng.multinomial(rows * ratio, source)
                reference = {str(i): float(c) for i, c in enumerate(seen) if c}
                share = float(fresh[seen == 0].sum()) / (rows * ratio)
                beyond += share > unseen_limit(reference, rows * ratio, 0.01)
            cells.append(f"{rows}/{rows * ratio}: {beyond / draws:.4f}")
        print(f"  {name:<20} " + "  ".join(cells))
    print(
        f"Jensen-Shannon: chance two samples of one source go past 0.1 -> past max(0.1, floor) with rare "
        f"categories pooled, as drift compares them ({draws} draws each)"
    )
    for name, source in _sources().items():
        cells = []
        for rows in (1001, 2000, 5000):
            beyond = plain = 0
            for _ in range(draws):
                first = {str(i): float(c) for i, c in enumerate(rng.multinomial(rows, source))}
                second = {str(i): float(c) for i, c in enumerate(rng.multinomial(rows, source))}
                plain += jensen_shannon(first, second) > 0.1
                first, second = pooled(first, second)
                beyond += jensen_shannon(first, second) > max(0.1, jensen_shannon_floor(first, second))
            cells.append(f"{rows}/side: {plain / draws:.3f} -> {beyond / draws:.4f}")
        print(f"  {name:<20} " + "  ".join(cells))


def main_(argv: list[str] | None = None) -> int:
    """Parse the options, run the chosen figures, print them."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds (random halves) per table (default 20)")
    parser.add_argument("--only", default="", help="comma-separated table or case names (substrings)")
    parser.add_argument("--no-split", action="store_true", help="skip the split-half runs")
    parser.add_argument("--no-planted", action="store_true", help="skip the planted defects")
    parser.add_argument("--calibration", action="store_true", help="also simulate the noise allowances")
    parser.add_argument("--draws", type=int, default=2000, help="draws per calibration cell (default 2000)")
    args = parser.parse_args(argv)
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]

    def chosen(name: str) -> bool:
        return not wanted or any(w in name for w in wanted)

    with tempfile.TemporaryDirectory(prefix="bench-defaults-") as tmp:
        root = Path(tmp)
        if not args.no_split:
            print(f"split-half: init on one random half, validate + drift on the other ({args.seeds} seeds)")
            for table in TABLES:
                if chosen(table.name):
                    split_half(table, args.seeds, root / "split")
        if not args.no_planted:
            print(f"\nplanted defects, each beside its clean twin ({args.seeds} seeds)")
            for case in planted_cases():
                if chosen(case.name):
                    run_planted(case, args.seeds, root / "planted")
    if args.calibration:
        print()
        calibrate_ranges(200)
        calibrate_shares(args.draws)
        calibrate_categories(args.draws)
    return 0


if __name__ == "__main__":
    raise SystemExit(main_())
