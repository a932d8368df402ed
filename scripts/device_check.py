"""The GPU check's benchmarks and report: each section in its own process, with its own time limit.

Run by scripts/device_check.sh (which builds the extension and runs the CUDA tests first); on its own:

    python scripts/device_check.py --out DIR [--device cuda|cpu] [--quick] [--data FOLDER]

Sections (each writes its part of DIR/device_check.json and DIR/device_check.md as soon as it ends, so a
section that fails or runs out of time loses only its own rows):

- ``conv``: pydlr's native CUDA convolutions against torch's (cuDNN on a GPU; "torch_*" columns) on the seed
  CNN's layers, forward and forward + backward, and which one the layers' "auto" backend picks.
- ``seed_cnn``: one Fashion-MNIST epoch of the seed CNN + dense head, data resident on the device, batch 64 and
  512: pydlr's ``fit`` (float32 and its default precision; CUDA graphs on and off) against a hand-written eager
  torch loop on the same device, and the test accuracy pydlr reaches.
- ``mobilenet``: MobileNetV2 fine-tuning (224 x 224, autocast) and inference, images/s, pydlr's model against
  torchvision's with the same weights.
- ``kmeans``: pydlr's KMeans on the device against scikit-learn on the CPU from the same centers and the
  same number of Lloyd iterations, 60,000 x 784 (Fashion-MNIST) and 10,000,000 x 64 (random).
- ``augment``: a seed-CNN epoch with on-the-fly augmentation (in the training process, and in CPU worker
  processes feeding the device through pinned memory) against the epoch without.

``--device cpu --quick`` runs every section on tiny sizes on the CPU, so that CI keeps these paths working
(tests/test_device_check.py); its numbers mean nothing. Timings on a GPU are taken after a warm-up, with the
device synchronised (CUDA events for single operators; medians).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# name -> (seconds allowed on the GPU, seconds allowed with --quick)
SECTIONS = {
    "conv": (45, 40),
    "seed_cnn": (110, 60),
    "mobilenet": (60, 60),
    "kmeans": (60, 40),
    "augment": (60, 40),
}


# ----------------------------------------------------------------------------------------------------------
# helpers shared by the sections
# ----------------------------------------------------------------------------------------------------------
def _torch():
    import torch

    return torch


def sync(device) -> None:
    torch = _torch()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def wall(fn, device) -> float:
    """Seconds fn() takes, the device synchronised before and after."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def op_ms(fn, device, reps: int, warmup: int = 3) -> float:
    """Median milliseconds of fn() over ``reps`` calls (CUDA events on a GPU, a host clock on the CPU)."""
    torch = _torch()
    for _ in range(warmup):
        fn()
    if torch.device(device).type == "cuda":
        from pydlr.ops import cuda_event_ms

        times = cuda_event_ms(fn, reps)
    else:
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def fashion_mnist(args, n_train: int | None = None, n_test: int | None = None):
    """(x_train, y_train, x_test, y_test, source): real Fashion-MNIST when the folder has it, else random
    data of the same shapes (said in ``source``). x float32 in [0, 1], (n, 28, 28, 1)."""
    import numpy as np

    try:
        from pydlr.data.datasets import load_fashion_mnist

        (xtr, ytr), (xte, yte) = load_fashion_mnist(args.data)
        source = f"Fashion-MNIST ({args.data or 'default folder'})"
    except Exception as exc:  # no data set on this machine: random data of the same shapes
        rng = np.random.default_rng(0)
        xtr = rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8)
        ytr = rng.integers(0, 10, 60000)
        xte = rng.integers(0, 256, (10000, 28, 28), dtype=np.uint8)
        yte = rng.integers(0, 10, 10000)
        source = f"random data of Fashion-MNIST's shapes ({type(exc).__name__})"
    xtr, ytr, xte, yte = xtr[:n_train], ytr[:n_train], xte[:n_test], yte[:n_test]
    f = lambda a: (a.astype(np.float32) / 255.0)[..., None]  # noqa: E731
    return f(xtr), ytr.astype(np.int64), f(xte), yte.astype(np.int64), source


