#!/usr/bin/env bash
# README command 2: set everything up, then run every test (lint, Python + native + mixed R/Python, R,
# R CMD check, the vignettes, the sanitizer run).
# Exits non-zero on any failure and ends with one line "N passed, N failed".
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh || exit 1
source scripts/env.sh

status=0
echo "== ruff"
.venv/bin/ruff check pydlr tests bench examples || status=1

echo "== pytest (Python, native, mixed R/Python)"
.venv/bin/python -m pytest -p no:cacheprovider --junitxml=/tmp/pydlr-pytest.xml tests 2>&1 | tee /tmp/pydlr-pytest.log
py_rc=${PIPESTATUS[0]}
[ "$py_rc" = 0 ] || status=1

echo "== testthat (R package)"
Rscript scripts/run_r_tests.R --results /tmp/pydlr-testthat.json 2>&1 | tee /tmp/pydlr-testthat.log
r_rc=${PIPESTATUS[0]}
[ "$r_rc" = 0 ] || status=1

# R CMD check (examples of every help page; tests run above, so --no-tests) and the vignettes rendered to
# HTML: each counts as one test passed or failed. About 2 + 1.5 minutes on 2 cores.
echo "== R CMD check (r-package)"
extra_passed=0; extra_failed=0
if bash scripts/r_check.sh; then extra_passed=$((extra_passed + 1)); else extra_failed=$((extra_failed + 1)); fi
# docs/reliability.md against this run: fails when an export has no row or a bad-input row's test failed
# (`--results ... --write` records the run's passing count in the page).
echo "== reliability table (docs/reliability.md)"
if .venv/bin/python scripts/reliability_table.py --check --results /tmp/pydlr-pytest.xml /tmp/pydlr-testthat.json; then
  extra_passed=$((extra_passed + 1)); else extra_failed=$((extra_failed + 1)); fi
echo "== vignettes (rendered to HTML)"
if bash scripts/render_vignettes.sh; then extra_passed=$((extra_passed + 1)); else extra_failed=$((extra_failed + 1)); fi
# The C and C++ code rebuilt with AddressSanitizer + UndefinedBehaviorSanitizer in build/asan/, and the native,
# bridge and mixed R/Python tests run on it: one test passed or failed (builds cached; see the script).
echo "== sanitizers (ASan + UBSan)"
if bash scripts/sanitize.sh; then extra_passed=$((extra_passed + 1)); else extra_failed=$((extra_failed + 1)); fi

count() { grep -oE "[0-9]+ $1" "$2" | tail -1 | grep -oE '^[0-9]+' || echo 0; }
passed=$(( $(count passed /tmp/pydlr-pytest.log) + $(count 'R-passed' /tmp/pydlr-testthat.log) + extra_passed ))
failed=$(( $(count failed /tmp/pydlr-pytest.log) + $(count error /tmp/pydlr-pytest.log) + $(count 'R-failed' /tmp/pydlr-testthat.log) + extra_failed ))
[ "$failed" = 0 ] || status=1
echo "$passed passed, $failed failed"
exit $status
