#!/usr/bin/env bash
# Create .venv from the pinned requirements with Python 3.13, the Python of every image (README,
# "Python version"); a no-op when the requirements and the interpreter have not changed.
#   bash scripts/setup.sh                        # python3.13 on PATH, else pyenv's 3.13, else python3
#   PYTHON=/path/to/python3.13 bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

MINOR=3.13
is_minor() { "$1" -c "import sys; sys.exit(\"%d.%d\" % sys.version_info[:2] != \"$MINOR\")" >/dev/null 2>&1; }
if [ -z "${PYTHON:-}" ]; then
  for candidate in "python$MINOR" "$(pyenv prefix "$MINOR" 2>/dev/null || true)/bin/python$MINOR" python3; do
    if is_minor "$candidate"; then PYTHON=$candidate; break; fi
  done
  if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    echo "warning: no Python $MINOR found; using $("$PYTHON" --version 2>&1), which the images do not run" >&2
  fi
fi
stamp=.venv/.requirements.sha256
want=$( (cat requirements-serve-common.txt requirements-serve.txt requirements-serve-sklearn.txt \
  requirements.txt requirements-dev.txt; "$PYTHON" -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "setting up .venv with $("$PYTHON" --version 2>&1) from requirements-dev.txt (pinned)..." >&2
rm -rf .venv
"$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
echo "$want" > "$stamp"
echo "ready: .venv/bin/python -m pipeline --help" >&2
