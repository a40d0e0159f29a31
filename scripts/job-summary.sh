#!/usr/bin/env bash
# Print the markdown job summary of a CI run: the job's real outcome first, then the report of the
# steps (from `dagger call artifacts`, which runs the same DAG and names every step's outcome), then
# the one command that reproduces the run on a laptop. A passing report is never shown on a red job.
#   bash scripts/job-summary.sh OUTCOME [REPORT]        # OUTCOME: success, failure or cancelled
# The reproduce command is built from the environment CI sets: REVISION, CHAMPION_IMAGE, REPOSITORY_URL.
set -euo pipefail
outcome=${1:?usage: job-summary.sh OUTCOME [REPORT]}
report=${2:-out/report.md}

if [ "$outcome" = success ]; then
  echo "**Job outcome: passed.**"
else
  echo "**Job outcome: FAILED** (the \`full pipeline\` step: its log ends with the failing step's output)."
fi
echo
if [ ! -f "$report" ]; then
  echo "No report: the pipeline stopped before the report step ran (see the log)."
elif [ "$outcome" != success ] && head -n 1 "$report" | grep -q 'PASSED'; then
  echo "Every step passed, yet the call failed outside them (publishing or the engine): see the log."
  echo "The steps' report is in the uploaded artefact."
else
  cat "$report"
fi
echo
echo "Reproduce this run on a laptop (a checkout of \`${REVISION:-HEAD}\`, a container engine and the Dagger CLI):"
echo
echo '```bash'
printf 'dagger call --registry-username="$USER" --registry-password=env://REGISTRY_TOKEN'
printf ' --signing-key=env://ML_CICD_SIGNING_KEY --repository=%q \\\n' "${REPOSITORY_URL:-}"
printf '  full-pipeline --source=. --revision=%q --champion-image=%q\n' \
  "${REVISION:-}" "${CHAMPION_IMAGE:-}"
echo '```'
