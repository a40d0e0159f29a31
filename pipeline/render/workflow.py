"""The GitHub Actions workflow ``init`` writes into a team's repository: one call of the remote ml-cicd module.

The action pins and the Dagger CLI version are this repository's own workflows' (a test holds them
equal to ``.github/workflows/ci.yml``); the module is pinned to a released version (a tag or commit).
"""

from __future__ import annotations

import json

CHECKOUT = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1"
DAGGER_ACTION = "dagger/dagger-for-github@27b130bf0f79a7f6fbbbe0fbca6760dc9bb40a77 # v8.4.1"
DAGGER_VERSION = "0.21.11"
WORKFLOW = ".github/workflows/ml-cicd.yml"


def workflow_yaml(module: str, config: str, version: str) -> str:
    """Return the workflow that runs ml-cicd ``version`` (``module``, with its @ref) on ``config``."""
    call = f"--config={config} full-pipeline --source=. --revision=$GITHUB_SHA"
    return f"""# ml-cicd {version}: lint, tests, data checks, training, quality gates, the serving image and its
# smoke test, on every push and pull request. Written by `ml-cicd init`; the pipeline itself is the
# remote Dagger module below, pinned to a release: nothing of ml-cicd is copied into this repository.
# Reproduce a run on a laptop with the same call:
#   dagger call -m {module} {call.replace("$GITHUB_SHA", "$(git rev-parse HEAD)")}
name: ml-cicd

on:
  push:
    branches: [main]
  pull_request:

permissions:
  contents: read

jobs:
  pipeline:
    name: ml-cicd pipeline
    runs-on: ubuntu-latest
    timeout-minutes: 60
    steps:
      - uses: {CHECKOUT}
        with:
          persist-credentials: false
      - uses: {DAGGER_ACTION}
        with:
          version: {json.dumps(DAGGER_VERSION)}
          module: {json.dumps(module)}
          call: {json.dumps(call)}
"""
