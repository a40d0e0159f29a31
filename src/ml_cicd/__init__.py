"""Portable CI/CD for a tabular scikit-learn model: the same containerised DAG on a laptop and in CI.

Every function runs the ``python -m pipeline`` command that the host runner runs for the
same step, so ``dagger call full-pipeline --source=.`` and
``python -m pipeline run --config ml-cicd.toml --out out`` execute one DAG.
"""

from .main import MlCicd as MlCicd