# ----------------------------------------------------------------------------------------------------------
# conv: native CUDA kernels against cuDNN
# ----------------------------------------------------------------------------------------------------------
def _conv_times(x0, oc: int, k: int, s: int, p: int, g: int, act: str, dev, reps: int) -> dict:
    """Median ms of torch's and pydlr's convolution + activation on x0, forward and forward + backward."""
    torch = _torch()
    import torch.nn.functional as F

    from pydlr import ops

    w0 = torch.randn(oc, x0.shape[1] // g, k, k, device=dev) * 0.1
    b0 = torch.randn(oc, device=dev)
    act_fn = torch.relu if act == "relu" else F.relu6

    def torch_fwd(x=x0, w=w0, b=b0):
        return act_fn(F.conv2d(x, w, b, s, p, 1, g))

    def native_fwd(x=x0, w=w0, b=b0):
        return ops.conv2d(x, w, b, (s, s), (p, p), (1, 1), g, activation=act)

    xg, wg, bg = (t.clone().requires_grad_() for t in (x0, w0, b0))

    def train(fwd):
        def step():
            y = fwd(xg, wg, bg)
            y.backward(torch.ones_like(y))
        return step

    with torch.no_grad():
        ref, mine = torch_fwd(), native_fwd()
    row = {"rel_err": float((mine - ref).norm() / ref.norm().clamp_min(1e-30)),
           "torch_fwd_ms": op_ms(torch_fwd, dev, reps), "native_fwd_ms": op_ms(native_fwd, dev, reps),
           "torch_train_ms": op_ms(train(torch_fwd), dev, reps),
           "native_train_ms": op_ms(train(native_fwd), dev, reps)}
    row["native_over_torch_fwd"] = row["native_fwd_ms"] / row["torch_fwd_ms"]
    row["native_over_torch_train"] = row["native_train_ms"] / row["torch_train_ms"]
    return row


def section_conv(args) -> dict:
    torch = _torch()

    from pydlr import layers

    dev = args.device
    quick = args.quick
    batches = (4,) if quick else (64, 512)
    # (name, C, H, W, OC, k, stride, padding, groups, activation): the seed CNN's three layers (valid
    # padding, relu fused) and MobileNetV2's first depthwise layer.
    shapes = [
        ("seed conv1 1->32 @28", 1, 28, 28, 32, 3, 1, 0, 1, "relu"),
        ("seed conv2 32->64 @13", 32, 13, 13, 64, 3, 1, 0, 1, "relu"),
        ("seed conv3 64->64 @5", 64, 5, 5, 64, 3, 1, 0, 1, "relu"),
        ("mnv2 dw 32 @112", 32, 28 if quick else 112, 28 if quick else 112, 32, 3, 1, 1, 32, "relu6"),
    ]
    rows = []
    reps = 2 if quick else 30
    for n in batches:
        for name, c, h, w, oc, k, s, p, g, act in shapes:
            if name.startswith("mnv2") and (n > 64 or quick):
                continue
            for fmt_name, fmt in (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)):
                x0 = torch.randn(n, c, h, w, device=dev).contiguous(memory_format=fmt)
                row = {"layer": name, "batch": n, "layout": fmt_name,
                       **_conv_times(x0, oc, k, s, p, g, act, dev, reps)}
                layer = layers.Conv2D(oc, k, strides=s, padding=p, groups=g, activation=act)
                layer.build_from((h, w, c))
                layer.to(dev)
                # the layers' own decision for this input (what a model's forward would take)
                row["auto_picks"] = layer._resolve_backend(x0, (p, p), g)
                rows.append(row)
                log(f"conv {name} n={n} {fmt_name}: native/torch fwd {row['native_over_torch_fwd']:.2f} "
                    f"train {row['native_over_torch_train']:.2f} err {row['rel_err']:.1e} auto={row['auto_picks']}")
    return {"rows": rows}


