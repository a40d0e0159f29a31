"""Integrity and leakage checks of a table's features: what a schema check cannot see.

- ``constant``: a feature with one value, or whose most common value covers more than
  ``schema.max_dominant_fraction`` of its non-null rows (near-constant).
- ``category_variants``: text values that differ only by case or surrounding whitespace
  ("Yes", "yes ", "YES"), in a categorical feature or a classification target.
- ``mixed_types``: a categorical feature holding both numbers and text ("12", "abc").
- ``id_like``: a feature with a distinct text or whole-number value in every row, not declared
  in ``data.id_columns``.
- ``conflicting_labels``: rows with identical feature values and different targets
  (classification), as a share of the rows, over ``schema.max_conflicting_fraction``. Judged
  only when the features nearly identify a row (at least half the rows have a feature vector of
  their own): with a few coarse features, identical values with different labels are the
  expected noise, not an error.
- ``leakage``: a feature that alone predicts the target almost perfectly: its out-of-fold
  target encoding scores a ROC AUC (regression: R²) of at least ``schema.leakage_limit`` on
  ``schema.leakage_rows`` sampled rows.

Each returns :class:`Failure` records naming the column; ``pipeline/core/validation.py`` runs
them with the other checks. Numbers are one pass each over a column (a sort for numerics, a
hash table for text), so the whole set stays within a few hundred milliseconds on a million rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from model.inputs import category_key
from pipeline.config import ColumnSchema, Config
from pipeline.core.duplicates import shared_rows
from pipeline.core.values import json_scalar, percent, show
from pipeline.records import Failure

ID_MIN_ROWS = 100  # fewer rows: a distinct value per row proves nothing
NUMERIC_BINS = 50  # quantile bins a numeric feature is encoded by for the leakage score
SEED = 0
PROBES = 64  # values picked to rule a numeric column out of near-constant (see _varied)
PROBE_LIMIT = 0.99  # the probe is used only for limits this strict or stricter
OUTCOME_CELLS = 20_000_000  # rows x classes of the leakage score's one-hot target (160 MB); fewer rows above


def features(frame: pd.DataFrame, config: Config) -> list[ColumnSchema]:
    """Return the schema's feature columns (not target, not ids) that the table has."""
    names = set(config.feature_columns)
    return [c for c in config.schema.columns if c.name in names and c.name in frame.columns]


def constant_failures(
    frame: pd.DataFrame,
    columns: Sequence[ColumnSchema],
    limit: float,
    distinct: dict[str, pd.Series] | None = None,
) -> list[Failure]:
    """Flag features with a single value, or one value over ``limit`` of the non-null rows.

    ``distinct`` (from :func:`distinct_values`) saves counting the text columns again.
    """
    failures = []
    for column in columns:
        counts = (distinct or {}).get(column.name)
        if counts is not None:
            if counts.empty:
                continue
            top, share, single = counts.idxmax(), float(counts.max() / counts.sum()), counts.size == 1
            rows = int(counts.sum())
        else:
            values = frame[column.name]
            values = values.dropna() if values.hasnans else values
            if values.empty:
                continue  # all null: the nulls check says so
            top, share, single = _dominant(values, limit)
            rows = len(values)
        if single:
            message = f"column '{column.name}' has a single value ({show(top)}) in all {rows} non-null rows"
            failures.append(
                Failure("constant", column.name, message, {"value": json_scalar(top), "share": 1.0}, limit)
            )
        elif share > limit:
            message = (
                f"column '{column.name}' is near-constant: {show(top)} in {percent(share)} of its non-null rows, "
                f"limit {percent(limit)} (schema.max_dominant_fraction)"
            )
            failures.append(
                Failure("constant", column.name, message, {"value": json_scalar(top), "share": share}, limit)
            )
    return failures


def distinct_values(frame: pd.DataFrame, names: Sequence[str]) -> dict[str, pd.Series]:
    """Return each column's non-null value counts (one hash pass per column, shared by the checks)."""
    return {name: frame[name].value_counts(sort=False, dropna=True) for name in names}


