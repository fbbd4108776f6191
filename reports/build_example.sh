#!/usr/bin/env bash
# Rebuild the example comparison report in reports/example/ from the shipped reference checkpoints.
#
#   bash reports/build_example.sh            # suites/reference.yaml (falls back to suites/smoke.yaml)
#   SUITE=suites/smoke.yaml bash reports/build_example.sh
#
# Runs the suite (resumable: a second call reuses clips and features in runs/), then writes
# reports/example/{index.html,summary.md,summary.csv,comparison.csv} from its results alone.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE="${SUITE:-suites/reference.yaml}"
if [[ ! -f "$SUITE" ]]; then
  echo "note: $SUITE not found, using suites/smoke.yaml" >&2
  SUITE=suites/smoke.yaml
fi
NAME="$(basename "$SUITE" .yaml)"
RUN="runs/$NAME"
OUT="reports/example"

# exit code 3 means some clips failed: they are listed in the report, so go on
rc=0; vdeval run "$SUITE" --out "$RUN" --no-report || rc=$?
if [[ $rc -ne 0 && $rc -ne 3 ]]; then exit "$rc"; fi
# BASELINE (a generator name) picks what the others are compared with; default: the suite's first
vdeval report "$RUN" -o "$OUT" ${BASELINE:+--baseline "$BASELINE"}
echo "example report: $OUT/index.html (from $SUITE)"