# ----------------------------------------------------------------------------------------------------------
# seed CNN: pydlr fit against a hand-written torch loop
# ----------------------------------------------------------------------------------------------------------
def _torch_seed_cnn():
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(), nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10),
    )


def torch_loop_epochs(x, y, batch: int, epochs: int, device, graph: bool = False,
                      channels_last: bool = False) -> list[float]:
    """Seconds per epoch of a hand-written eager torch loop (Adam 1e-3, cross-entropy), data on ``device``;
    ``graph``: the same step captured once in a CUDA graph and replayed (full batches only)."""
    torch = _torch()
    import torch.nn.functional as F

    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = _torch_seed_cnn().to(device, memory_format=fmt)
    xd = torch.as_tensor(x).permute(0, 3, 1, 2).contiguous(memory_format=fmt).to(device)
    yd = torch.as_tensor(y).to(device)
    n = xd.shape[0]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=graph)

    def step(xb, yb):
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=not graph)
        loss.backward()
        opt.step()
        return loss

    if graph:
        sx, sy = xd[:batch].clone(), yd[:batch].clone()
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                step(sx, sy)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            step(sx, sy)

    times = []
    for _ in range(epochs):
        def epoch():
            perm = torch.randperm(n, device=device)
            for i in range(0, n, batch):
                idx = perm[i:i + batch]
                if graph and idx.shape[0] == batch:
                    torch.index_select(xd, 0, idx, out=sx)
                    torch.index_select(yd, 0, idx, out=sy)
                    g.replay()
                elif not graph:
                    step(xd[idx], yd[idx])
        times.append(wall(epoch, device))
    return times


def pydlr_fit_epochs(x, y, batch: int, epochs: int, device, precision: str = "float32",
                     cuda_graphs: bool | None = None, augment=None, workers: int = 0):
    """(seconds per epoch, fitted model) of ``pydlr.Sequential.fit`` on the seed CNN + dense head."""
    torch = _torch()
    import pydlr
    from pydlr.models import seed_cnn
    from pydlr.train import callbacks

    times: list[float] = []

    class EpochTimer(callbacks.Callback):
        def before_epoch(self):
            sync(device)
            self.t0 = time.perf_counter()

        def after_train(self):
            sync(device)
            times.append(time.perf_counter() - self.t0)

    torch.manual_seed(0)
    model = seed_cnn(model_class=pydlr.Sequential)
    model.compile(optimizer=pydlr.optimizers.Adam(learning_rate=1e-3),
                  loss=pydlr.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    graphs = _graph_switch()
    previous = graphs.cuda_graphs_enabled() if graphs else None
    if graphs and cuda_graphs is not None:
        graphs.set_cuda_graphs(cuda_graphs)
    try:
        model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, device=device, precision=precision,
                  seed=1, callbacks=[EpochTimer()], augment=augment, workers=workers)
    finally:
        if graphs and previous is not None:
            graphs.set_cuda_graphs(previous)
    return times, model


def _graph_switch():
    """pydlr.train.cuda_graphs when this pydlr has it (the CUDA-graph training step), else None."""
    try:
        from pydlr.train import cuda_graphs

        return cuda_graphs
    except ImportError:
        return None


