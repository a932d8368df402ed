"""The seed's worked example runs, exactly, from Python and from R (examples/seed_example.*)."""

import os
import re
import subprocess
import sys

from conftest import ROOT


def _run(cmd: list[str]) -> str:
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _check_seed_output(out: str) -> None:
    for shape, params in [("(None, 26, 26, 32)", "320"), ("(None, 13, 13, 32)", "0"),
                          ("(None, 11, 11, 64)", "18,496"), ("(None, 5, 5, 64)", "0"),
                          ("(None, 3, 3, 64)", "36,928")]:
        assert re.search(re.escape(shape) + r"\s*│\s*" + re.escape(params) + r"\s*│", out), shape
    assert "Total params: 55,744" in out
    assert "(None, 28, 28, 32)" in out
    assert "100 x 20 = 2000" in out
    assert len(re.findall(r"Epoch \d/3", out)) == 3


def test_seed_example_from_python():
    _check_seed_output(_run([sys.executable, os.path.join("examples", "seed_example.py")]))


def test_seed_example_from_r():
    _check_seed_output(_run(["Rscript", os.path.join("examples", "seed_example.R")]))
