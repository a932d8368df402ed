# Environment for pydlr's commands (sourced by scripts/*.sh).
# Allocator: keep glibc from returning big blocks to the OS and page-faulting them back (timings of large
# tensors otherwise swing 2-10x on these machines; see README "Performance").
export GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184}"
export PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv/bin:$PATH"
# OpenMP: threads sleep instead of spinning when they wait. On a busy 2-core machine spinning made every
# torch-based run 15-30x slower (measured in bench/bench_peers.py and bench/r_vs_python.R); the cost on an
# idle machine is small. libgomp reads it once at process start, so it must be set before R/Python start.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
