"""Data tests: expectations on the bundled ``data/churn.csv`` with the shipped config."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.config import Config, load_config
from pipeline.core.drift import against_reference
from pipeline.core.validation import validate_frame
from pipeline.io.tables import read_table
from tests.conftest import DEFAULT_CONFIG, REPO


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(DEFAULT_CONFIG)


@pytest.fixture(scope="module")
def churn(config: Config) -> pd.DataFrame:
    return read_table(REPO / config.data.path)


def test_bundled_table_passes_validation(churn: pd.DataFrame, config: Config) -> None:
    report = validate_frame(churn, config)

    assert report.passed, "bundled data fails its own schema: " + "; ".join(
        f.message for f in report.failures
    )
    assert report.rows == 4000, f"expected the 4000 generated rows, got {report.rows}"


def test_bundled_table_does_not_drift_from_its_reference(churn: pd.DataFrame, config: Config) -> None:
    assert config.drift.reference is not None, "the shipped config should set drift.reference"

    reference = read_table(REPO / config.drift.reference)
    report = against_reference(churn, reference, config.drift.reference, config)

    assert report.passed and report.drifted == (), f"bundled data drifts: {report.drifted}"
    assert report.missing == (), f"features missing from a side: {report.missing}"
    close = [f.feature for f in report.features if f.statistic is not None and f.statistic > f.limit / 2]
    assert not close, f"features uncomfortably close to their drift limit: {close}"
    assert report.label is not None and not report.label.drifted, report.label


def test_churn_rate_is_in_a_sane_band(churn: pd.DataFrame) -> None:
    rate = churn["churned"].mean()

    assert 0.15 <= rate <= 0.40, f"churn rate {rate:.1%} outside 15-40%: the signal or generator changed"


def test_ids_are_unique_and_rows_distinct(churn: pd.DataFrame) -> None:
    assert churn["customer_id"].is_unique, "customer_id must identify a row"
    assert not churn.drop(columns=["customer_id"]).duplicated().any(), "records repeat apart from their id"


def test_month_to_month_contracts_churn_more_than_two_year(churn: pd.DataFrame) -> None:
    rates = churn.groupby("contract")["churned"].mean()

    assert rates["month_to_month"] > rates["one_year"] > rates["two_year"], (
        f"contract signal lost: {rates.to_dict()}"
    )


def test_a_few_nulls_but_only_where_the_schema_allows(churn: pd.DataFrame, config: Config) -> None:
    nulls = churn.isna().mean()

    assert 0 < nulls["total_charges"] <= 0.05 and 0 < nulls["payment_method"] <= 0.05, nulls.to_dict()
    for column in config.schema.columns:
        if not column.nullable:
            assert nulls[column.name] == 0, f"non-nullable column '{column.name}' has nulls"


def test_total_charges_track_tenure_times_monthly(churn: pd.DataFrame) -> None:
    known = churn.dropna(subset=["total_charges"])
    expected = known["tenure_months"] * known["monthly_charges"]

    assert known["total_charges"].corr(expected) > 0.98, "total_charges lost its relation to tenure x monthly"
