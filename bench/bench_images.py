"""Image folders streamed from disk: pydlr's image_dataset_from_directory against its peers, side by side.

Claims (targets):
1. decode + resize + augment + batch from a folder of >= 60,000 PNGs with 2 workers: >= 1.0x torchvision's
   ImageFolder + DataLoader with the same transforms and workers, >= 1.5x Keras' (TensorFlow)
   image_dataset_from_directory + augmentation layers.
2. the seed CNN trained from the folder with on-the-fly augmentation: epoch time <= 1.15x the same training
   from in-memory arrays without augmentation.
3. resident memory grows by < 300 MB while streaming 200,000 files through one pass.
Also: the decoder choice (Pillow vs imageio per PNG).

Transforms everywhere: grayscale, resize 28 -> 32 (bilinear), random horizontal flip, rotation up to 18
degrees (keras factor 0.05), zoom 0.9-1.1; batches of 64, shuffled.
The peers run in their own environment (.venv-peers: scripts/setup_peers.sh) as subprocesses, one at a time,
interleaved with pydlr's passes: torchvision 0.28's datasets.ImageFolder + transforms + DataLoader
(bench/peers/images_torchvision.py) and Keras 3 on TensorFlow (bench/peers/images_keras.py).

Run: source scripts/env.sh && python bench/bench_images.py [--quick]
Folders are made once under /tmp by scripts/make_image_folder.py (60,000 PNGs; 50,000 PNGs x 4 names).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "bench" / "peers"))

from make_image_folder import make_image_folder  # noqa: E402
from peer_common import peers_python  # noqa: E402

from pydlr.data import Augment  # noqa: E402
from pydlr.data.image_dataset import DatasetBatches, image_dataset_from_directory  # noqa: E402

SIZE, BATCH = 32, 64
AUG = Augment(flip="horizontal", rotation=0.05, zoom=0.1)


def ensure_folder(path: Path, limit: int, copies: int = 1) -> Path:
    stamp = path / ".complete"
    if not stamp.exists():
        t = time.perf_counter()
        make_image_folder(path, limit=limit, copies=copies)
        stamp.write_text("ok")
        print(f"# made {path} ({limit * copies} names) in {time.perf_counter() - t:.0f} s", flush=True)
    return path


# ----- decoders -----------------------------------------------------------------------------------
def bench_decoders(folder: Path, n: int = 3000) -> dict[str, float]:
    from PIL import Image

    files = sorted(folder.rglob("*.png"))[:n]
    out = {}

    def pillow(p):
        with Image.open(p) as im:
            return np.asarray(im.convert("L"))

    def imageio_v3(p):
        import imageio.v3 as iio

        return iio.imread(p)

    from pydlr.data.decode import check_image_spec, decode_image

    spec = check_image_spec((28, 28), "grayscale", "bilinear", False, "bench")

    def pydlr_decode(p):
        return decode_image(p, spec)

    for name, fn in (("Pillow Image.open", pillow), ("imageio (v3)", imageio_v3),
                     ("pydlr decode_image (Pillow's C PNG decoder, no chunk parser)", pydlr_decode)):
        fn(files[0])
        t = time.perf_counter()
        for p in files:
            fn(p)
        out[name] = (time.perf_counter() - t) / len(files) * 1e6
    from pydlr.data.decode import decode_pngs

    paths = [str(p) for p in files]
    if all(a is not None for a in decode_pngs(paths[:BATCH], spec)):
        t = time.perf_counter()
        for k in range(0, len(paths), BATCH):
            decode_pngs(paths[k:k + BATCH], spec)
        out[f"pydlr decode_pngs (native, batches of {BATCH}, own size)"] = (time.perf_counter() - t) / len(paths) * 1e6
    return out


def cpu_per_image(folder: Path, n: int = 3000, rounds: int = 3) -> dict[str, list[float]]:
    """CPU microseconds per image of the whole streamed pipeline (decode + resize + augment + batch) in one
    process (workers=0) on one torch thread as in a worker, with the batched native PNG decoder and with
    Pillow for every file, alternated."""
    from pydlr.data import decode

    files = sorted(folder.rglob("*.png"))[:n]
    sub = Path(f"/tmp/pydlr-bench-images-cpu-{n}")
    if not (sub / ".complete").exists():
        for p in files:
            dst = sub / p.parent.name / p.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.exists():
                os.link(p, dst)
        (sub / ".complete").write_text("ok")
    native, threads = decode._native_png, torch.get_num_threads()
    torch.set_num_threads(1)
    out: dict[str, list[float]] = {"native decoder, one call a batch": [], "Pillow, file by file": []}
    try:
        for _ in range(rounds):
            for name, use in (("native decoder, one call a batch", True), ("Pillow, file by file", False)):
                decode._native_png = (lambda: True) if use else (lambda: False)
                ds = image_dataset_from_directory(sub, color_mode="grayscale", image_size=(SIZE, SIZE),
                                                  batch_size=BATCH, seed=1, workers=0, verbose=False).map(AUG)
                c = time.process_time()
                k = sum(int(x.shape[0]) for x, _ in ds)
                out[name].append((time.process_time() - c) / k * 1e6)
    finally:
        decode._native_png = native
        torch.set_num_threads(threads)
    return out


def cpu_breakdown(folder: Path, batches: int = 300, rounds: int = 3) -> dict[str, list[float]]:
    """CPU microseconds per image of the training section's pipeline (28 x 28 grey, no resize, AUG, the
    /255 map) on one torch thread, as in a worker, over the first ``batches`` batches of a pass: the native
    decoding alone, the augmentation alone, the whole batch from the files, and the whole batch from a
    filled cache()."""
    from pydlr.data.decode import decode_pngs
    from pydlr.data.image_workers import load_batch, make_slots

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    ds = image_dataset_from_directory(folder, color_mode="grayscale", image_size=(28, 28), batch_size=BATCH,
                                      seed=1, workers=0, verbose=False)
    out: dict[str, list[float]] = {}

    def timed(name, fn, plan):
        c = time.process_time()
        for idx, seed in plan:
            fn(idx, seed)
        out.setdefault(name, []).append((time.process_time() - c) / (len(plan) * BATCH) * 1e6)

    try:
        for _ in range(rounds):
            for name, d in (("whole batch, from the files", ds), ("whole batch, from cache()", ds.cache())):
                src = DatasetBatches(d.map(AUG).map(lambda xb, yb: (xb / 255.0, yb)))
                plan, job = src._plan(0)[:batches], src.job
                x_out, y_out = make_slots(job, BATCH, 1, False)[0]
                if job.cached is not None:  # fill the cache first: the timed pass is a later epoch's
                    for idx, seed in plan:
                        load_batch(job, idx, seed, x_out, y_out)
                timed(name, lambda idx, seed, j=job, xo=x_out, yo=y_out: load_batch(j, idx, seed, xo, yo), plan)
            paths = [[p.decode() for p in ds._index.paths[idx].tolist()] for idx, _ in plan]
            it = iter(paths)
            timed("native decoding alone (decode_pngs)",
                  lambda idx, seed, it=it: decode_pngs(next(it), ds.spec), plan)
            imgs = torch.from_numpy(decode_pngs(paths[0], ds.spec)).to(torch.float32)
            aug = dataclasses.replace(AUG, value_range=(0.0, 255.0))
            timed("augmentation alone (Augment on a decoded batch)",
                  lambda idx, seed, a=aug, x=imgs: a(x, torch.Generator().manual_seed(seed)), plan)
    finally:
        torch.set_num_threads(threads)
    return out


def epoch_of_batches(folder: Path, rounds: int = 3) -> dict[str, list[float]]:
    """Wall seconds for one epoch of the training section's batches (60,000 files: decode, AUG, the /255 map)
    prepared in the training process (workers=0) on torch's 2 threads, as fit gets them between its steps, with
    no training: on the machine as it is, and with another process busy on one core for the whole pass
    (alternated ``rounds`` times)."""
    ds = image_dataset_from_directory(folder, color_mode="grayscale", image_size=(28, 28), batch_size=BATCH,
                                      seed=1, workers=0, verbose=False)
    src = DatasetBatches(ds.map(AUG).map(lambda xb, yb: (xb / 255.0, yb)))
    out: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name, busy in (("as it is", False), ("another process busy on one core", True)):
            spin = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
            try:
                t = time.perf_counter()
                for _batch in src.epoch(0):
                    pass
                out.setdefault(name, []).append(time.perf_counter() - t)
            finally:
                if spin is not None:
                    spin.kill()
                    spin.wait()
    src.close()
    return out


# ----- throughput ---------------------------------------------------------------------------------
def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the workers, once joined)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def pydlr_pass(folder: Path, workers: int) -> tuple[int, float]:
    ds = image_dataset_from_directory(folder, color_mode="grayscale", image_size=(SIZE, SIZE),
                                      batch_size=BATCH, seed=1, workers=workers, verbose=False).map(AUG)
    src = DatasetBatches(ds)
    t = time.perf_counter()
    n = sum(int(x.shape[0]) for x, _, _ in src.epoch(0))
    dt = time.perf_counter() - t
    src.close()
    return n, dt


def peer_pass(script: str, folder: Path, *options: str) -> tuple[int, float, str, float] | None:
    """One pass of a peer (bench/peers/<script>) in the peers' venv: (images, seconds, versions, CPU s)."""
    py = peers_python()
    if not py.exists():
        print(f"# no peers' venv at {py}: run scripts/setup_peers.sh")
        return None
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the peers' venv has no pydlr
    res = subprocess.run([str(py), str(ROOT / "bench" / "peers" / script), str(folder), "--size", str(SIZE),
                          "--batch", str(BATCH), *options], capture_output=True, text=True, env=env, timeout=1800)
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode != 0 or not line:
        print(f"# {script} failed:", res.stderr[-2000:])
        return None
    d = json.loads(line[-1])
    return d["images"], d["seconds"], ", ".join(f"{k} {v}" for k, v in d["versions"].items()), d["cpu"]


