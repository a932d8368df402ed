#!/usr/bin/env bash
# The C and C++ code under AddressSanitizer + UndefinedBehaviorSanitizer: builds the native extension
# (native/) and the R package's bridge (r-package/src) with -fsanitize=address,undefined into build/asan/,
# never over the normal builds (Python loads the extension through PYDLR_NATIVE_LIB, R the package through
# R_LIBS), then runs the native-operator, bridge and mixed R/Python tests with them.
# Any sanitizer report fails the run (UBSan halts on the first error; ASan always does).
#
# Usage: bash scripts/sanitize.sh            (after scripts/setup.sh; scripts/test.sh runs it)
# What runs (a focused subset, to stay within ~6 minutes on 2 cores once the builds are cached):
#   pytest tests/test_ops.py tests/test_ops_pool.py tests/test_ops_fused.py tests/test_ops_batchnorm.py
#          tests/test_ops_bn_depthwise.py tests/test_conv_pool_bf16.py tests/test_bridge.py
#          tests/test_bridge_malformed.py tests/test_properties.py (native operators on random geometry)
#   testthat test-bridge.R, test-bridge-memory.R, test-bridge-malformed.R: R driving Python through
#          reticulate in one process, the sanitized bridge and the sanitized native operators together
# Not run: the tests that embed R in Python through rpy2 (test_bridge_mixed.py, test_bridge_rpy2.py, the
# "through_r" properties). rpy2's embedded R crashes at start-up under the preloaded ASan runtime before any
# pydlr code runs (R 4.2, rpy2 3.5.17: `import rpy2.robjects as ro; ro.r("1+1")` alone does).
# The builds are cached in build/asan/ by a hash of their sources: a cold build of native/ takes several
# minutes on 2 cores (torch's headers), the R package about one.
# Python and R are not built with the sanitizers (the runtime is preloaded) and keep memory until exit by
# design, so leak detection is off; everything else ASan checks stays on.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/env.sh
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || PY="$(cat r-package/inst/python-path 2>/dev/null || command -v python3)"
OUT="$ROOT/build/asan"
mkdir -p "$OUT"
SAN="-fsanitize=address,undefined -fno-omit-frame-pointer"
LIBASAN="$(gcc -print-file-name=libasan.so)"
[ -f "$LIBASAN" ] || { echo "sanitize: libasan.so not found (gcc -print-file-name=libasan.so)"; exit 1; }
log() { printf '[sanitize %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
hash_tree() { find "$@" -type f ! -name '*.o' ! -name '*.so' -print0 | sort -z | xargs -0 cat | sha256sum | cut -c1-32; }

# --- native/ -> build/asan/lib/pydlr/_C*.so (loaded through PYDLR_NATIVE_LIB) -------------------------
h=$( (hash_tree native setup.py; echo "$SAN") | sha256sum | cut -c1-32)
if [ "$(cat "$OUT/native.stamp" 2>/dev/null)" != "$h" ] || ! ls "$OUT"/lib/pydlr/_C*.so >/dev/null 2>&1; then
  log "building native/ with $SAN (several minutes cold)"
  PYDLR_NO_CUDA=1 MAX_JOBS="${MAX_JOBS:-2}" PYDLR_EXTRA_CFLAGS="$SAN -g1 -O1" \
    "$PY" setup.py -q build_ext --build-lib "$OUT/lib" --build-temp "$OUT/tmp" >"$OUT/native-build.log" 2>&1 \
    || { tail -30 "$OUT/native-build.log"; exit 1; }
  echo "$h" >"$OUT/native.stamp"
fi

# --- r-package/src -> build/asan/rlib ----------------------------------------------------------------
h=$( (hash_tree r-package; echo "$SAN") | sha256sum | cut -c1-32)
if [ "$(cat "$OUT/rpkg.stamp" 2>/dev/null)" != "$h" ] || [ ! -d "$OUT/rlib/pydlr" ]; then
  log "building the R package with $SAN"
  mkdir -p "$OUT/rlib"
  printf 'CFLAGS = -g -O1 %s\nLDFLAGS = %s\n' "$SAN" "$SAN" >"$OUT/Makevars"
  mkdir -p r-package/inst && printf '%s\n' "$PY" >r-package/inst/python-path
  # --preclean: object files an ordinary install left in r-package/src must not be linked in instead
  R_MAKEVARS_USER="$OUT/Makevars" R CMD INSTALL --preclean --clean --no-multiarch --no-test-load --no-docs \
    --library="$OUT/rlib" r-package >"$OUT/rpkg-build.log" 2>&1 || { tail -30 "$OUT/rpkg-build.log"; exit 1; }
  echo "$h" >"$OUT/rpkg.stamp"
fi

# --- the tests, with the sanitizer runtime preloaded ---------------------------------------------------
# libstdc++ is preloaded too: Python and R do not link it, and ASan's interceptor of C++ throws needs it
# resolved at start-up (else the first exception torch throws, e.g. for a bad argument, aborts the process).
export LD_PRELOAD="$LIBASAN $(gcc -print-file-name=libstdc++.so)"
# Reports go to files (pytest captures the tests' stderr, and a process that halts takes it with it).
rm -rf "$OUT/reports" && mkdir -p "$OUT/reports"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:detect_odr_violation=0:log_path=$OUT/reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$OUT/reports/ubsan"
# The sanitizer runtime refuses libraries opened with RTLD_DEEPBIND, which the R package uses for torch's
# import (to keep R's BLAS out of torch's products): off here, at the cost of speed only.
export PYDLR_DEEPBIND=0
# Blocks kept for reuse by pydlr's CPU caching allocator are never freed, so AddressSanitizer would not see a
# use after free of them: torch's own allocator under the sanitizers.
export PYDLR_CPU_CACHE_MB=0
PYDLR_NATIVE_LIB="$(ls "$OUT"/lib/pydlr/_C*.so)"
export PYDLR_NATIVE_LIB
export R_LIBS="$OUT/rlib${R_LIBS:+:$R_LIBS}"
status=0
# The sanitized builds are instrumented and are the ones loaded (else a clean run would mean nothing).
for so in "$PYDLR_NATIVE_LIB" "$OUT/rlib/pydlr/libs/pydlr.so"; do
  # grep reads all of nm's output (grep -q would exit at the first match, and under pipefail nm's SIGPIPE
  # then fails the check on a large library)
  nm -D "$so" | grep __asan_report >/dev/null || { echo "sanitize: $so is not built with AddressSanitizer"; exit 1; }
done
"$PY" -c "import pydlr.ops as o, sys; sys.exit(0 if '/build/asan/' in o._C.__file__ else 'not the sanitized _C: ' + o._C.__file__)" || exit 1
Rscript -e 'library(pydlr); p <- getLoadedDLLs()[["pydlr"]][["path"]]; if (!grepl("/build/asan/", p)) stop("not the sanitized R package: ", p)' \
  >/dev/null || exit 1

log "pytest (native operators, bridge, mixed R/Python)"
"$PY" -m pytest -p no:cacheprovider -q -x tests/test_ops.py tests/test_ops_pool.py tests/test_ops_fused.py tests/test_ops_batchnorm.py \
  tests/test_ops_bn_depthwise.py tests/test_ops_convert.py tests/test_ops_cpu_cache.py tests/test_conv_pool_bf16.py \
  tests/test_bridge.py \
  tests/test_bridge_malformed.py tests/test_properties.py -k "not through_r and not models_train_the_same" \
  2>&1 | tee "$OUT/pytest.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

log "testthat (bridge)"
Rscript -e '
files <- file.path("r-package/tests/testthat", c("test-bridge.R", "test-bridge-memory.R", "test-bridge-malformed.R"))
failed <- 0
for (f in files[file.exists(files)]) {
  df <- as.data.frame(testthat::test_file(f, package = "pydlr", load_package = "installed",
                                          reporter = "summary"))
  failed <- failed + sum(df$failed) + sum(df$error)
}
quit(status = if (failed > 0) 1L else 0L)' 2>&1 | tee "$OUT/testthat.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

# Any report fails the run, also one from a child process that a test tolerated.
if [ -n "$(ls -A "$OUT/reports")" ]; then
  log "sanitizer reports (in $OUT/reports):"
  for f in "$OUT"/reports/*; do echo "--- $f"; head -40 "$f"; done
  status=1
fi
[ "$status" = 0 ] && log "clean" || log "FAILED"
exit $status
