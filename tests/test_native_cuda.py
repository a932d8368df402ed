"""pydlr on CUDA: the native CUDA kernels against cuDNN, and training, precision, memory formats, data paths,
saving, CUDA graphs and k-means on a GPU (skipped without one; the CUDA kernels also need a CUDA build)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pydlr import ops

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
needs_native = pytest.mark.skipif(
    not (torch.cuda.is_available() and ops.build_info()["cuda"]),
    reason="needs a GPU and pydlr built with CUDA kernels",
)

# (N, C, H, W, OC, k, stride, padding, dilation, groups): GEMM path, direct path, depthwise, grouped.
CASES = [
    (4, 32, 13, 13, 64, 3, 1, 0, 1, 1),
    (4, 1, 28, 28, 32, 3, 1, 0, 1, 1),
    (2, 16, 15, 17, 16, 3, 2, 1, 1, 16),
    (2, 8, 11, 10, 12, 3, 1, 2, 2, 2),
    (2, 24, 9, 9, 8, 1, 1, 0, 1, 1),
]


@needs_native
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("act", ["none", "relu", "relu6"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_cuda_matches_torch(case, act, channels_last):
    n, c, h, w, oc, k, s, p, d, g = case
    dev = torch.device("cuda")
    x0 = torch.randn(n, c, h, w, device=dev, dtype=torch.float64) * 3
    w0 = torch.randn(oc, c // g, k, k, device=dev, dtype=torch.float64)
    b0 = torch.randn(oc, device=dev, dtype=torch.float64)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    grads = []
    outs = []
    for impl in ("torch", "pydlr"):
        x = x0.contiguous(memory_format=fmt).requires_grad_()
        wt = w0.clone().requires_grad_()
        b = b0.clone().requires_grad_()
        if impl == "torch":
            y = F.conv2d(x, wt, b, s, p, d, g)
            y = {"none": y, "relu": torch.relu(y), "relu6": F.relu6(y)}[act]
        else:
            y = ops.conv2d(x, wt, b, (s, s), (p, p), (d, d), g, activation=act)
        y.backward(torch.linspace(-1, 1, y.numel(), device=dev, dtype=y.dtype).view_as(y))
        outs.append(y.detach())
        grads.append((x.grad, wt.grad, b.grad))
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-10, atol=1e-10)
    for mine, ref in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(mine, ref, rtol=1e-9, atol=1e-9)


@needs_native
def test_cuda_gradcheck_small():
    dev = torch.device("cuda")
    x = torch.randn(2, 4, 6, 7, device=dev, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 2, 3, 3, device=dev, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, device=dev, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, c, e: ops.conv2d(a, c, e, (2, 1), (1, 1), (1, 2), 2),
        (x, w, b),
        eps=1e-6,
        atol=1e-6,
    )


# ---------------------------------------------------------------------------------------------------------
# The rest needs a GPU, not necessarily pydlr's CUDA kernels: training, precision, memory formats, data paths,
# saving and k-means on CUDA.
# ---------------------------------------------------------------------------------------------------------
# The seed CNN's three convolutions at batch 16, float32 (fused relu as the layers call them).
SEED_LAYERS = [(16, 1, 28, 28, 32), (16, 32, 13, 13, 64), (16, 64, 5, 5, 64)]


@needs_native
@pytest.mark.parametrize("shape", SEED_LAYERS)
@pytest.mark.parametrize("channels_last", [False, True])
def test_native_float32_matches_cudnn_on_seed_layers(shape, channels_last):
    """Native CUDA kernels against cuDNN in float32, both measured against a float64 reference."""
    n, c, h, w, oc = shape
    dev = torch.device("cuda")
    g = torch.Generator(device=dev).manual_seed(7)
    x64 = torch.randn(n, c, h, w, device=dev, dtype=torch.float64, generator=g)
    w64 = torch.randn(oc, c, 3, 3, device=dev, dtype=torch.float64, generator=g) * 0.2
    b64 = torch.randn(oc, device=dev, dtype=torch.float64, generator=g)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    results = {}
    for impl in ("ref64", "cudnn", "native"):
        dtype = torch.float64 if impl == "ref64" else torch.float32
        x = x64.detach().to(dtype).contiguous(memory_format=fmt).requires_grad_()
        wt = w64.detach().to(dtype).requires_grad_()
        b = b64.detach().to(dtype).requires_grad_()
        if impl == "native":
            y = ops.conv2d(x, wt, b, (1, 1), (0, 0), (1, 1), 1, activation="relu")
            if c > 1:  # (one channel: NCHW and channels-last strides coincide, the input's format is ambiguous)
                assert y.is_contiguous(memory_format=fmt)  # the output follows the input's memory format
        else:
            y = torch.relu(F.conv2d(x, wt, b))
        y.backward(torch.cos(torch.arange(y.numel(), device=dev, dtype=dtype)).view_as(y))
        results[impl] = [t.double() for t in (y.detach(), x.grad, wt.grad, b.grad)]

    def rel(a, b):
        return float((a - b).norm() / b.norm())

    for i, name in enumerate(("output", "input grad", "weight grad", "bias grad")):
        native_err = rel(results["native"][i], results["ref64"][i])
        cudnn_err = rel(results["cudnn"][i], results["ref64"][i])
        assert native_err < 1e-5, (name, native_err)
        assert native_err < max(10 * cudnn_err, 1e-6), (name, native_err, cudnn_err)


@needs_native
def test_native_rejects_mixed_devices():
    x = torch.randn(2, 3, 8, 8, device="cuda")
    w = torch.randn(4, 3, 3, 3)
    with pytest.raises(RuntimeError, match="device"):
        ops.conv2d(x, w)


@needs_native
def test_auto_backend_picks_a_measured_winner_on_cuda():
    """"auto" on CUDA tensors decides between the native kernel and cuDNN; the layer runs what it picked and
    both give the same values."""
    from pydlr.layers import Conv2D, conv_backend

    layer = Conv2D(32, 3, activation="relu")
    layer.build_from((28, 28, 1))
    layer.to("cuda")
    x = torch.rand(64, 28, 28, 1, device="cuda").permute(0, 3, 1, 2)
    choice = layer._resolve_backend(x, (0, 0), 1)
    assert choice in ("native", "torch")
    with torch.no_grad():
        y_auto = layer(x)
        with conv_backend("torch"):
            layer._auto_choice.clear()
            y_torch = layer(x)
    torch.testing.assert_close(y_auto, y_torch, rtol=1e-4, atol=1e-4)


def _blob_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """28x28 noise images whose class (0-9) is the position of a bright 7x7 patch: learnable in an epoch."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.4, size=(n, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, size=n)
    for i, c in enumerate(y):
        r, q = divmod(int(c), 5)
        x[i, 4 + r * 12:11 + r * 12, q * 5:q * 5 + 7, 0] += 0.6
    return x, y.astype(np.int64)


