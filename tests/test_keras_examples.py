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


def test_multi_input_multi_output(tmp_path: Path):
    out = _run("multi_input_multi_output.py", tmp_path)
    assert _value(out, "History keys:") == str(sorted(
        ["loss", "class_loss", "footwear_loss", "class_accuracy", "footwear_accuracy"]
        + [f"val_{k}" for k in ("loss", "class_loss", "footwear_loss", "class_accuracy", "footwear_accuracy")]))
    assert _value(out, "Total loss is the weighted sum:") == "True"
    assert float(_value(out, "Class accuracy:")) > 0.25  # three epochs on 720 images; chance is 0.1
    assert float(_value(out, "Footwear accuracy:")) > 0.75  # 30% of the images are footwear
    assert _value(out, "Prediction shapes:") == "(200, 10) (200, 1)"


def test_transfer_learning(tmp_path: Path):
    out = _run("transfer_learning.py", tmp_path)
    assert _value(out, "Trainable weights while frozen:") == "2"  # the new Dense layer's kernel and bias
    assert _value(out, "Trainable weights while fine-tuning:") == "158"  # Keras' count for MobileNetV2 + Dense
    assert float(_value(out, "Accuracy with the frozen base:")) > 0.5  # ImageNet features on 600 images
    assert float(_value(out, "Accuracy after fine-tuning:")) > 0.5


def test_custom_training_loop(tmp_path: Path):
    out = _run("custom_training_loop.py", tmp_path)
    assert _value(out, "Steps taken:") == "60"  # 1000 / 50 batches, three times
    assert _value(out, "Loss went down:") == "True"
    assert float(_value(out, "Test accuracy:")) > 0.6
    assert _value(out, "predict_on_batch shape:") == "(8, 10)"
    assert _value(out, "Agrees with predict:") == "True"


def test_subclassed_model(tmp_path: Path):
    out = _run("subclassed_model.py", tmp_path)
    # conv 1->16 (160) + 16 scales, conv 16->32 (4,640) + 32 scales, dense 32->10 (330)
    assert _value(out, "Parameters:") == str(160 + 16 + 4640 + 32 + 330)
    assert float(_value(out, "Test accuracy:")) > 0.2
    assert _value(out, "Predictions shape:") == "(200, 10)"
    assert _value(out, "Reloaded weights give the same predictions:") == "True"


def test_generator_fit(tmp_path: Path):
    out = _run("generator_fit.py", tmp_path)
    assert _value(out, "Training batches drawn:") == "60"  # steps_per_epoch 20, three epochs: no extra draw
    assert _value(out, "Validation batches drawn:") == "12"  # validation_steps 4 per epoch
    assert _value(out, "History keys:") == str(["accuracy", "loss", "val_accuracy", "val_loss"])
    assert float(_value(out, "Test accuracy:")) > 0.2
    assert _value(out, "Predictions shape:") == "(128, 10)"


def test_augmentation_and_metrics(tmp_path: Path):
    out = _run("augmentation_and_metrics.py", tmp_path)
    assert _value(out, "History keys:") == ("loss,acc,auc,precision,recall,val_loss,val_acc,val_auc,"
                                            "val_precision,val_recall")
    assert "(None, 24, 24, 1)" in out  # Resizing's output shape in the summary
    assert float(_value(out, "Test AUC:")) > 0.85  # sneakers vs ankle boots; chance is 0.5
    assert 0 < float(_value(out, "Test precision:")) <= 1
    assert _value(out, "Standalone AUC equals evaluate's:") == "True"
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["train", "validation"]