# ----- training -----------------------------------------------------------------------------------
def train_epochs(folder: Path, epochs: int, workers: int, rounds: int = 1) -> dict[str, list[list[float]]]:
    """The seed CNN on the folder's images: from arrays without augmentation vs from the folder with it
    (the folder holds the first N Fashion-MNIST training images, the arrays the same N). The three runs
    alternate ``rounds`` times (A B C A B C ...) so that a change of the machine's load hits all of them;
    each run is a fresh model trained ``epochs`` epochs. Returns {run: [[epoch seconds] per round]} and,
    under the key "<run> CPU", the training process's CPU seconds per epoch (workers not included)."""
    from bench_fit import EpochTimer

    from pydlr import engine
    from pydlr.data import load_fashion_mnist
    from pydlr.models import seed_cnn
    from pydlr.train import losses

    (x, y), _ = load_fashion_mnist()
    x = x.astype(np.float32)[..., None] / 255.0
    ds = image_dataset_from_directory(folder, color_mode="grayscale", image_size=(28, 28), batch_size=BATCH,
                                      seed=1, workers=workers, verbose=False)
    x, y = x[:ds.num_files], y[:ds.num_files]
    runs = (("arrays, no augmentation", None),
            (f"folder + augmentation, {ds.workers} worker(s)", False),
            (f"folder + augmentation, {ds.workers} worker(s), cache()", True))
    out: dict[str, list[list[float]]] = {}
    for _ in range(rounds):
        for name, cache in runs:
            torch.manual_seed(0)
            model = seed_cnn(model_class=engine.Sequential)
            model.compile(optimizer="adam", loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                          metrics=["accuracy"])
            timer = EpochTimer()
            if cache is None:
                model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0, seed=1, callbacks=[timer])
            else:  # a new dataset each run: an in-memory cache is filled by the run's own first epoch
                data = (ds.cache() if cache else ds).map(AUG).map(lambda xb, yb: (xb / 255.0, yb))
                model.fit(data, epochs=epochs, verbose=0, seed=1, callbacks=[timer])
            out.setdefault(name, []).append(timer.times)
            out.setdefault(f"{name} CPU", []).append(timer.cpu)
    return out


