"""Which rows train and which are held out: a salted hash of each row's key, not the seed or the sample.

A row is held out when the hash of its key (the id columns, or every feature when there are
none) falls below ``test_fraction`` of the hash range. The rule (key, salt, fraction) is stored
with the model, so a later candidate can tell exactly which of its held-out rows a champion
trained on, and the same row lands on the same side for every model, seed and sample size.
Identical rows share a key and so a side: a duplicate never leaks from training into evaluation.

Quick CI training (``training.sample_rows``) samples the train side with the seed; the held-out
side is kept whole (up to ``MAX_HOLDOUT_ROWS``, by hash order, so it is stable as well). Scoring
rows costs little and no model of this table trained on them, so every one of them adds power to
the comparison with the champion: on a 7,000-row table 1,750 held-out rows rather than the 750 of
a 3,000-row sample.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from pandas.util import hash_array

from model.inputs import category_key
from model.records import SplitRule
from pipeline.config import Config
from pipeline.errors import DataError, first_line

# Held-out rows kept beside a sampled training side: 50,000 resolve a ROC AUC difference of about 0.002
# (core/power.py), and scoring, bootstrapping and smoke-testing them stays seconds. ``--full`` keeps all.
MAX_HOLDOUT_ROWS = 50_000
_MIX = np.uint64(0x9E3779B97F4A7C15)
_SCALE = float(2**64)
NULL_TEXT = "\x00null"


def split_rule(config: Config) -> SplitRule:
    """Return the configured rule: key = id columns (else the schema's features), salt, fraction."""
    key = config.data.id_columns or config.feature_columns
    return SplitRule(key=tuple(key), salt=config.training.split_salt, fraction=config.training.test_fraction)


def key_hash(frame: pd.DataFrame, rule: SplitRule, purpose: str = "side") -> np.ndarray:
    """Return a uint64 hash per row of its key columns, salted with the rule's salt and ``purpose``.

    Numbers (and booleans) hash by their float64 value, so ``1``, ``1.0`` and ``True`` agree and a
    column read with or without nulls gives each row the same hash; text hashes by its category key.
    """
    missing = [name for name in rule.key if name not in frame.columns]
    if missing:
        raise DataError(f"the split key needs column(s) {', '.join(missing)}, which the table lacks")
    digest = hashlib.sha256(f"{rule.salt}\x00{purpose}".encode()).digest()
    combined = np.full(len(frame), np.frombuffer(digest[:8], dtype=np.uint64)[0], dtype=np.uint64)
    for name in rule.key:
        combined = _finalize((combined * _MIX) ^ _column_hash(frame[name]))
    return combined


def _column_hash(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype=float, na_value=np.nan) + 0.0  # -0.0 becomes 0.0
        numbers[np.isnan(numbers)] = np.nan  # one bit pattern for every null
        return np.asarray(hash_array(numbers))
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):  # text: hash it as it is
        return np.asarray(hash_array(values.astype(object).where(values.notna(), NULL_TEXT).to_numpy()))
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = np.array([category_key(v) for v in uniques] + [NULL_TEXT], dtype=object)
    return np.asarray(hash_array(texts))[np.where(codes >= 0, codes, len(uniques))]


def _finalize(x: np.ndarray) -> np.ndarray:
    """Mix all 64 bits (splitmix64's finaliser), so the salt reaches every bit of the side decision."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        return np.asarray(x ^ (x >> np.uint64(31)))


def held_out(frame: pd.DataFrame, rule: SplitRule) -> np.ndarray:
    """Return a mask of the rows ``rule`` holds out."""
    return np.asarray(key_hash(frame, rule) / _SCALE < rule.fraction)


def split_frame(frame: pd.DataFrame, config: Config, sample_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(train, holdout)`` by the configured rule; ``sample_rows`` > 0 samples the train side.

    The train side is sampled with the seed to its share of ``sample_rows`` (stratified when
    configured). The held-out side is the table's whole held-out side, none of it trained on by
    any model of this rule: beside a sample, up to ``MAX_HOLDOUT_ROWS`` with the lowest order hash,
    so it is the same for every seed and sample size.
    """
    rule = split_rule(config)
    mask = held_out(frame, rule)
    train, holdout = frame.loc[~mask], frame.loc[mask]
    if sample_rows and sample_rows < len(frame):
        train_rows = max(1, round(sample_rows * (1 - rule.fraction)))
        train = sample_train(train, config, train_rows)
        if len(holdout) > MAX_HOLDOUT_ROWS:
            order = np.argsort(key_hash(holdout, rule, "order"), kind="stable")
            holdout = holdout.iloc[np.sort(order[:MAX_HOLDOUT_ROWS])]
    if len(holdout) == 0:
        raise DataError(
            f"no row of {len(frame)} falls on the held-out side (test_fraction {rule.fraction}); use more rows"
        )
    if config.data.task == "classification" and train[config.data.target].nunique() < 2:
        raise DataError(f"the training side of {len(train)} rows has a single class; use more rows")
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def sample_train(train: pd.DataFrame, config: Config, rows: int) -> pd.DataFrame:
    """Return ``rows`` rows of the train side drawn with the seed (stratified when configured)."""
    from sklearn.model_selection import train_test_split

    if rows >= len(train):
        return train
    stratify = stratify_by(train, config)
    try:
        sample, _ = train_test_split(
            train, train_size=rows, random_state=config.training.seed, stratify=stratify
        )
    except ValueError as exc:
        if stratify is None:
            raise DataError(
                f"cannot sample {rows} of {len(train)} training rows: {first_line(exc)}"
            ) from None
        sample, _ = train_test_split(train, train_size=rows, random_state=config.training.seed)
    return sample


def stratify_by(frame: pd.DataFrame, config: Config) -> pd.Series | None:
    """Return the target to stratify by (classification with ``training.stratify``), else None."""
    if config.data.task == "classification" and config.training.stratify:
        return frame[config.data.target]
    return None
