#!/usr/bin/env bash
# R CMD check of r-package/ in a temporary folder: builds the source package, then checks it with
# --no-manual (no LaTeX here) and --no-tests (scripts/test.sh runs the testthat suite itself, against the
# installed package; running it twice would double the suite's cost). Every help page's examples run.
# Vignettes are rendered by scripts/render_vignettes.sh (also run by scripts/test.sh), so the check skips
# them (--ignore-vignettes) instead of rendering them a second time.
# Prints R CMD check's status line; exits non-zero when the check has an ERROR or a WARNING.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/pydlr-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
LOG="${PYDLR_CHECK_LOG:-/tmp/pydlr-r-check.log}"

# The package built from a checkout carries inst/python-path (the set-up's interpreter), so the examples
# find the project's Python as the installed package does.
cd "$WORK"
R CMD build --no-build-vignettes --no-manual "$ROOT/r-package" >"$LOG" 2>&1 || { cat "$LOG"; echo "Status: build failed"; exit 1; }
tarball=$(ls pydlr_*.tar.gz)
# CRAN is not reachable here: skip the checks that ask it (package index, incoming feasibility).
_R_CHECK_FORCE_SUGGESTS_=false _R_CHECK_CRAN_INCOMING_REMOTE_=false \
  R CMD check --no-manual --no-tests --ignore-vignettes "$tarball" >>"$LOG" 2>&1
rc=$?
grep -E "^\* checking .*(NOTE|WARNING|ERROR)" -A8 "$LOG" | grep -v "^--$" || true
status=$(grep -E "^Status:" "$LOG" | tail -1)
echo "R CMD check: ${status:-Status: no status line (see $LOG)}"
[ "$rc" = 0 ] || exit 1
echo "$status" | grep -qE "ERROR|WARNING" && exit 1
[ -n "$status" ] || exit 1
exit 0