# ----- memory -------------------------------------------------------------------------------------
def _rss_mb(pid: int) -> float:
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):  # proportional: shared pages are not counted twice
                return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0


def _tree_mb() -> float:
    me = os.getpid()
    try:
        kids = open(f"/proc/{me}/task/{me}/children").read().split()
    except OSError:
        kids = []
    return _rss_mb(me) + sum(_rss_mb(int(k)) for k in kids)


def memory_pass(folder: Path, workers: int) -> dict[str, float]:
    ds = image_dataset_from_directory(folder, color_mode="grayscale", image_size=(SIZE, SIZE),
                                      batch_size=BATCH, seed=1, workers=workers, verbose=False).map(AUG)
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(_tree_mb())
            time.sleep(0.25)

    before = _tree_mb()
    src = DatasetBatches(ds)
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t = time.perf_counter()
    n = 0
    for i, (x, _, _) in enumerate(src.epoch(0)):
        n += int(x.shape[0])
        if i == 20:
            early = _tree_mb()
    dt = time.perf_counter() - t
    stop.set()
    th.join()
    src.close()
    return {"files": ds.num_files, "images": n, "seconds": dt, "before_mb": before, "early_mb": early,
            "peak_mb": max(samples), "end_mb": samples[-1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small folders (a smoke run, not the claim)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--train-workers", type=int, default=None,
                    help="decoding processes of the training runs (default: the dataset's, none on 2 cores)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--train-rounds", type=int, default=1, help="alternated rounds of the three training runs")
    ap.add_argument("--skip-keras", action="store_true")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the throughput contenders")
    ap.add_argument("--sections", default="decoders,cpu,loading,throughput,training,memory",
                    help="comma-separated subset of decoders,cpu,loading,throughput,training,memory")
    args = ap.parse_args()
    sections = set(args.sections.split(","))
    torch.set_num_threads(2)
    n60, n200 = (3000, 2500) if args.quick else (60000, 50000)
    folder = ensure_folder(Path(f"/tmp/pydlr-bench-images-{n60}"), n60)
    big = ensure_folder(Path(f"/tmp/pydlr-bench-images-{n200}x4"), n200, copies=4)
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}, GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset)')}; "
          "the machine is shared with other jobs: ratios are noisy")

    if "decoders" in sections:
        dec = bench_decoders(folder)
        print("\n| decoder (28x28 grey PNG) | us per image |\n|---|---|")
        for k, v in dec.items():
            print(f"| {k} | {v:.0f} |")
    if "cpu" in sections:
        cpu = cpu_per_image(folder)
        print("\n| one process, decode + resize + augment + batch | CPU us per image (rounds) |\n|---|---|")
        for k, v in cpu.items():
            print(f"| {k} | {', '.join(f'{t:.0f}' for t in v)} |")
        parts = cpu_breakdown(folder)
        print("\n| the training section's pipeline (28x28, no resize), one thread | CPU us per image (rounds) |"
              "\n|---|---|")
        for k, v in parts.items():
            print(f"| {k} | {', '.join(f'{t:.1f}' for t in v)} |")
    if "loading" in sections:
        times = epoch_of_batches(folder)
        print(f"\n| an epoch of batches ({n60:,} files, 2 threads, no training) | s (rounds) | median |\n|---|---|---|")
        for k, v in times.items():
            print(f"| {k} | {', '.join(f'{t:.2f}' for t in v)} | {float(np.median(v)):.2f} |")
    if "throughput" in sections:
        throughput(folder, n60, args)
    if "training" in sections:
        training(folder, n60, args)
    if "memory" in sections:
        memory(big, args)


