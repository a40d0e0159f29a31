#!/usr/bin/env bash
# Set up .venv (scripts/setup.sh) and run the test suite; arguments go to pytest.
#   bash scripts/test.sh                                # the whole suite: slow and docker tests too
#                                                       # (docker tests skip with a reason when no
#                                                       # engine answers, dagger tests without a CLI)
#   bash scripts/test.sh -m "not slow and not docker"   # the quick suite
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
