"""fit(precision="bfloat16") on the CPU: autocast semantics (float32 master weights and gradients), results within
bf16 rounding of float32, and a CPU without bf16 instructions still trains."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from pydlr import engine, layers
from pydlr.models import seed_cnn
from pydlr.train.loop_callbacks import Autocast

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: see conftest.one_thread


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().float() - b.detach().float()).norm() / b.detach().float().norm())


def _seed_step(model, x, y, precision: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Logits and parameter gradients of one training step's forward + backward, in the Learner's context."""
    cb = Autocast(precision)
    cb.learn = type("L", (), {"device": torch.device("cpu")})()
    cb.before_fit()
    model.zero_grad(set_to_none=True)
    with cb.learn.forward_context():
        logits = model(x)
    torch.nn.functional.cross_entropy(logits.float(), y).backward()
    return logits, [p.grad for p in model.parameters()]


def test_bfloat16_step_of_the_seed_cnn_is_as_close_to_float32_as_torchs_bf16_autocast():
    """pydlr's bf16 step (its own kernels where they are faster) lands no farther from float32 than stock torch's
    autocast step with the same weights (every convolution in oneDNN's bf16), and keeps float32 weights and
    gradients. A path that loses more than bf16 itself does (F(4x4, 3x3) Winograd on bf16 operands: ~10x a
    direct bf16 convolution's error, bench/bench_bf16_winograd_error.py) fails here."""
    torch.manual_seed(0)
    model = seed_cnn(model_class=engine.Sequential)
    x = torch.rand(32, 28, 28, 1)
    y = torch.randint(0, 10, (32,))
    ref_logits, ref_grads = _seed_step(model, x, y, "float32")
    ref_grads = [g.clone() for g in ref_grads]
    with layers.conv_backend("torch"):
        torch_logits, torch_grads = _seed_step(model, x, y, "bfloat16")
        torch_grads = [g.clone() for g in torch_grads]
    logits, grads = _seed_step(model, x, y, "bfloat16")
    # the Dense head's products (64 x 576 x 64) are below the size where bf16's GEMM beats float32's: float32
    assert logits.dtype == torch.float32
    # bf16 keeps 8 significant bits (relative rounding 2^-9 = 2e-3); the logits pass 5 layers.
    assert _rel(logits, ref_logits) < 1e-2
    assert _rel(logits, ref_logits) <= 1.5 * _rel(torch_logits, ref_logits) + 2e-3
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(g.dtype == torch.float32 for g in grads)  # the optimizer sees float32 gradients
    for g, t, r in zip(grads, torch_grads, ref_grads, strict=True):
        assert _rel(g, r) <= 1.5 * _rel(t, r) + 2e-3


_NO_BF16_CPU = """
import torch
from test_train_engine import quadrant_data, small_model
torch.set_num_threads(1)
x, y = quadrant_data(256)
m = small_model()
m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
h = m.fit(x, y, batch_size=32, epochs=3, verbose=0, seed=0, precision="bfloat16")
assert h.history["loss"][-1] < h.history["loss"][0], h.history
assert all(p.dtype == torch.float32 for p in m.parameters())
print("trained", torch.backends.cpu.get_cpu_capability())
"""


def test_bfloat16_trains_on_a_cpu_without_bf16_instructions():
    """oneDNN limited to AVX-512 without BF16 and ATen's kernels to AVX2 (the environment variables they read at
    start): bf16 autocast then runs on converting kernels, slower, with the same results' quality."""
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX512_CORE", ATEN_CPU_CAPABILITY="avx2")
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.pathsep.join([tests_dir, env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", _NO_BF16_CPU], env=env, capture_output=True, text=True,
                         timeout=300, cwd=tests_dir)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "trained AVX2" in out.stdout


def test_dense_under_cpu_bf16_autocast_keeps_small_products_in_float32_and_large_ones_in_bf16():
    small, large = layers.Dense(64), layers.Dense(1024)
    x_small, x_large = torch.rand(64, 576), torch.rand(256, 1024)
    small.build(x_small.shape)
    large.build(x_large.shape)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y_small, y_large = small(x_small), large(x_large)  # 2.4 M and 268 M multiply-adds
    assert y_small.dtype == torch.float32
    assert torch.equal(y_small, small(x_small))  # exactly the float32 layer
    assert y_large.dtype == torch.bfloat16
    assert _rel(y_large, large(x_large)) < 1e-2


def test_dense_under_cpu_bf16_autocast_takes_bf16_inputs_and_leaves_float64_products_in_float64():
    from pydlr.layers.core import _linear

    dense = layers.Dense(8)
    dense.build((4, 16))
    x = torch.rand(4, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = dense(x.bfloat16())  # an input a bf16 layer produced
    assert y.dtype == torch.float32
    assert torch.equal(y, dense(x.bfloat16().float()))
    w, b = torch.rand(8, 16, dtype=torch.float64), torch.rand(8, dtype=torch.float64)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast leaves float64 alone; so does the rule
        y64 = _linear(x.double(), w, b)
    assert y64.dtype == torch.float64
    assert torch.equal(y64, torch.nn.functional.linear(x.double(), w, b))
