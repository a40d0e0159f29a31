"""The names of the validation checks, in report order: light to import (no pandas).

``pipeline/core/validation.py`` runs them; the config check in ``pipeline/commands/options.py``
refuses a ``schema.skip_checks`` entry that is not one of them before any work (and before
pandas is imported, which a cached ``run`` never needs).
"""

from __future__ import annotations

# The first failure found is the one the error line names.
CHECKS = (
    "min_rows",
    "required_columns",
    "unexpected_columns",
    "target",
    "labels",
    "class_balance",
    "type",
    "range",
    "allowed",
    "nulls",
    "infinite",
    "constant",
    "category_variants",
    "mixed_types",
    "id_like",
    "conflicting_labels",
    "leakage",
    "duplicates",
)
