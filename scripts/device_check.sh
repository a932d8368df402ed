#!/usr/bin/env bash
# pydlr's GPU check in one go, for a bare machine with a GPU, its own python3 and torch (no network):
#   1. builds the extension in place with the CUDA kernels (setup.py build_ext --inplace),
#   2. runs the CUDA tests (tests/test_native_cuda.py) and, with the GPU hidden, the CPU tests that check the
#      Python core on that machine's NumPy and torch,
#   3. runs the benchmarks (scripts/device_check.py) and writes device_check.json / device_check.md.
# Everything lands in --out DIR (default $OUT, else ./device_check_out), with the full log device_check.log.
# Each step has its own time limit and a failure does not stop the later steps.
#
#   scripts/device_check.sh [--out DIR] [--device cuda|cpu] [--quick] [--data FOLDER] [--no-build]
#                           [--sections conv,seed_cnn,...] [--cpu-tests "tests/test_x.py ..."]
#                           [--cuda-tests "more pytest arguments, e.g. -k graph"] [--keep-build]
# --keep-build: also leave the built extension, without debug sections, as DIR/pydlr_C.so.
# --device cpu --quick: tiny sizes on the CPU with the extension already built (CI: tests/test_device_check.py).
set -u -o pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT_DIR="${OUT:-device_check_out}"
DEVICE=""
QUICK=""
DATA=""
BUILD=1
SECTIONS=""
CPU_TESTS="tests/test_train_engine.py tests/test_io.py tests/test_cluster.py tests/test_data_pipeline.py tests/test_models.py tests/test_pretrained.py"
CUDA_TEST_ARGS=""
KEEP_BUILD=0
PY="${PYTHON:-python3}"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT_DIR="$2"; shift 2 ;;
    --device) DEVICE="$2"; shift 2 ;;
    --quick) QUICK="--quick"; shift ;;
    --data) DATA="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --sections) SECTIONS="$2"; shift 2 ;;
    --cpu-tests) CPU_TESTS="$2"; shift 2 ;;
    --cuda-tests) CUDA_TEST_ARGS="$2"; shift 2 ;;
    --keep-build) KEEP_BUILD=1; shift ;;
    *) echo "device_check.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
LOG="$OUT_DIR/device_check.log"
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec > >(tee -a "$LOG") 2>&1
stamp() { echo "[$(date -u +%H:%M:%S)] $*"; }

if [ -z "$DEVICE" ]; then
  DEVICE=$($PY -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
fi
stamp "device check: device=$DEVICE ${QUICK} out=$OUT_DIR python=$($PY -c 'import sys; print(sys.version.split()[0])')"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv

BUILD_LOG="$OUT_DIR/build.log"
if [ "$BUILD" = 0 ] && ! $PY -c 'import pydlr._C' 2>/dev/null; then
  stamp "--no-build, but pydlr._C does not import here: building"
  BUILD=1
fi
if [ "$BUILD" = 1 ]; then
  # One target (the GPU present) keeps nvcc's time down; MAX_JOBS: the machine's cores.
  if [ "$DEVICE" = cuda ] && [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then
    export TORCH_CUDA_ARCH_LIST=$($PY -c 'import torch; p = torch.cuda.get_device_capability(); print(f"{p[0]}.{p[1]}")')
  fi
  export MAX_JOBS="${MAX_JOBS:-$(nproc)}"
  stamp "build: setup.py build_ext --inplace (MAX_JOBS=$MAX_JOBS, TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-})"
  start=$SECONDS
  timeout 420 $PY setup.py build_ext --inplace >"$BUILD_LOG" 2>&1
  rc=$?
  grep -E "error|Error|warning: .*conv_cuda" "$BUILD_LOG" | grep -v "Werror\|-Wno" | head -30
  echo "build exit $rc in $((SECONDS - start)) s" | tee -a "$BUILD_LOG"
  stamp "build exit $rc"
  if [ "$rc" != 0 ] && [ "$DEVICE" = cuda ]; then  # without the CUDA kernels the rest can still run
    stamp "CUDA build failed: building the CPU-only extension (PYDLR_NO_CUDA=1)"
    PYDLR_NO_CUDA=1 timeout 300 $PY setup.py build_ext --inplace >>"$BUILD_LOG" 2>&1
    echo "CPU-only build exit $?" | tee -a "$BUILD_LOG"
  fi
  if [ "$rc" = 0 ] && [ "$KEEP_BUILD" = 1 ]; then  # a copy without debug sections, to carry to a later run
    strip --strip-debug -o "$OUT_DIR/pydlr_C.so" pydlr/_C*.so && ls -la "$OUT_DIR/pydlr_C.so"
  fi
else
  echo "build skipped (--no-build)" >"$BUILD_LOG"
fi
$PY -c 'from pydlr import ops; print("pydlr build:", ops.build_info())' || stamp "pydlr does not import"

JUNIT=()
CPU_PID=""
if [ "$DEVICE" = cuda ] && [ -n "$CPU_TESTS" ]; then
  # The Python core on this machine's NumPy and torch, GPU hidden (those tests assume the CPU: bit-identical
  # results, default device "auto"), on 8 cores beside the CUDA tests (correctness only: no timing runs then).
  stamp "CPU tests (background) on this machine's NumPy/torch: $CPU_TESTS"
  XDIST=$($PY -c 'import xdist' 2>/dev/null && echo "-n 8")
  (CUDA_VISIBLE_DEVICES="" timeout 200 $PY -m pytest -q -p no:cacheprovider $XDIST $CPU_TESTS \
    --junitxml="$OUT_DIR/junit_cpu.xml" >"$OUT_DIR/cpu_tests.txt" 2>&1; echo "CPU tests exit $?" >>"$OUT_DIR/cpu_tests.txt") &
  CPU_PID=$!
  JUNIT+=(--junit "cpu=$OUT_DIR/junit_cpu.xml")
fi
if [ "$DEVICE" = cuda ]; then
  stamp "CUDA tests"
  timeout 240 $PY -m pytest -q -rs -p no:cacheprovider tests/test_native_cuda.py $CUDA_TEST_ARGS \
    --junitxml="$OUT_DIR/junit_cuda.xml" 2>&1 | tail -60
  stamp "CUDA tests exit $?"
  JUNIT+=(--junit "cuda=$OUT_DIR/junit_cuda.xml")
fi
if [ -n "$CPU_PID" ]; then
  wait "$CPU_PID"
  tail -15 "$OUT_DIR/cpu_tests.txt"
  rm -f "$OUT_DIR/cpu_tests.txt"
fi

SEC_ARGS=()
[ -n "$SECTIONS" ] && SEC_ARGS+=(--sections "$SECTIONS")
[ -n "$DATA" ] && SEC_ARGS+=(--data "$DATA")
stamp "benchmarks"
timeout 400 $PY scripts/device_check.py --out "$OUT_DIR" --device "$DEVICE" $QUICK --build-log "$BUILD_LOG" \
  "${JUNIT[@]}" "${SEC_ARGS[@]}"
bench_rc=$?
stamp "benchmarks exit $bench_rc"
stamp "done: $OUT_DIR/device_check.md"
exit $bench_rc