def _seed_model(seed: int = 0):
    import pydlr
    from pydlr.models import seed_cnn
    from pydlr.utils import set_random_seed

    set_random_seed(seed)
    model = seed_cnn(model_class=pydlr.Sequential)
    model.compile(optimizer="adam", loss=pydlr.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


@needs_gpu
@pytest.mark.parametrize("precision", ["float32", "bfloat16", "float16", "auto"])
def test_fit_evaluate_predict_on_cuda(precision):
    x, y = _blob_images(3000)
    model = _seed_model()
    hist = model.fit(x[:2500], y[:2500], batch_size=64, epochs=3, verbose=0, device="cuda",
                     precision=precision, seed=1)
    assert next(model.parameters()).device.type == "cuda"
    losses = hist.history["loss"]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    loss, acc = model.evaluate(x[2500:], y[2500:], batch_size=100)
    assert acc > 0.9, (precision, acc)
    pred = model.predict(x[2500:], batch_size=128)
    assert pred.shape == (500, 10) and pred.dtype == np.float32
    assert (pred.argmax(1) == y[2500:]).mean() == pytest.approx(acc, abs=1e-6)


@needs_gpu
def test_fit_on_cuda_reproducible_with_seed():
    x, y = _blob_images(1000)
    runs = []
    for _ in range(2):
        model = _seed_model()
        model.fit(x, y, batch_size=64, epochs=1, verbose=0, device="cuda", precision="float32", seed=3)
        runs.append([p.detach().cpu() for p in model.parameters()])
    for a, b in zip(*runs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@needs_gpu
def test_layers_run_channels_last_on_cuda():
    """pydlr's internal layout is channels-last memory: conv outputs on CUDA stay channels-last and equal the
    NCHW computation."""
    from pydlr.layers import Conv2D, conv_backend

    layer = Conv2D(16, 3, activation="relu")
    layer.build_from((20, 20, 8))
    layer.to("cuda")
    x_nhwc = torch.randn(4, 20, 20, 8, device="cuda")
    x_int = x_nhwc.permute(0, 3, 1, 2)  # the model's internal view: channels-last memory
    assert x_int.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        y = layer(x_int)
        assert y.is_contiguous(memory_format=torch.channels_last)
        with conv_backend("torch"):
            layer._auto_choice.clear()
            y_nchw = layer(x_int.contiguous())
    torch.testing.assert_close(y, y_nchw, rtol=1e-3, atol=1e-3)


@needs_gpu
def test_augmentation_workers_feed_the_gpu_through_pinned_memory():
    """Batches augmented by CPU workers arrive on the GPU (pinned, non-blocking copies) with exactly the
    values the same workers give for a CPU fit."""
    from pydlr.data import Augment
    from pydlr.data.batching import ArrayBatches

    x = torch.rand(300, 28, 28, 1)
    y = torch.arange(300) % 10
    aug = Augment(flip="horizontal", rotation=0.1, shift=0.1)
    gpu = ArrayBatches(x, y, 64, seed=5, augment=aug, workers=2, device="cuda")
    cpu = ArrayBatches(x, y, 64, seed=5, augment=aug, workers=2, device="cpu")
    try:
        assert gpu._pin
        got = [(xb.clone(), yb.clone()) for xb, yb, _ in gpu.epoch(0)]
        ref = [(xb.clone(), yb.clone()) for xb, yb, _ in cpu.epoch(0)]
    finally:
        gpu.close()
        cpu.close()
    assert len(got) == len(ref) == 5
    for (xg, yg), (xc, yc) in zip(got, ref, strict=True):
        assert xg.device.type == "cuda" and yg.device.type == "cuda"
        torch.testing.assert_close(xg.cpu(), xc, rtol=0, atol=0)
        torch.testing.assert_close(yg.cpu(), yc)


@needs_gpu
def test_fit_with_augmentation_workers_on_cuda():
    from pydlr.data import Augment

    x, y = _blob_images(2000)
    model = _seed_model()
    model.fit(x[:1600], y[:1600], batch_size=64, epochs=3, verbose=0, device="cuda", seed=2,
              augment=Augment(contrast=0.1, brightness=0.1), workers=2)
    _, acc = model.evaluate(x[1600:], y[1600:])
    assert acc > 0.8


@needs_gpu
def test_save_on_gpu_load_on_cpu_and_back(tmp_path):
    import pydlr

    x, y = _blob_images(600)
    model = _seed_model()
    model.fit(x, y, batch_size=64, epochs=1, verbose=0, device="cuda", precision="float32", seed=1)
    pred_gpu = model.predict(x[:50])
    path = pydlr.save_model(model, tmp_path / "m.pydlr")
    loaded = pydlr.load_model(path)
    assert next(loaded.parameters()).device.type == "cpu"
    for a, b in zip(model.parameters(), loaded.parameters(), strict=True):
        assert torch.equal(a.detach().cpu(), b.detach())
    np.testing.assert_allclose(loaded.predict(x[:50]), pred_gpu, rtol=1e-3, atol=1e-3)
    loaded.fit(x, y, batch_size=64, epochs=1, verbose=0, device="cuda", seed=1)  # back to the GPU, trains
    assert next(loaded.parameters()).device.type == "cuda"


@needs_gpu
def test_kmeans_on_cuda_matches_cpu():
    from pydlr.cluster import KMeans

    rng = np.random.default_rng(0)
    centers = rng.normal(0, 10, size=(5, 16))
    x = (centers[rng.integers(0, 5, 4000)] + rng.normal(0, 1, size=(4000, 16))).astype(np.float32)
    init = x[:5].copy()
    fits = {dev: KMeans(5, init=init, n_init=1, max_iter=50, device=dev).fit(x) for dev in ("cpu", "cuda")}
    assert fits["cuda"].device_.startswith("cuda")
    np.testing.assert_array_equal(fits["cuda"].labels_, fits["cpu"].labels_)
    np.testing.assert_allclose(fits["cuda"].cluster_centers_, fits["cpu"].cluster_centers_, rtol=1e-4,
                               atol=1e-4)
    assert fits["cuda"].inertia_ == pytest.approx(fits["cpu"].inertia_, rel=1e-4)


@needs_gpu
def test_nccl_ddp_two_processes():
    if torch.cuda.device_count() < 2:
        pytest.skip(f"nccl DDP needs 2 GPUs; this machine has {torch.cuda.device_count()}")
    x, y = _blob_images(512)
    model = _seed_model()
    hist = model.fit(x, y, batch_size=64, epochs=1, verbose=0, device="cuda", distributed=True,
                     nproc_per_node=2, seed=1)
    assert np.isfinite(hist.history["loss"][-1])


def test_cuda_graph_status_on_cpu():
    x, y = _blob_images(128)
    model = _seed_model()
    hist = model.fit(x, y, batch_size=64, epochs=1, verbose=0, device="cpu", seed=1)
    assert hist.params["cuda_graph"] == "eager: not on CUDA"


def _fit_weights(graphs: bool, callbacks=(), precision="float32", n=1000, epochs=2):
    from pydlr.train import cuda_graphs

    x, y = _blob_images(n)
    model = _seed_model()
    previous = cuda_graphs.cuda_graphs_enabled()
    cuda_graphs.set_cuda_graphs(graphs)
    try:
        hist = model.fit(x, y, batch_size=64, epochs=epochs, verbose=0, device="cuda", precision=precision,
                         seed=4, callbacks=list(callbacks))
    finally:
        cuda_graphs.set_cuda_graphs(previous)
    return [p.detach().cpu() for p in model.parameters()], hist


@needs_gpu
def test_cuda_graph_step_matches_eager():
    """1000 samples at batch 64: 15 full batches from the graph, the last 40 eagerly; same weights."""
    eager, h_eager = _fit_weights(False)
    graphed, h_graph = _fit_weights(True)
    assert h_eager.params["cuda_graph"].startswith("eager: off")
    assert h_graph.params["cuda_graph"].startswith("captured (1x)"), h_graph.params["cuda_graph"]
    for a, b in zip(graphed, eager, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(h_graph.history["loss"], h_eager.history["loss"], rtol=1e-3)


@needs_gpu
def test_cuda_graph_follows_a_learning_rate_schedule():
    from pydlr.train import ParamScheduler, one_cycle

    eager, _ = _fit_weights(False, [ParamScheduler(one_cycle(3e-3))])
    graphed, hist = _fit_weights(True, [ParamScheduler(one_cycle(3e-3))])
    assert hist.params["cuda_graph"].startswith("captured (1x)"), hist.params["cuda_graph"]
    for a, b in zip(graphed, eager, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


@needs_gpu
def test_cuda_graph_left_out_for_callbacks_inside_the_step():
    from pydlr.train import Callback

    class ClipGrads(Callback):
        def after_backward(self):
            torch.nn.utils.clip_grad_norm_(self.learn.model.parameters(), 1.0)

    _, hist = _fit_weights(True, [ClipGrads()], n=300, epochs=1)
    assert hist.params["cuda_graph"] == "eager: callbacks act inside the step: ClipGrads"


@needs_gpu
def test_cuda_graph_with_bfloat16_autocast_learns():
    _, hist = _fit_weights(True, precision="bfloat16", n=2000, epochs=3)
    assert hist.params["cuda_graph"].startswith("captured"), hist.params["cuda_graph"]
    assert hist.history["accuracy"][-1] > 0.9


@needs_gpu
def test_out_of_memory_suggests_a_smaller_batch_and_keeps_the_model():
    from pydlr.errors import TrainingError

    x, y = _blob_images(20000)
    model = _seed_model()
    model.fit(x[:256], y[:256], batch_size=64, epochs=1, verbose=0, device="cuda", seed=1)
    before = [p.detach().clone() for p in model.parameters()]
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(min(1.0, (torch.cuda.memory_allocated() + 2**30) / total))
    try:
        with pytest.raises(TrainingError, match="ran out of memory.*smaller batch_size.*try 10000"):
            model.fit(x, y, batch_size=20000, epochs=1, verbose=0, device="cuda", precision="float32")
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    for a, b in zip(model.parameters(), before, strict=True):
        assert torch.equal(a.detach(), b)
    hist = model.fit(x[:2000], y[:2000], batch_size=64, epochs=1, verbose=0, device="cuda")
    assert np.isfinite(hist.history["loss"][-1])


@needs_gpu
def test_in_process_gpu_augmentation_draws_the_epoch_at_once():
    """Batches augmented on the GPU from the epoch's pre-drawn parameters equal augmenting each batch with its
    own generator (the batch-by-batch path); the last batch is partial."""
    from pydlr.data import Augment
    from pydlr.data.batching import ArrayBatches, epoch_batches

    x = torch.rand(300, 28, 28, 1)
    y = torch.arange(300) % 10
    aug = Augment(flip="horizontal", rotation=0.1, shift=0.1, zoom=0.1, brightness=0.2, contrast=0.2)
    data = ArrayBatches(x, y, 64, seed=5, augment=aug, workers=0, device="cuda")
    got = [xb.clone() for xb, _, _ in data.epoch(1)]
    batches = epoch_batches(300, 64, None, True, 5, 1)
    assert [len(b) for b in batches] == [64, 64, 64, 64, 44] == [len(b) for b in got]
    for step, (idx, xb) in enumerate(zip(batches, got, strict=True)):
        g = torch.Generator().manual_seed(data.batch_seed(1, step))
        ref = data.augment(x[idx].cuda(), g)
        torch.testing.assert_close(xb, ref, rtol=1e-5, atol=1e-5)
