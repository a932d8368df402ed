"""Keras-style scripts (tests/keras_examples/, written for this project in keras.io's style) run with only
``import pydlr as keras``, each in a fresh directory, and print the values checked here."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

EXAMPLES = Path(ROOT) / "tests" / "keras_examples"


def _run(script: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(EXAMPLES / script)], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _value(out: str, label: str) -> str:
    found = re.search(re.escape(label) + r"\s*(.+)", out)
    assert found, f"{label!r} not printed:\n{out[-2000:]}"
    return found.group(1).strip()


def test_examples_use_only_pydlr_as_keras():
    for script in EXAMPLES.glob("*.py"):
        imports = [line for line in script.read_text().splitlines() if re.match(r"(import|from) ", line)]
        assert sorted(imports) == ["import numpy as np", "import pydlr as keras"], script.name


def test_convnet_save_and_reload(tmp_path: Path):
    out = _run("convnet_save_and_reload.py", tmp_path)
    assert float(_value(out, "Test accuracy:")) > 0.4  # one epoch on 600 images; chance is 0.1
    for label in ("Reloaded model gives the same predictions:", "Weights file restores the predictions:",
                  "set_weights(get_weights()) restores the predictions:", "keras.saving round trip:"):
        assert _value(out, label) == "True", label
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fashion_convnet.keras", "fashion_convnet.weights.safetensors", "fashion_convnet_again.keras"]


def test_callbacks_and_schedules(tmp_path: Path):
    out = _run("callbacks_and_schedules.py", tmp_path)
    assert len(re.findall(r"Epoch \d/2", out)) == 2
    assert _value(out, "Steps trained:") == "36"  # 540 training images (validation_split=0.1) / 30, twice
    assert _value(out, "Peak learning rate:") == "0.01 at step 5"  # the end of the warmup
    last = 0.01 * 0.5 * (1 + math.cos(math.pi * 30 / 40))  # step 35: 30 of 40 decay steps done
    assert float(_value(out, "Last learning rate:")) == round(last, 6)
    assert float(_value(out, "Test accuracy:")) > 0.2
    assert "Epoch 2: LearningRateScheduler setting learning rate to 0.001" in out
    assert float(_value(out, "Learning rate after the per-epoch schedule:")) == 0.001