def throughput(folder: Path, n60: int, args) -> None:
    """Each contender ``--rounds`` times, interleaved (A B C A B C ...) so that a change of the machine's
    load hits all of them; the table shows each one's median round."""
    runs: dict[str, list[tuple[int, float, float]]] = {}

    def ours(name, fn):
        c = _cpu_s()
        n, dt = fn(folder, args.workers)
        runs.setdefault(name, []).append((n, dt, _cpu_s() - c))

    peers = {"torchvision ImageFolder + transforms + DataLoader": ("images_torchvision.py", "--workers"),
             "Keras image_dataset_from_directory + layers": ("images_keras.py", "--threads")}
    if args.skip_keras:
        peers.pop("Keras image_dataset_from_directory + layers")
    for _ in range(args.rounds):
        ours("pydlr image_dataset_from_directory + Augment", pydlr_pass)
        for name, (script, flag) in peers.items():
            res = peer_pass(script, folder, flag, str(args.workers))
            if res:
                runs.setdefault(f"{name} ({res[2]})", []).append((res[0], res[1], res[3]))
    rows = [(name, *sorted(r, key=lambda t: t[1])[len(r) // 2]) for name, r in runs.items()]
    base = rows[0][1] / rows[0][2]
    print(f"\n| one pass over {n60:,} PNGs, {args.workers} workers (median of {args.rounds}) | images | s "
          "| images/s | pydlr vs it | CPU s (all processes) |")
    print("|---|---|---|---|---|---|")
    for name, n, dt, cpu in rows:
        print(f"| {name} | {n:,} | {dt:.1f} | {n / dt:,.0f} | {base / (n / dt):.2f}x | {cpu:.1f} |")


def training(folder: Path, n60: int, args) -> None:
    tr = train_epochs(folder, args.epochs, args.train_workers, args.train_rounds)
    names = [k for k in tr if not k.endswith(" CPU")]
    print(f"\n| seed CNN, {n60:,} images, batch {BATCH}, {args.train_rounds} round(s) | epoch times (s), round by "
          "round | last epoch, median | training process CPU s, last epoch, median |\n|---|---|---|---|")
    last = {}
    for k in names:
        last[k] = float(np.median([r[-1] for r in tr[k]]))
        cpu = float(np.median([r[-1] for r in tr[f"{k} CPU"]]))
        times = " / ".join(", ".join(f"{t:.1f}" for t in r) for r in tr[k])
        print(f"| {k} | {times} | {last[k]:.2f} | {cpu:.1f} |")
    a, f, fc = (last[k] for k in names)
    paired = [[r[-1] / b[-1] for r, b in zip(tr[k], tr[names[0]], strict=True)] for k in names[1:]]
    print(f"ratio folder+augmentation / arrays (last epoch, medians): {f / a:.2f}x, with cache() {fc / a:.2f}x "
          f"(target <= 1.15x); round by round: {', '.join(f'{v:.2f}' for v in paired[0])} and "
          f"{', '.join(f'{v:.2f}' for v in paired[1])}")


def memory(big: Path, args) -> None:
    mem = memory_pass(big, args.workers)
    print(f"\n| streaming {mem['files']:,} files, {args.workers} workers | MB |\n|---|---|")
    for k in ("before_mb", "early_mb", "peak_mb", "end_mb"):
        print(f"| {k[:-3]} (process + workers, PSS) | {mem[k]:.0f} |")
    print(f"growth peak - before: {mem['peak_mb'] - mem['before_mb']:.0f} MB, peak - after 20 batches: "
          f"{mem['peak_mb'] - mem['early_mb']:.0f} MB (target < 300 MB); {mem['images']:,} images in "
          f"{mem['seconds']:.0f} s")


if __name__ == "__main__":
    main()
