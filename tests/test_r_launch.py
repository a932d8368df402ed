"""scripts/r-launch: the R / Rscript wrappers that scripts/env.sh puts first on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRAPPER = os.path.join(ROOT, "scripts", "r-launch")


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R is not installed")
def test_wrappers_of_two_checkouts_reach_the_real_r(tmp_path):
    """With the environments of two checkouts sourced, each wrapper's folder is on PATH: the wrapper must skip
    both and run the real R, not exec the other wrapper in an endless loop."""
    other = tmp_path / "checkout" / "scripts" / "r-launch"
    shutil.copytree(WRAPPER, other, symlinks=True)
    path = os.pathsep.join([str(other), WRAPPER, os.environ["PATH"]])
    env = {**os.environ, "PATH": path, "PYDLR_R_TORCH_OPENMP": "0"}
    out = subprocess.run([str(other / "Rscript"), "-e", "cat(R.version$major)"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().isdigit()