def section_seed_cnn(args) -> dict:
    torch = _torch()
    dev = args.device
    on_gpu = torch.device(dev).type == "cuda"
    n = 512 if args.quick else None
    xtr, ytr, xte, yte, source = fashion_mnist(args, n, 500 if args.quick else None)
    epochs = 1 if args.quick else 2
    rows = []

    def add(impl: str, batch: int, times: list[float], **extra):
        row = {"impl": impl, "batch": batch, "epoch_s": times[-1], "first_epoch_s": times[0], **extra}
        rows.append(row)
        log(f"seed_cnn {impl} batch {batch}: {times[-1]:.3f} s/epoch (first {times[0]:.3f})")

    result: dict = {"data": source, "n_train": int(xtr.shape[0]), "rows": rows}
    for batch in ((64,) if args.quick else (64, 512)):
        add("torch eager (NCHW)", batch, torch_loop_epochs(xtr, ytr, batch, epochs, dev))
        if not args.quick:
            add("torch eager (channels-last)", batch,
                torch_loop_epochs(xtr, ytr, batch, epochs, dev, channels_last=True))
        if on_gpu:
            try:
                add("torch + CUDA graph", batch, torch_loop_epochs(xtr, ytr, batch, epochs, dev, graph=True))
            except Exception as exc:  # report and go on
                rows.append({"impl": "torch + CUDA graph", "batch": batch, "error": repr(exc)[:300]})
        variants = [("float32", None)]
        if on_gpu:
            variants = [("float32", False), ("float32", True), ("auto", True)]
            if batch == 64:
                variants.append(("auto", False))
            if _graph_switch() is None:
                variants = [("float32", None), ("auto", None)]
        for precision, graphs in variants:
            label = f"pydlr fit ({precision}" + ("" if graphs is None else
                                                 f", CUDA graphs {'on' if graphs else 'off'}") + ")"
            try:
                times, model = pydlr_fit_epochs(xtr, ytr, batch, epochs, dev, precision, graphs)
                acc = model.evaluate(xte, yte, batch_size=1000, return_dict=True)["accuracy"]
                extra = {"test_accuracy": acc}
                graph = model.history.params.get("cuda_graph")
                if graph:
                    extra["cuda_graph"] = graph
                add(label, batch, times, **extra)
            except Exception as exc:
                traceback.print_exc()
                rows.append({"impl": label, "batch": batch, "error": repr(exc)[:300]})
    # ratios against the eager torch loop of the same batch
    for row in rows:
        base = next((r for r in rows if r["impl"] == "torch eager (NCHW)" and r["batch"] == row["batch"]
                     and "epoch_s" in r), None)
        if base and "epoch_s" in row:
            row["over_torch_eager"] = row["epoch_s"] / base["epoch_s"]
    return result


# ----------------------------------------------------------------------------------------------------------
# MobileNetV2 fine-tuning and inference against torchvision's
# ----------------------------------------------------------------------------------------------------------
def _mobilenet_pair(size: int, device, pretrained: bool):
    """(pydlr model, torchvision model or None, weights source): the same weights in both."""
    torch = _torch()
    from pydlr import pretrained as zoo

    source = "random (seed 0)"
    model = None
    if pretrained:
        try:
            model = zoo.load("mobilenet_v2", input_shape=(size, size, 3), classifier_activation=None)
            source = "ImageNet (torchvision's mobilenet_v2-b0353104)"
        except Exception as exc:
            source = f"random (seed 0): pretrained weights unavailable ({type(exc).__name__})"
    if model is None:
        torch.manual_seed(0)
        model = zoo.MobileNetV2(num_classes=1000, input_shape=(size, size, 3), classifier_activation=None)
    try:
        import torchvision

        tv = torchvision.models.mobilenet_v2(weights=None)
        tv.load_state_dict(model.state_dict(), strict=True)
    except Exception as exc:  # torchvision absent (CI's CPU machine): pydlr alone
        log(f"mobilenet: no torchvision model ({type(exc).__name__}: {exc})")
        tv = None
    return model.to(device), (tv.to(device) if tv is not None else None), source


