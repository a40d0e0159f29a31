"""The names of the validation checks, in report order: light to import (no pandas).

Each name is one entry of ``REGISTRY`` in ``pipeline/core/validation.py`` (what it applies to,
its run function), in this order (a test holds the two equal); ``schema.skip_checks`` may name
any of them. The config check in ``pipeline/commands/options.py`` refuses a ``schema.skip_checks``
entry that is not one of them before any work (and before pandas is imported, which a cached
``run`` never needs).
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