def variant_failures(distinct: dict[str, pd.Series]) -> list[Failure]:
    """Flag text values of one column that differ only by case or surrounding whitespace."""
    failures = []
    for name, counts in distinct.items():
        texts = [v for v in counts.index if isinstance(v, str)]
        groups: dict[str, list[str]] = {}
        for text in texts:
            groups.setdefault(text.strip().casefold(), []).append(text)
        variants = [sorted(group) for group in groups.values() if len(group) > 1]
        if not variants:
            continue
        shown = "; ".join(" / ".join(repr(v) for v in group) for group in variants[:3])
        message = (
            f"column '{name}' spells {len(variants)} categor{'y' if len(variants) == 1 else 'ies'} in several ways "
            f"(case or surrounding spaces): {shown}"
        )
        failures.append(
            Failure("category_variants", name, message, variants[:10], "one spelling per category")
        )
    return failures


def mixed_type_failures(
    frame: pd.DataFrame, columns: Sequence[ColumnSchema], distinct: dict[str, pd.Series]
) -> list[Failure]:
    """Flag categorical features holding both numbers (or numeric text) and other text."""
    failures = []
    for column in columns:
        if column.type != "categorical" or column.name not in distinct:
            continue
        counts = distinct[column.name]
        uniques = pd.Series(counts.index, dtype=object)
        if uniques.empty or pd.api.types.is_numeric_dtype(counts.index):
            continue
        numeric = pd.to_numeric(uniques.map(_as_text), errors="coerce").notna().to_numpy()
        if numeric.all() or not numeric.any():
            continue
        number_rows = int(counts.to_numpy()[numeric].sum())
        text_rows = int(counts.sum()) - number_rows
        example_number, example_text = uniques[numeric].iloc[0], uniques[~numeric].iloc[0]
        message = (
            f"column '{column.name}' mixes numbers ({number_rows} rows, e.g. {show(example_number)}) and "
            f"text ({text_rows} rows, e.g. {show(example_text)})"
        )
        observed = {"number_rows": number_rows, "text_rows": text_rows}
        failures.append(Failure("mixed_types", column.name, message, observed, "one kind of value"))
    return failures


def id_like_failures(frame: pd.DataFrame, columns: Sequence[ColumnSchema]) -> list[Failure]:
    """Flag features with a distinct text or whole-number value in every row (an undeclared id)."""
    failures: list[Failure] = []
    rows = len(frame)
    if rows < ID_MIN_ROWS:
        return failures
    for column in columns:
        values = frame[column.name]
        if column.type == "boolean" or values.isna().any():
            continue
        if pd.api.types.is_float_dtype(values):
            numbers = values.to_numpy()
            head = numbers[:1000]
            if not (np.isfinite(head).all() and np.all(np.mod(head, 1) == 0)):
                continue  # measurements are distinct by nature (the first rows show it)
            if not (np.isfinite(numbers).all() and np.all(np.mod(numbers, 1) == 0)):
                continue
        elif not (pd.api.types.is_integer_dtype(values) or column.type == "categorical"):
            continue
        if values.iloc[:1000].duplicated().any() or values.nunique() != rows:
            continue  # a repeat among the first rows already settles it
        message = (
            f"column '{column.name}' has a different value in every one of the {rows} rows, like an id "
            f"(e.g. {show(values.iloc[0])}): declare it in data.id_columns, or leave it out of the table"
        )
        failures.append(Failure("id_like", column.name, message, rows, "repeated values"))
    return failures


def conflicting_failures(
    frame: pd.DataFrame, columns: Sequence[ColumnSchema], target: str, limit: float
) -> list[Failure] | None:
    """Flag rows whose features are identical to another row's while the target differs.

    Returns None when the check does not apply: fewer than half the rows have a feature vector
    of their own (see the module docstring).
    """
    names = [c.name for c in columns]
    if not names or target not in frame.columns:
        return None
    labelled = frame[target].notna().to_numpy()
    rows = int(labelled.sum())
    if rows < 2:
        return None
    candidates, hashes = shared_rows(frame, names, np.flatnonzero(labelled))
    if candidates.size > rows / 2:
        return None
    if not candidates.size:
        return []
    # Rows are grouped by their 64-bit feature hash: on a million rows a collision has a chance
    # of about 1 in 20 million, and could only add a group, never hide one.
    labels = pd.Series(_keys(frame[target].take(candidates)))
    per_group = labels.groupby(hashes).nunique()
    conflicted = per_group.index[per_group.to_numpy() > 1]
    count = int(np.isin(hashes, conflicted.to_numpy()).sum())
    share = count / rows
    if share <= limit:
        return []
    message = (
        f"{percent(share)} of rows ({count} of {rows}) have the same feature values as another row "
        f"but a different '{target}' ({len(conflicted)} groups), limit {percent(limit)} (schema.max_conflicting_fraction)"
    )
    observed = {"rows": count, "share": share, "groups": len(conflicted)}
    return [Failure("conflicting_labels", target, message, observed, limit)]