def section_mobilenet(args) -> dict:
    torch = _torch()
    import torch.nn.functional as F

    dev = args.device
    on_gpu = torch.device(dev).type == "cuda"
    size, batch, steps = (32, 4, 1) if args.quick else (224, 64, 20)
    infer_batch = 4 if args.quick else 256
    amp = torch.bfloat16 if on_gpu else None
    model, tv, source = _mobilenet_pair(size, dev, pretrained=not args.quick)
    torch.manual_seed(1)
    x_nhwc = torch.rand(batch, size, size, 3, device=dev)
    y = torch.randint(0, 1000, (batch,), device=dev)
    xi_nhwc = torch.rand(infer_batch, size, size, 3, device=dev)
    rows = []

    def autocast():
        return torch.autocast("cuda", dtype=amp) if amp is not None else torch.autocast("cpu", enabled=False)

    def run(name: str, net, to_input):
        xb, xi = to_input(x_nhwc), to_input(xi_nhwc)
        net.train()
        opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)

        def train_step():
            with autocast():
                loss = F.cross_entropy(net(xb).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        for _ in range(3):
            train_step()
        t_train = wall(lambda: [train_step() for _ in range(steps)], dev) / steps
        net.eval()

        def infer():
            with torch.inference_mode(), autocast():
                net(xi)

        for _ in range(3):
            infer()
        t_inf = wall(lambda: [infer() for _ in range(steps)], dev) / steps
        row = {"model": name, "train_images_s": batch / t_train, "infer_images_s": infer_batch / t_inf,
               "train_step_ms": t_train * 1e3, "infer_batch_ms": t_inf * 1e3}
        rows.append(row)
        log(f"mobilenet {name}: train {row['train_images_s']:.0f} img/s, infer {row['infer_images_s']:.0f} img/s")

    same = None
    if tv is not None:  # the same weights give the same function (fresh models, float32, inference mode)
        with torch.no_grad():
            a = model.eval()(xi_nhwc[:8])
            b = tv.eval()(xi_nhwc[:8].permute(0, 3, 1, 2).contiguous())
            same = float((a - b).abs().max() / b.abs().max())
    # pydlr's model takes channels-last (N, H, W, C) batches, as fit() feeds it; torchvision's takes NCHW.
    run("pydlr MobileNetV2 (auto backend)", model, lambda t: t)
    if tv is not None:
        run("torchvision mobilenet_v2 (NCHW)", tv, lambda t: t.permute(0, 3, 1, 2).contiguous())
        tv = tv.to(memory_format=torch.channels_last)
        run("torchvision mobilenet_v2 (channels-last)", tv,
            lambda t: t.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last))
    # fit(): the user-facing number, data resident on the device
    try:
        import pydlr
        from pydlr.train import callbacks

        n_fit = batch * (2 if args.quick else 15)
        xf = torch.rand(n_fit, size, size, 3, device=dev)
        yf = torch.randint(0, 1000, (n_fit,), device=dev)
        times: list[float] = []

        class EpochTimer(callbacks.Callback):
            def before_epoch(self):
                sync(dev)
                self.t0 = time.perf_counter()

            def after_train(self):
                sync(dev)
                times.append(time.perf_counter() - self.t0)

        model.train()
        model.compile(optimizer=pydlr.optimizers.SGD(learning_rate=1e-3, momentum=0.9),
                      loss=pydlr.losses.SparseCategoricalCrossentropy(from_logits=True))
        hist = model.fit(xf, yf, batch_size=batch, epochs=2, verbose=0, device=dev, callbacks=[EpochTimer()])
        rows.append({"model": "pydlr fit() (precision auto), second epoch", "train_images_s": n_fit / times[-1],
                     "train_step_ms": times[-1] / (n_fit // batch) * 1e3,
                     "cuda_graph": hist.params.get("cuda_graph")})
        log(f"mobilenet fit(): {rows[-1]['train_images_s']:.0f} img/s ({rows[-1]['cuda_graph']})")
    except Exception as exc:
        traceback.print_exc()
        rows.append({"model": "pydlr fit()", "error": repr(exc)[:300]})
    base = next((r for r in rows if r["model"].startswith("torchvision mobilenet_v2 (NCHW)")), None)
    if base:
        for r in rows:
            if "train_images_s" in r:
                r["train_vs_torchvision"] = r["train_images_s"] / base["train_images_s"]
            if "infer_images_s" in r:
                r["infer_vs_torchvision"] = r["infer_images_s"] / base["infer_images_s"]
    return {"weights": source, "size": size, "batch": batch, "infer_batch": infer_batch,
            "autocast": str(amp), "fp32_logits_max_rel_diff_vs_torchvision": same, "rows": rows}


# ----------------------------------------------------------------------------------------------------------
# KMeans on the device against scikit-learn on the CPU, equal work
# ----------------------------------------------------------------------------------------------------------
def section_kmeans(args) -> dict:
    torch = _torch()
    import numpy as np

    from pydlr.cluster import KMeans

    dev = args.device
    rows = []
    xtr, _, _, _, source = fashion_mnist(args, 2000 if args.quick else None, 10)
    problems = [("Fashion-MNIST 60,000 x 784" if not args.quick else "Fashion-MNIST 2,000 x 784",
                 xtr.reshape(len(xtr), -1), 10, 30 if not args.quick else 5)]
    if not args.quick:
        problems.append(("random 10,000,000 x 64", None, 10, 20))
    for name, x, k, iters in problems:
        if x is None:
            gen = torch.Generator(device=dev).manual_seed(0)
            xt = torch.randn(10_000_000, 64, device=dev, generator=gen)
            x = None
        else:
            xt = torch.as_tensor(x).to(dev)
        rng = np.random.default_rng(0)
        pick = torch.as_tensor(rng.choice(xt.shape[0], k, replace=False)).to(dev)
        init = xt[pick].cpu().numpy()
        km = KMeans(n_clusters=k, init=init, n_init=1, max_iter=iters, tol=0.0, device=dev)
        km.fit(xt[:1000])  # warm-up (kernels, cuBLAS handles)
        t_pydlr = wall(lambda km=km, xt=xt: km.fit(xt), dev)
        row = {"data": name, "k": k, "iterations": iters, "pydlr_device_s": t_pydlr,
               "pydlr_inertia": float(km.inertia_), "pydlr_n_iter": int(km.n_iter_)}
        try:
            from sklearn.cluster import KMeans as SkKMeans

            xs = x if x is not None else xt.cpu().numpy()
            sk = SkKMeans(n_clusters=k, init=init, n_init=1, max_iter=iters, tol=0.0, algorithm="lloyd")
            t0 = time.perf_counter()
            sk.fit(xs)
            row.update(sklearn_cpu_s=time.perf_counter() - t0, sklearn_inertia=float(sk.inertia_),
                       sklearn_n_iter=int(sk.n_iter_))
            row["speedup"] = row["sklearn_cpu_s"] / t_pydlr
        except ImportError:
            row["sklearn_cpu_s"] = None
        rows.append(row)
        log(f"kmeans {name}: pydlr {t_pydlr:.3f} s, scikit-learn {row.get('sklearn_cpu_s')}")
        xt = None  # frees the 10M x 64 matrix before the next problem
    return {"cpu_threads": os.cpu_count(), "rows": rows}


# ----------------------------------------------------------------------------------------------------------
# augmentation while the device trains
# ----------------------------------------------------------------------------------------------------------
def section_augment(args) -> dict:
    from pydlr.data import Augment

    dev = args.device
    xtr, ytr, _, _, source = fashion_mnist(args, 256 if args.quick else None, 10)
    aug = Augment(flip="horizontal", rotation=0.05, shift=0.1, zoom=0.1)
    epochs = 1 if args.quick else 2
    workers = 1 if args.quick else max(1, (os.cpu_count() or 2) - 2)
    rows = []
    for label, augment, w in (("no augmentation", None, 0),
                              ("augmentation in the training process", aug, 0),
                              (f"augmentation in {workers} CPU workers (pinned copies)", aug, workers)):
        try:
            times, _ = pydlr_fit_epochs(xtr, ytr, 64, epochs, dev, "float32", None, augment, w)
            rows.append({"variant": label, "epoch_s": times[-1], "first_epoch_s": times[0]})
            log(f"augment {label}: {times[-1]:.3f} s/epoch")
        except Exception as exc:
            traceback.print_exc()
            rows.append({"variant": label, "error": repr(exc)[:300]})
    base = rows[0].get("epoch_s")
    for r in rows:
        if base and "epoch_s" in r:
            r["over_no_augmentation"] = r["epoch_s"] / base
    return {"data": source, "batch": 64, "rows": rows}


# ----------------------------------------------------------------------------------------------------------
# orchestration and report
# ----------------------------------------------------------------------------------------------------------
def environment(args) -> dict:
    info = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "device": args.device,
            "quick": args.quick}
    try:
        import numpy
        import torch

        info.update(torch=torch.__version__, numpy=numpy.__version__, torch_cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version() if torch.cuda.is_available() else None)
        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            info.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1),
                        gpu_count=torch.cuda.device_count(), capability=f"{p.major}.{p.minor}")
        from pydlr import ops

        info["pydlr_build"] = ops.build_info()
    except Exception as exc:
        info["error"] = repr(exc)
    for pkg in ("torchvision", "sklearn", "pandas", "pyarrow", "safetensors"):
        try:
            info[pkg] = __import__(pkg).__version__
        except Exception:
            info[pkg] = None
    return info


