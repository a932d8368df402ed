#!/usr/bin/env bash
# One set-up for everything pydlr needs on a Debian 12 machine (run as root, or with sudo available).
# Idempotent: each step keeps a stamp (a hash of its inputs) in .setup-stamps/ and is skipped when
# nothing it depends on changed, so a second run with nothing changed takes a few seconds.
#
#   1. Debian packages: R, the R packages named in ./DESCRIPTION (as r-cran-*), ninja, Fashion-MNIST.
#   2. .venv: Python dependencies with the pins that matter (see ../shared/NOTES.md, README "Pins").
#   3. pydlr itself, editable, with its native extension built against the venv's torch.
#   4. The R package pydlr into R's site library, wired to the venv's Python.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STAMPS="$ROOT/.setup-stamps"
mkdir -p "$STAMPS"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
export MAX_JOBS="${MAX_JOBS:-2}"

log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# stamp_ok NAME HASH: true when step NAME last succeeded with inputs hashing to HASH.
stamp_ok() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
stamp_set() { printf '%s' "$2" > "$STAMPS/$1"; }
hash_files() { cat "$@" 2>/dev/null | sha256sum | cut -c1-32; }
hash_tree() { find "$@" -type f ! -name '*.o' ! -name '*.so' ! -path '*/__pycache__/*' -print0 2>/dev/null |
  sort -z | xargs -0 cat 2>/dev/null | sha256sum | cut -c1-32; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- 1. Debian packages ----------------------------------------------------------------------
r_deps_from_description() {
  # Package names from Depends/Imports/Suggests of ./DESCRIPTION, minus R itself and base packages.
  awk '/^(Depends|Imports|Suggests):/{f=1; sub(/^[A-Za-z]+:/, "")} /^[A-Za-z]+:/ && !/^(Depends|Imports|Suggests):/{f=0} f' DESCRIPTION |
    tr ',' '\n' | sed -e 's/(.*)//' -e 's/[[:space:]]//g' | grep -v -E '^$|^R$' |
    grep -v -x -E 'utils|stats|graphics|grDevices|tools|methods|parallel|grid|splines' | sort -u
}

debian_packages() {
  # pandoc renders the vignettes (rmarkdown); chromium runs the live training view's browser test;
  # libpng-dev: the native batched PNG decoder of the image datasets (without it Pillow decodes every file);
  # libdeflate-dev: its faster inflater for plain PNGs (without it zlib inflates them, ~3 us a file more).
  echo r-base-core r-base-dev ninja-build dataset-fashion-mnist pandoc chromium libpng-dev libdeflate-dev
  for p in $(r_deps_from_description); do echo "r-cran-$(echo "$p" | tr '[:upper:]' '[:lower:]')"; done
}

step_debian() {
  local pkgs missing=()
  pkgs=$(debian_packages | tr '\n' ' ')
  for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -eq 0 ]; then log "Debian packages: all present"; return; fi
  log "Debian packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# --- 2. Python environment ---------------------------------------------------------------------
step_venv() {
  local h
  h=$(hash_files requirements.txt requirements-nodeps.txt pyproject.toml)
  if [ -x "$PY" ] && stamp_ok venv "$h"; then log "Python venv: up to date"; return; fi
  [ -x "$PY" ] || { log "Python venv: creating .venv"; python3 -m venv "$VENV"; }
  log "Python venv: installing pinned dependencies"
  # torch first and alone, pinned, so nothing later can resolve to another torch build.
  "$PY" -m pip install -q --disable-pip-version-check torch==2.13.0
  "$PY" -m pip install -q --disable-pip-version-check -r requirements.txt
  "$PY" -m pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
  stamp_set venv "$h"
}

# --- 3. pydlr with its native extension ---------------------------------------------------------
step_pydlr() {
  local h_meta h_native
  # The editable install puts the checkout on sys.path (setuptools' "compat" mode) rather than an import
  # hook: a hook comes after sys.path's own search, so a folder named pydlr/ in the working directory of
  # an R or Python session (an R package check, a parent folder of a checkout) shadowed the real package.
  h_meta=$( (cat pyproject.toml setup.py; echo editable_mode=compat) | sha256sum | cut -c1-32)
  h_native=$(hash_tree native setup.py)
  if ! stamp_ok pydlr-meta "$h_meta"; then
    log "pydlr: editable install (compiles native/, ~1-2 min the first time)"
    "$PY" -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps \
      --config-settings editable_mode=compat -e .
    stamp_set pydlr-meta "$h_meta"; stamp_set pydlr-native "$h_native"
  elif ! stamp_ok pydlr-native "$h_native" || ! ls pydlr/_C*.so >/dev/null 2>&1; then
    log "pydlr: rebuilding the native extension"
    "$PY" setup.py -q build_ext --inplace
    stamp_set pydlr-native "$h_native"
  else
    log "pydlr: up to date"
  fi
}

# --- 4. The R package ---------------------------------------------------------------------------
r_site_library() { Rscript -e 'cat(.Library.site[1])'; }

step_rpkg() {
  local h lib
  # The installed package finds the venv through this file (read by .onLoad), from any directory.
  mkdir -p r-package/inst
  printf '%s\n' "$PY" > r-package/inst/python-path
  h=$(hash_tree r-package)
  lib=$(r_site_library)
  # Also reinstall when the installed copy belongs to another checkout (it records that checkout's venv).
  if stamp_ok rpkg "$h" && [ "$(cat "$lib/pydlr/python-path" 2>/dev/null)" = "$PY" ]; then
    log "R package: up to date"; return
  fi
  log "R package: installing into $lib"
  as_root R CMD INSTALL --no-multiarch --no-test-load --library="$lib" r-package >"$STAMPS/rpkg.log" 2>&1 ||
    { cat "$STAMPS/rpkg.log"; exit 1; }
  stamp_set rpkg "$h"
}

if [ "${1:-}" = "--print-debian-packages" ]; then debian_packages; exit 0; fi

step_debian
step_venv
step_pydlr
step_rpkg
log "done"