def leakage_failures(frame: pd.DataFrame, columns: Sequence[ColumnSchema], config: Config) -> list[Failure]:
    """Flag features that alone predict the target almost perfectly (out-of-fold, on a sample)."""
    target, limit = config.data.target, config.schema.leakage_limit
    scores, rows, what = leakage_scores(frame, columns, target, config.data.task, config.schema.leakage_rows)
    failures = []
    for name, score in scores.items():
        if score >= limit:
            message = (
                f"column '{name}' alone predicts '{target}' with {what} {score:.4f} on {rows} sampled rows "
                f"(limit {limit:g}, schema.leakage_limit): a copy, or a consequence, of the target?"
            )
            failures.append(Failure("leakage", name, message, score, limit))
    return failures


def leakage_scores(
    frame: pd.DataFrame, columns: Sequence[ColumnSchema], target: str, task: str, sample: int
) -> tuple[dict[str, float], int, str]:
    """Return each feature's score predicting the target alone, out of fold; the rows scored; the score's name.

    ROC AUC (macro one-vs-rest for more classes) or R², of each feature's values encoded by the
    target's mean on the other fold, on up to ``sample`` labelled rows. Empty when the target has
    fewer than 20 labelled rows or a single value.
    """
    if target not in frame.columns or not columns:
        return {}, 0, ""
    labelled = np.flatnonzero(frame[target].notna().to_numpy())
    if labelled.size < 20:
        return {}, 0, ""
    rng = np.random.default_rng(SEED)
    if labelled.size > sample:
        labelled = np.sort(rng.choice(labelled, sample, replace=False))
    known = frame.iloc[labelled]
    if task == "regression":
        y = pd.to_numeric(known[target], errors="coerce").to_numpy(dtype=float)
        if not np.isfinite(y).all() or np.var(y) == 0:
            return {}, 0, ""
        outcome: np.ndarray = y[:, None]
        what = "R²"
    else:
        codes = _keys(known[target])
        classes = int(codes.max()) + 1
        if classes < 2:
            return {}, 0, ""
        if classes > 2 and classes * len(known) > OUTCOME_CELLS:  # the one-hot outcome must fit in memory
            keep = np.sort(rng.choice(len(known), OUTCOME_CELLS // classes, replace=False))
            known, codes = known.iloc[keep], codes[keep]
        if classes > 2:
            outcome = np.zeros((codes.size, classes))
            outcome[np.arange(codes.size), codes] = 1.0
        else:
            outcome = (codes == 1).astype(float)[:, None]
        what = "ROC AUC"
    fold = rng.permutation(len(known)) % 2
    scores = {}
    for column in columns:
        encoded = _out_of_fold(_groups(known[column.name], column, fold), fold, outcome)
        scores[column.name] = (
            _r2(outcome[:, 0], encoded[:, 0]) if task == "regression" else _macro_auc(outcome, encoded)
        )
    return scores, len(known), what


def _dominant(values: pd.Series, limit: float) -> tuple[object, float, bool]:
    """Return the most common value (nulls excluded), its share, and whether it is the only value.

    For numbers with ``limit`` >= 0.5 only the median can hold more than ``limit`` of the rows, so
    counting the median's rows decides exactly, in one pass (below that share, the share returned
    is the median's, a lower bound that cannot pass the limit).
    """
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(dtype=float)
        if limit >= PROBE_LIMIT and _varied(numbers):
            return numbers[0], 0.0, False  # provably not near-constant: the share is not needed
        if limit >= 0.5:
            middle = float(np.partition(numbers, numbers.size // 2)[numbers.size // 2])
            share = float(np.count_nonzero(numbers == middle)) / numbers.size
            return middle, share, share == 1.0
        ordered = np.sort(numbers)
        cuts = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
        runs = np.diff(np.concatenate(([0], cuts, [ordered.size])))
        longest = int(np.argmax(runs))
        start = 0 if longest == 0 else int(cuts[longest - 1])
        return ordered[start], float(runs[longest] / ordered.size), runs.size == 1
    counts = values.value_counts(sort=False)
    top = counts.idxmax()
    return top, float(counts.max() / counts.sum()), counts.size == 1


def _varied(numbers: np.ndarray) -> bool:
    """Return True when 64 seeded picks show the column cannot have one value over ``PROBE_LIMIT`` of rows.

    At least 16 picks off the picks' most common value: were one value over 99% of the rows, that
    would happen with a probability under 1e-17. Continuous columns settle here without a pass.
    """
    picks = numbers[np.random.default_rng(SEED).integers(0, numbers.size, PROBES)]
    _, counts = np.unique(picks, return_counts=True)
    return bool(PROBES - counts.max() >= PROBES // 4)


def _groups(values: pd.Series, column: ColumnSchema, fold: np.ndarray) -> np.ndarray:
    """Return a group id per row: quantile bin (from the first fold) for numerics, else the category."""
    if column.type == "numeric" and pd.api.types.is_numeric_dtype(values) and values.nunique() > NUMERIC_BINS:
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        fitted = numbers[(fold == 0) & ~np.isnan(numbers)]
        edges = (
            np.unique(np.quantile(fitted, np.linspace(0, 1, NUMERIC_BINS + 1)[1:-1]))
            if fitted.size
            else np.empty(0)
        )
        bins = np.searchsorted(edges, numbers, side="right")
        return np.where(np.isnan(numbers), -1, bins)
    return _keys(values)


def _out_of_fold(groups: np.ndarray, fold: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """Encode each row by its group's mean outcome on the other fold (a group that fold lacks: its mean)."""
    offset = groups.min()
    ids = groups - offset
    size = int(ids.max()) + 1
    encoded = np.empty_like(outcome, dtype=float)
    for side in (0, 1):
        fit, use = fold != side, fold == side
        prior = outcome[fit].mean(axis=0)
        counts = np.bincount(ids[fit], minlength=size).astype(float)
        for k in range(outcome.shape[1]):
            sums = np.bincount(ids[fit], weights=outcome[fit, k], minlength=size)
            means = np.divide(
                sums, counts, out=np.full(size, prior[k]), where=counts > 0
            )  # unseen: the prior
            encoded[use, k] = means[ids[use]]
    return encoded


def _auc(truth: np.ndarray, score: np.ndarray) -> float:
    """Return the ROC AUC of ``score`` for the 0/1 ``truth`` (rank form; ties count half)."""
    positives = int(truth.sum())
    negatives = truth.size - positives
    if positives == 0 or negatives == 0:
        return 0.5
    ranks = pd.Series(score).rank().to_numpy()
    return float((ranks[truth == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _macro_auc(outcome: np.ndarray, encoded: np.ndarray) -> float:
    """Return the ROC AUC (two classes: one column), else the mean one-vs-rest AUC over the classes."""
    if outcome.shape[1] == 1:
        return _auc(outcome[:, 0], encoded[:, 0])
    return float(np.mean([_auc(outcome[:, k], encoded[:, k]) for k in range(outcome.shape[1])]))


def _r2(truth: np.ndarray, predicted: np.ndarray) -> float:
    total = float(np.sum((truth - truth.mean()) ** 2))
    return 1.0 - float(np.sum((truth - predicted) ** 2)) / total if total else 0.0


def _keys(values: pd.Series) -> np.ndarray:
    """Return a code per row, equal for values with the same category key (-1 for a null)."""
    codes, uniques = pd.factorize(values)
    canonical, _ = pd.factorize(pd.Series([category_key(u) for u in uniques], dtype=object))
    lookup = np.append(np.asarray(canonical), -1)  # code -1 (null) stays -1
    return np.asarray(lookup[codes])


def _as_text(value: object) -> object:
    return value.strip() if isinstance(value, str) else value