def run_section(name: str, args, workdir: Path) -> dict:
    """Run one section in a child process with its time limit; its JSON result, or the failure."""
    limit = SECTIONS[name][1 if args.quick else 0]
    result_file = workdir / f"{name}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--section", name, "--result", str(result_file),
           "--device", args.device] + (["--quick"] if args.quick else []) + (
        ["--data", args.data] if args.data else [])
    log(f"section {name} (limit {limit} s)")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, timeout=limit, cwd=str(ROOT))
        status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
    except subprocess.TimeoutExpired:
        status = f"timed out after {limit} s"
    out = {"status": status, "seconds": round(time.perf_counter() - t0, 1)}
    if result_file.is_file():
        out.update(json.loads(result_file.read_text()))
    return out


def run_child(args) -> int:
    fn = globals()[f"section_{args.section}"]
    try:
        result = fn(args)
        code = 0
    except Exception as exc:
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"[:1000]}
        code = 1
    Path(args.result).write_text(json.dumps(result, indent=1, default=str))
    return code


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return "" if v is None else str(v)


def _table(rows: list[dict], cols: list[str]) -> str:
    if not rows:
        return "(no rows)\n"
    cols = [c for c in cols if any(c in r for r in rows)] + (["error"] if any("error" in r for r in rows) else [])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c)).replace("|", "/") for c in cols) + " |")
    return "\n".join(lines) + "\n"


