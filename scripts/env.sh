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
