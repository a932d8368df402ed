"""Every benchmark script answers --help with its usage and exit status 0, without running anything."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
PY_SCRIPTS = sorted(BENCH.glob("bench_*.py"))
R_SCRIPTS = sorted(p for p in BENCH.glob("*.R") if p.name != "usage.R")


@pytest.mark.parametrize("script", PY_SCRIPTS, ids=lambda p: p.name)
def test_python_benchmark_help(script: Path) -> None:
    out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage:" in out.stdout


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R is not installed")
@pytest.mark.parametrize("script", R_SCRIPTS, ids=lambda p: p.name)
def test_r_benchmark_help(script: Path) -> None:
    out = subprocess.run(["Rscript", str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    comments = [line for line in script.read_text().splitlines() if line.startswith("# ")]
    # The usage is the script's own header, and nothing after it: the benchmark did not start.
    assert out.stdout.splitlines()[0] == comments[0][2:]
    assert len(out.stdout) < 3000