COLUMNS = {
    "conv": ["layer", "batch", "layout", "torch_fwd_ms", "native_fwd_ms", "native_over_torch_fwd",
             "torch_train_ms", "native_train_ms", "native_over_torch_train", "rel_err", "auto_picks"],
    "seed_cnn": ["impl", "batch", "epoch_s", "first_epoch_s", "over_torch_eager", "test_accuracy", "cuda_graph"],
    "mobilenet": ["model", "train_images_s", "train_vs_torchvision", "infer_images_s", "infer_vs_torchvision",
                  "train_step_ms", "infer_batch_ms", "cuda_graph"],
    "kmeans": ["data", "k", "iterations", "pydlr_device_s", "sklearn_cpu_s", "speedup", "pydlr_inertia",
               "sklearn_inertia"],
    "augment": ["variant", "epoch_s", "first_epoch_s", "over_no_augmentation"],
    "tests": ["suite", "passed", "failed", "errors", "skipped", "seconds"],
}


def junit_summary(path: Path, suite: str) -> dict | None:
    """Counts and failing test names from a pytest junit XML file."""
    if not path.is_file():
        return None
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        return {"suite": suite, "error": f"unreadable junit file: {exc}"}
    suites = [root] if root.tag == "testsuite" else list(root)
    out = {"suite": suite, "passed": 0, "failed": 0, "errors": 0, "skipped": 0, "seconds": 0.0,
           "failures": [], "skip_reasons": []}
    for s in suites:
        out["seconds"] += float(s.get("time", 0))
        for case in s.iter("testcase"):
            name = f"{case.get('classname')}::{case.get('name')}"
            kids = {c.tag: c for c in case}
            if "failure" in kids or "error" in kids:
                key = "failed" if "failure" in kids else "errors"
                out[key] += 1
                node = kids.get("failure", kids.get("error"))
                out["failures"].append(f"{name}: {(node.get('message') or '')[:300]}")
            elif "skipped" in kids:
                out["skipped"] += 1
                reason = kids["skipped"].get("message") or ""
                if reason not in out["skip_reasons"]:
                    out["skip_reasons"].append(reason[:200])
            else:
                out["passed"] += 1
    return out


