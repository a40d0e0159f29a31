#!/usr/bin/env bash
# Show that every pin in requirements-dev.txt (which includes the other two files) installs from
# wheels for the Python of the base image, on x86_64 and aarch64: a dry run, nothing is installed.
#   bash scripts/check-wheels.sh            # Python 3.13 (src/ml_cicd/spec.py PYTHON_VERSION)
#   bash scripts/check-wheels.sh 3.13
set -euo pipefail
cd "$(dirname "$0")/.."
python_version=${1:-3.13}
pip=${PIP:-.venv/bin/pip}
target=$(mktemp -d)
trap 'rm -rf "$target"' EXIT
pins=$(cat requirements*.txt | grep -cE '^[A-Za-z0-9_.-]+==')
for arch in x86_64 aarch64; do
  platforms=()
  for glibc in 2_17 2_27 2_28 2_34 2_36; do platforms+=(--platform "manylinux_${glibc}_${arch}"); done
  resolved=$("$pip" install --dry-run --quiet --report - --only-binary=:all: --python-version "$python_version" \
    --implementation cp "${platforms[@]}" --target "$target" -r requirements-dev.txt \
    2> >(grep -v "is ignored: it is neither" >&2) \
    | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["install"]))')
  echo "cp${python_version/./} $arch: $resolved packages resolve as wheels (requirements*.txt pin $pins lines)"
done
