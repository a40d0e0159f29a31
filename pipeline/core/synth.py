"""Seeded generator of the bundled customer-churn table (and of bigger tables for benchmarks).

Churn is driven by contract type, tenure, monthly charges, support calls and fiber
internet, plus noise: learnable, never perfect. ``region`` carries no signal.
``python -m pipeline synth --rows 4000 --seed 7 --out data/churn.csv`` wrote ``data/churn.csv``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CONTRACTS = ("month_to_month", "one_year", "two_year")


INTERNET = ("dsl", "fiber", "none")


PAYMENTS = ("card", "bank_transfer", "electronic_check", "mailed_check")


REGIONS = ("north", "south", "east", "west")


def churn_frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Return a churn table of ``rows`` rows; ``shift`` > 0 moves charges and tenure (drift)."""
    rng = np.random.default_rng(seed)
    contract = rng.choice(CONTRACTS, size=rows, p=(0.55, 0.25, 0.20))
    internet = rng.choice(INTERNET, size=rows, p=(0.35, 0.45, 0.20))
    tenure = np.clip(rng.gamma(2.0, 14.0, size=rows) * (1 + shift), 0, 72).round()
    base_charge = np.where(internet == "fiber", 85.0, np.where(internet == "dsl", 55.0, 25.0))
    monthly = np.clip(base_charge + rng.normal(0, 12, size=rows) + 20 * shift, 18, 130).round(2)
    total = (monthly * tenure + rng.normal(0, 30, size=rows)).clip(0).round(2)
    calls = rng.poisson(1.2 + 0.8 * (contract == "month_to_month"), size=rows).clip(0, 10)
    partner = rng.random(rows) < 0.48
    logit = (
        -1.9
        + 1.6 * (contract == "month_to_month")
        - 0.9 * (contract == "two_year")
        - 0.045 * tenure
        + 0.022 * (monthly - 65)
        + 0.38 * calls
        + 0.45 * (internet == "fiber")
        - 0.3 * partner
        + rng.normal(0, 0.6, size=rows)
    )
    churned = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{seed:03d}-{i:06d}" for i in range(rows)],
            "tenure_months": tenure.astype(int),
            "monthly_charges": monthly,
            "total_charges": total,
            "contract": contract,
            "internet_service": internet,
            "payment_method": rng.choice(PAYMENTS, size=rows),
            "support_calls": calls.astype(int),
            "has_partner": partner,
            "region": rng.choice(REGIONS, size=rows),
            "churned": churned,
        }
    )
    frame.loc[rng.random(rows) < 0.01, "total_charges"] = np.nan
    frame.loc[rng.random(rows) < 0.005, "payment_method"] = None
    return frame
