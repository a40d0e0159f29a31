"""Which rows train and which are held out: a seeded sample, then a seeded (stratified) split."""

from __future__ import annotations

import pandas as pd

from pipeline.config import Config
from pipeline.errors import DataError, first_line


def sample_frame(frame: pd.DataFrame, config: Config, rows: int) -> pd.DataFrame:
    """Return ``rows`` rows drawn with the seed (stratified when configured); all rows when 0 or more."""
    from sklearn.model_selection import train_test_split

    if rows == 0 or rows >= len(frame):
        return frame
    try:
        sample, _ = train_test_split(
            frame, train_size=rows, random_state=config.training.seed, stratify=stratify_by(frame, config)
        )
    except ValueError as exc:
        raise DataError(f"cannot sample {rows} of {len(frame)} rows: {first_line(exc)}") from None
    return sample.reset_index(drop=True)


def split_frame(frame: pd.DataFrame, config: Config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(train, holdout)`` split with the configured fraction, seed and stratification."""
    from sklearn.model_selection import train_test_split

    try:
        train, holdout = train_test_split(
            frame,
            test_size=config.training.test_fraction,
            random_state=config.training.seed,
            stratify=stratify_by(frame, config),
            shuffle=True,
        )
    except ValueError as exc:
        raise DataError(
            f"cannot hold out {config.training.test_fraction} of {len(frame)} rows: {first_line(exc)}"
        ) from None
    if config.data.task == "classification" and train[config.data.target].nunique() < 2:
        raise DataError(f"the training split of {len(train)} rows has a single class; use more rows")
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def stratify_by(frame: pd.DataFrame, config: Config) -> pd.Series | None:
    """Return the target to stratify by (classification with ``training.stratify``), else None."""
    if config.data.task == "classification" and config.training.stratify:
        return frame[config.data.target]
    return None
