"""Guard: torch's GEMM called from R through pydlr is not slower than from Python (same venv, same run).

Without pydlr's process set-up (r-package/R/config.R), a 1024x1024 torch.mm inside R runs on R's reference
BLAS, ~26x slower than in Python. Both sides run as persistent subprocesses and are timed in alternating
rounds, so load from other processes hits both alike; the test fails when R's median is > 1.5x Python's.
The 1.05x target itself lives in bench/r_vs_python.R.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.r

SIZE = 1024
WARMUP, ROUNDS, REPS = 2, 4, 3
LIMIT = 1.5

R_WORKER = f"""
suppressPackageStartupMessages(library(pydlr))
invisible(pydlr:::.pydlr_py())
torch <- reticulate::import("torch", convert = FALSE)
invisible(torch$manual_seed(0L))
a <- torch$randn({SIZE}L, {SIZE}L)
b <- torch$randn({SIZE}L, {SIZE}L)
con <- file("stdin")
open(con)
cat("ready", as.character(pydlr::pydlr_config(warn = FALSE)$gemm_own), "\\n")
repeat {{
  line <- readLines(con, n = 1L)
  if (!length(line) || line == "quit") break
  times <- vapply(seq_len(as.integer(line)), function(i) {{
    t0 <- Sys.time()
    torch$mm(a, b)
    as.double(Sys.time() - t0, units = "secs")
  }}, 0)
  cat(format(times, digits = 9), "\\n")
}}
"""

PY_WORKER = f"""
import sys, time, torch
torch.manual_seed(0)
a, b = torch.randn({SIZE}, {SIZE}), torch.randn({SIZE}, {SIZE})
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "quit":
        break
    times = []
    for _ in range(int(line)):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    print(" ".join(repr(t) for t in times), flush=True)
"""


class Worker:
    """A subprocess answering 'n' with n timings of torch.mm, one line each."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        self.ready = self._line().split()

    def _line(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.proc.args[:2]} ended: {self.proc.stderr.read()[-2000:]}")
        return line

    def time(self, n: int) -> list[float]:
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        return [float(v) for v in self._line().split()]

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            self.proc.kill()


def test_gemm_from_r_within_1_5x_of_python(tmp_path: Path):
    rscript = shutil.which("Rscript")
    assert rscript is not None, "Rscript not found: run scripts/setup.sh (it installs R)"
    (tmp_path / "r_worker.R").write_text(R_WORKER)
    (tmp_path / "py_worker.py").write_text(PY_WORKER)
    r = Worker([rscript, "--vanilla", str(tmp_path / "r_worker.R")])
    py = Worker([sys.executable, str(tmp_path / "py_worker.py")])
    try:
        assert r.ready[1] == "TRUE", "pydlr_config() says torch's GEMM is not torch's own inside R"
        r.time(WARMUP)
        py.time(WARMUP)
        r_times, py_times = [], []
        for _ in range(ROUNDS):  # alternate, so both see the same background load
            r_times += r.time(REPS)
            py_times += py.time(REPS)
    finally:
        r.close()
        py.close()
    ratio = statistics.median(r_times) / statistics.median(py_times)
    print(f"torch.mm {SIZE}^2: R {statistics.median(r_times) * 1e3:.1f} ms, "
          f"Python {statistics.median(py_times) * 1e3:.1f} ms, ratio {ratio:.2f}")
    assert ratio <= LIMIT, f"GEMM from R is {ratio:.2f}x Python's (limit {LIMIT}x): {r_times} vs {py_times}"
