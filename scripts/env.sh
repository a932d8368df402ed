# Environment for pydlr's commands (sourced by scripts/*.sh).
# Allocator: keep glibc from returning big blocks to the OS and page-faulting them back (timings of large
# tensors otherwise swing 2-10x on these machines; see README "Performance").
export GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184}"
export PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv/bin:$PATH"
# OpenMP: threads spin briefly (10,000 iterations, tens of microseconds) before they sleep. That covers the
# gaps between the back-to-back parallel regions of a training step, while threads that wait longer give
# their core back. Measured (bench/bench_step.py, idle machine): PASSIVE (sleep at once) 17-18 ms a step,
# 10,000 spins 11.4-12.0, libgomp's default 300,000 the same; on a busy machine long spinning made torch
# runs 15-30x slower (docs/performance.md). libgomp reads it at process start: set before R/Python start.
export GOMP_SPINCOUNT="${GOMP_SPINCOUNT:-10000}"
# OpenMP runtime of R: libR links the system libgomp.so.1, and torch's wheel bundles its own copy under the same
# soname, so inside R torch runs on the one R loaded first (a process holds one libgomp.so.1, and it cannot be
# swapped once R has started). R and Rscript started from this environment (scripts/r-launch, first on PATH)
# preload torch's copy instead, the runtime torch runs on in Python (docs/r-speed.md, "OpenMP runtime and
# threads": conv and GEMM 2-4% faster inside R, measured). The Python processes R starts inherit it: the same
# file torch loads there anyway. Not when LD_PRELOAD is already set or with PYDLR_R_TORCH_OPENMP=0.
_pydlr_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_pydlr_torch_gomp="$(ls "$_pydlr_root"/.venv/lib/python3*/site-packages/torch/lib/libgomp.so.1 2>/dev/null | head -n 1)"
if [ -n "$_pydlr_torch_gomp" ]; then
  export PYDLR_TORCH_LIBGOMP="$_pydlr_torch_gomp"
  case ":$PATH:" in *":$_pydlr_root/scripts/r-launch:"*) ;; *) export PATH="$_pydlr_root/scripts/r-launch:$PATH" ;; esac
fi
unset _pydlr_root _pydlr_torch_gomp