def write_report(report: dict, out: Path) -> None:
    (out / "device_check.json").write_text(json.dumps(report, indent=1, default=str))
    env = report["environment"]
    md = [f"# pydlr device check, {env.get('date_utc')}", ""]
    md.append(f"Device: {env.get('gpu') or 'CPU'} ({env.get('device')}{', quick' if env.get('quick') else ''}); "
              f"torch {env.get('torch')} (CUDA {env.get('torch_cuda')}, cuDNN {env.get('cudnn')}), NumPy "
              f"{env.get('numpy')}, Python {env.get('python')}, {env.get('cpus')} CPUs; pydlr CUDA kernels "
              f"compiled: {(env.get('pydlr_build') or {}).get('cuda')}.")
    md.append("")
    if report.get("build"):
        md += ["## Build", "", "```", report["build"].strip()[-1500:], "```", ""]
    tests = [t for t in report.get("tests", []) if t]
    if tests:
        md += ["## Tests", "", _table(tests, COLUMNS["tests"])]
        for t in tests:
            for f in t.get("failures", []):
                md.append(f"- FAILED {f}")
            for r in t.get("skip_reasons", []):
                md.append(f"- skipped ({t['suite']}): {r}")
        md.append("")
    for name, sec in report["sections"].items():
        md += [f"## {name} ({sec.get('status')}, {sec.get('seconds')} s)", ""]
        facts = {k: v for k, v in sec.items() if k not in ("rows", "status", "seconds")}
        if facts:
            md.append("; ".join(f"{k}: {_fmt(v)}" for k, v in facts.items()))
            md.append("")
        md.append(_table(sec.get("rows", []), COLUMNS.get(name, [])))
    (out / "device_check.md").write_text("\n".join(md))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.environ.get("OUT") or "device_check_out")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when present)")
    p.add_argument("--quick", action="store_true", help="tiny sizes (CI's check that the paths run)")
    p.add_argument("--data", default=None, help="folder with the Fashion-MNIST idx files")
    p.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset")
    p.add_argument("--build-log", default=None)
    p.add_argument("--junit", action="append", default=[], help="SUITE=FILE of a pytest junit XML")
    p.add_argument("--merge", action="store_true", help="keep the sections of an existing report in --out")
    p.add_argument("--section", default=None, help=argparse.SUPPRESS)
    p.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.device is None:
        args.device = "cuda" if _torch().cuda.is_available() else "cpu"
    if args.section:
        return run_child(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"environment": environment(args), "sections": {}, "tests": []}
    old = out / "device_check.json"
    if args.merge and old.is_file():
        previous = json.loads(old.read_text())
        report["sections"] = previous.get("sections", {})
        report["environment"]["date_utc"] = previous.get("environment", {}).get("date_utc")
    if args.build_log and Path(args.build_log).is_file():
        report["build"] = Path(args.build_log).read_text(errors="replace")[-4000:]
    for spec in args.junit:
        suite, _, path = spec.partition("=")
        report["tests"].append(junit_summary(Path(path), suite))
    write_report(report, out)
    names = [s for s in args.sections.split(",") if s]
    unknown = [s for s in names if s not in SECTIONS]
    if unknown:
        p.error(f"--sections: unknown {unknown}; known: {list(SECTIONS)}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            report["sections"][name] = run_section(name, args, Path(tmp))
            write_report(report, out)
    print((out / "device_check.md").read_text())
    failed = [n for n, s in report["sections"].items() if s["status"] != "ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
