"""DDP under torchrun on CPU (gloo): 2 processes, identical weights on both ranks, loss decreasing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from pydlr.train.distributed import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent('''
    import json, os, sys
    import numpy as np
    from safetensors.torch import save_file
    from pydlr import engine
    from pydlr.layers import Conv2D, Dense, Flatten, Input
    from pydlr.train.optimizers import Adam
    from pydlr.utils import set_random_seed

    out, rank = sys.argv[1], int(os.environ["RANK"])
    set_random_seed(100 + rank)  # different initial weights: DDP must broadcast rank 0's
    rng = np.random.RandomState(0)
    x = rng.uniform(0, 0.5, size=(256, 8, 8, 1)).astype(np.float32)
    y = rng.randint(0, 4, size=256)
    for i, c in enumerate(y):
        r, q = divmod(int(c), 2)
        x[i, r * 4:(r + 1) * 4, q * 4:(q + 1) * 4, 0] += 0.5
    m = engine.Sequential([Input((8, 8, 1)), Conv2D(4, (3, 3), activation="relu"), Flatten(),
                           Dense(4, activation="softmax")])
    m.compile(Adam(learning_rate=0.01), "sparse_categorical_crossentropy", ["accuracy"])
    h = m.fit(x, y, batch_size=16, epochs=4, seed=1, verbose=0)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, f"{out}/rank{rank}.safetensors")
    json.dump({"history": h.history, "steps": h.params["steps"]}, open(f"{out}/hist{rank}.json", "w"))
''')


def run_two_processes(source: str, folder) -> None:
    """``source`` written to ``folder`` and run by pydlr's torchrun launcher as 2 CPU processes (gloo),
    with ``folder`` as its one argument; fails the test with the processes' stderr on a non-zero exit."""
    script = folder / "script.py"
    script.write_text(source)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "pydlr.train.distributed", "--nproc-per-node", "2",
           "--master-port", str(free_port()), str(script), str(folder)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]


def test_torchrun_two_cpu_processes_train_identical_weights(tmp_path):
    run_two_processes(SCRIPT, tmp_path)
    w0, w1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)
    h0 = json.loads((tmp_path / "hist0.json").read_text())
    h1 = json.loads((tmp_path / "hist1.json").read_text())
    assert h0 == h1  # epoch logs are averaged over both ranks
    assert h0["steps"] == 8  # 256 samples / 2 ranks / batch 16
    loss = h0["history"]["loss"]
    assert loss[-1] < loss[0] * 0.7 and np.all(np.isfinite(loss))


@pytest.mark.slow
def test_fit_distributed_true_spawns_torchrun_and_returns_trained_weights(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where fit puts its copy of the data
    sys.path.insert(0, os.path.dirname(__file__))
    from test_train_engine import quadrant_data, small_model

    from pydlr.train.optimizers import Adam

    x, y = quadrant_data(256)
    m = small_model()
    m.compile(Adam(learning_rate=0.01), "sparse_categorical_crossentropy", ["accuracy"])
    before = m.evaluate(x, y)
    h = m.fit(x, y, batch_size=16, epochs=3, seed=1, verbose=0, distributed=True,
              nproc_per_node=2)
    assert h.params["steps"] == 8 and h.history["loss"][-1] < h.history["loss"][0]
    after = m.evaluate(x, y)
    assert after[0] < before[0] and after[1] > 0.8  # the weights came back into this model
    assert m.input_scale == pytest.approx(float(np.abs(x).max()))  # and the images' scale the processes saw
    assert not list(tmp_path.glob("pydlr-ddp-*"))  # the data's copy is gone


def test_fit_distributed_passes_every_argument_to_the_processes(tmp_path):
    # model.fit(distributed=...) forwarded a fixed few arguments: callbacks, resume, shuffle, augment, ...
    # were dropped without a word (a CSVLogger wrote nothing, no checkpoint appeared).
    sys.path.insert(0, os.path.dirname(__file__))
    from test_train_engine import quadrant_data, small_model

    from pydlr import callbacks
    from pydlr.errors import InputError

    x, y = quadrant_data(64)
    m = small_model()
    m.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(InputError, match="argument `callbacks` must be none with distributed training"):
        m.fit(x, y, epochs=1, verbose=0, distributed=True, callbacks=[callbacks.CSVLogger(str(tmp_path / "log.csv"))])
    checkpoint = tmp_path / "resume.safetensors"
    h = m.fit(x, y, batch_size=16, epochs=1, seed=1, verbose=0, resume=checkpoint,
              distributed={"nproc_per_node": 2})  # R's list(nproc_per_node = 2), as a dict
    assert h.params["steps"] == 2  # 64 rows over 2 processes of 16-row batches
    assert checkpoint.is_file()


AUC_SCRIPT = textwrap.dedent('''
    import json, os, sys
    import numpy as np
    from sklearn.metrics import roc_auc_score
    from pydlr import engine, metrics
    from pydlr.layers import Dense, Input
    from pydlr.train.optimizers import SGD
    from pydlr.utils import set_random_seed

    out, rank = sys.argv[1], int(os.environ["RANK"])
    set_random_seed(3)
    rng = np.random.RandomState(0)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = (x[:, 0] + rng.normal(size=200) > 0).astype(np.float32)
    m = engine.Sequential([Input((4,)), Dense(1, activation="sigmoid")])
    # learning rate ~0: the epoch's predictions are those of the fixed model, so the AUC over both
    # ranks' shards must be the AUC over all the data
    m.compile(SGD(learning_rate=1e-12), "binary_crossentropy", [metrics.AUC(), metrics.Precision()])
    h = m.fit(x, y, batch_size=20, epochs=1, seed=1, verbose=0)
    p = m.predict(x, verbose=0).ravel()
    json.dump({"history": h.history, "auc_all": roc_auc_score(y, p)}, open(f"{out}/auc{rank}.json", "w"))
''')


def test_epoch_metrics_gather_every_process_under_torchrun(tmp_path):
    run_two_processes(AUC_SCRIPT, tmp_path)
    r0, r1 = (json.loads((tmp_path / f"auc{r}.json").read_text()) for r in (0, 1))
    assert r0["history"] == r1["history"]
    assert r0["history"]["auc"][0] == pytest.approx(r0["auc_all"], abs=1e-6)
