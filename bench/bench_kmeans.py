"""k-means, equal work: pydlr's KMeans vs scikit-learn's and R's stats::kmeans, side by side in one process.

0. The machine's limits: a streaming read of the data (torch's sum over the same float32 matrix, a STREAM-like
   read) and a large float32 GEMM's GFLOP/s; from them the two floors of a Lloyd iteration on the data: reading
   it once, and the 2 n d k multiply-adds of its distances.
1. Lloyd iterations from the same starting centers (scikit-learn's k-means++ draw), tol = 0, 15 and 45
   iterations (the table shows the counts run): ms per iteration = (t45 - t15) / 30, fixed cost = t15 - 15 x
   that. Every row computes exact Lloyd (the same partitions): pydlr's default ("auto": Hamerly's bounds on the
   CPU, rows whose center cannot have changed are not read) and its plain "lloyd" (every distance, every
   iteration); scikit-learn's "lloyd" (its default) and "elkan" (Elkan's bounds). R's stats::kmeans
   (algorithm "Lloyd", through rpy2) from the same centers: R's own timing of kmeans() (the matrix crosses to
   R before the clock starts), R stops early when no label changes.
2. k-means++ seeding alone, k = 10: both greedy with 2 + log(k) candidates a step (pydlr draws with torch's
   generator, scikit-learn with NumPy's: other centers from the same seed); row norms included on both sides.
3. Whole fits with the same n_init (k-means++, tol 1e-4, max_iter 300), seeds 0..reps-1: time, iterations,
   inertia ratio (< 1: pydlr's partition is tighter); R's Hartigan-Wong (its default) beside.
4. Synthetic blobs (k = 10, n_init 1, seed 0): 1,000,000 x 64 (KMeans) and 10,000,000 x 16 (MiniBatchKMeans,
   batch 4096, against scikit-learn's MiniBatchKMeans); time and inertia over all rows.

Runs alternate between the libraries (each repetition runs every method once) so background load hits them
alike; medians over --reps. --quick: 10,000 Fashion-MNIST rows, blobs of 100,000 x 64 and 1,000,000 x 16, one
repetition. Run: ``source scripts/env.sh && python bench/bench_kmeans.py [--quick] [--reps 3] [--no-r]``. Say
whether the machine was shared: ratios on a loaded machine are noisy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from sklearn.cluster import KMeans as SkKMeans
from sklearn.cluster import MiniBatchKMeans as SkMiniBatchKMeans
from sklearn.cluster import kmeans_plusplus

from pydlr.cluster import KMeans, MiniBatchKMeans
from pydlr.cluster._kmeans import _kmeans_plusplus, _row_sq_norms
from pydlr.data import load_fashion_mnist

K = 10


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _alternating(methods: dict[str, Callable[[], tuple[float, object]]], reps: int) -> dict[str, tuple[float, object]]:
    """Median seconds and the last result of each method, the methods taking turns within each repetition."""
    times: dict[str, list[float]] = {name: [] for name in methods}
    last: dict[str, object] = {}
    for _ in range(reps):
        for name, fn in methods.items():
            seconds, last[name] = fn()
            times[name].append(seconds)
    return {name: (statistics.median(times[name]), last[name]) for name in methods}


def limits_table(x: np.ndarray) -> tuple[float, float]:
    """Streaming-read GB/s over ``x`` and float32 GEMM GFLOP/s (best of 5 each); prints the floors."""
    xt = torch.from_numpy(x)
    xt.sum()
    read = min(_timed(xt.sum)[0] for _ in range(5))
    a = torch.randn(2048, 2048)
    a @ a
    gemm = min(_timed(lambda: a @ a)[0] for _ in range(5))
    gbs, gflops = x.nbytes / read / 1e9, 2 * 2048**3 / gemm / 1e9
    flops = 2 * x.shape[0] * x.shape[1] * K
    print(f"\n0. Limits ({torch.get_num_threads()} threads): streaming read {gbs:.1f} GB/s, float32 GEMM "
          f"{gflops:.0f} GFLOP/s")
    print(f"   a Lloyd iteration on {x.shape[0]} x {x.shape[1]}, k = {K}: reading the data once "
          f"({x.nbytes / 1e6:.0f} MB) {1e3 * read:.1f} ms; its {flops / 1e9:.2f} GFLOP of distances at the GEMM "
          f"rate {1e3 * flops / gflops / 1e9:.1f} ms")
    return gbs, gflops


def lloyd_table(x: np.ndarray, reps: int, with_r: bool, counts: tuple[int, int]) -> None:
    start = kmeans_plusplus(x, K, random_state=0)[0]
    lo, hi = counts
    methods = {}
    for iters in counts:
        methods[f"pydlr/{iters}"] = lambda i=iters: _timed(
            lambda: KMeans(K, init=start, max_iter=i, tol=0.0).fit(x))
        methods[f"pydlr lloyd/{iters}"] = lambda i=iters: _timed(
            lambda: KMeans(K, init=start, max_iter=i, tol=0.0, algorithm="lloyd").fit(x))
        methods[f"scikit-learn/{iters}"] = lambda i=iters: _timed(
            lambda: SkKMeans(K, init=start, n_init=1, max_iter=i, tol=0.0, algorithm="lloyd").fit(x))
        methods[f"scikit-learn elkan/{iters}"] = lambda i=iters: _timed(
            lambda: SkKMeans(K, init=start, n_init=1, max_iter=i, tol=0.0, algorithm="elkan").fit(x))
        if with_r:
            import pydlr.r

            def r_lloyd(i: int = iters) -> tuple[float, object]:
                fit = pydlr.r.kmeans(x, start, max_iter=i, algorithm="Lloyd")
                return fit["seconds"], fit
            methods[f"R stats::kmeans Lloyd/{iters}"] = r_lloyd
    res = _alternating(methods, reps)
    print("\n1. Lloyd from the same k-means++ centers, tol = 0 (medians); pydlr = its default, algorithm \"auto\" "
          "(Hamerly's bounds on the CPU); scikit-learn = algorithm \"lloyd\" (its default)")
    print(f"| method | {lo} it ms | {hi} it ms | ms / iteration | fixed ms | iterations run | inertia after {hi} |")
    print("|---|---|---|---|---|---|---|")
    per = {}
    for name in dict.fromkeys(m.split("/")[0] for m in methods):
        (t15, f15), (t45, f45) = res[f"{name}/{lo}"], res[f"{name}/{hi}"]
        i15, i45 = _n_iter(f15), _n_iter(f45)
        per_it = (t45 - t15) / (i45 - i15) if i45 > i15 else float("nan")
        per[name] = (per_it, t15 - i15 * per_it)
        print(f"| {name} | {1e3 * t15:.0f} | {1e3 * t45:.0f} | {1e3 * per_it:.2f} | {1e3 * per[name][1]:.0f} | "
              f"{i15} / {i45} | {_inertia(f45):.6e} |")
    sk, py = per["scikit-learn"], per["pydlr"]
    print(f"per iteration scikit-learn / pydlr: {sk[0] / py[0]:.2f}x (target >= 2.5x); against scikit-learn's "
          f"elkan {per['scikit-learn elkan'][0] / py[0]:.2f}x; pydlr's plain lloyd against scikit-learn's "
          f"{sk[0] / per['pydlr lloyd'][0]:.2f}x; fixed cost pydlr {1e3 * py[1]:.0f} ms vs scikit-learn "
          f"{1e3 * sk[1]:.0f} ms")
    if "R stats::kmeans Lloyd" in per:
        print(f"per iteration R Lloyd / pydlr: {per['R stats::kmeans Lloyd'][0] / py[0]:.1f}x")


def _n_iter(fit: object) -> int:
    return int(fit["n_iter"]) if isinstance(fit, dict) else int(fit.n_iter_)


def _inertia(fit: object) -> float:
    return float(fit["inertia"]) if isinstance(fit, dict) else float(fit.inertia_)


def seeding_table(x: np.ndarray, reps: int) -> None:
    xt = torch.from_numpy(x)

    def ours() -> tuple[float, object]:
        return _timed(lambda: _kmeans_plusplus(xt, _row_sq_norms(xt), K, torch.Generator().manual_seed(0)))

    res = _alternating({"pydlr": ours, "scikit-learn": lambda: _timed(
        lambda: kmeans_plusplus(x, K, random_state=0)[0])}, reps)
    pot = {name: float(torch.cdist(xt, torch.as_tensor(c)).min(dim=1).values.double().square().sum())
           for name, (_, c) in res.items()}
    print(f"\n2. k-means++ seeding, k = {K}, 2 + log(k) candidates a step (medians; potential = inertia of the seeds)")
    print("| method | ms | potential |\n|---|---|---|")
    for name, (seconds, _) in res.items():
        print(f"| {name} | {1e3 * seconds:.1f} | {pot[name]:.4e} |")
    print(f"speed-up: {res['scikit-learn'][0] / res['pydlr'][0]:.2f}x (target >= 2x)")


def whole_fit_table(x: np.ndarray, n_inits: list[int], reps: int, with_r: bool) -> None:
    print("\n3. Whole fits, k-means++, same n_init, tol 1e-4, max_iter 300 (medians over seeds 0..reps-1)")
    print("| n_init | pydlr s | scikit-learn s | speed-up | iterations pydlr / scikit-learn | inertia pydlr / "
          "scikit-learn |" + (" R Hartigan-Wong s | inertia pydlr / R |" if with_r else ""))
    print("|---|---|---|---|---|---|" + ("---|---|" if with_r else ""))
    for n_init in n_inits:
        rows: dict[str, list] = {"p": [], "s": [], "r": []}
        for seed in range(reps):
            rows["p"].append(_timed(lambda s=seed, m=n_init: KMeans(K, n_init=m, random_state=s).fit(x)))
            rows["s"].append(_timed(lambda s=seed, m=n_init: SkKMeans(K, n_init=m, random_state=s).fit(x)))
            if with_r:
                import pydlr.r

                fit = pydlr.r.kmeans(x, K, n_init=n_init, max_iter=300, seed=seed)
                rows["r"].append((fit["seconds"], fit))
        med = {key: statistics.median(t for t, _ in v) for key, v in rows.items() if v}
        ratio = statistics.median(p.inertia_ / s.inertia_ for (_, p), (_, s) in zip(rows["p"], rows["s"], strict=True))
        iters = (statistics.median(p.n_iter_ for _, p in rows["p"]), statistics.median(s.n_iter_ for _, s in rows["s"]))
        line = (f"| {n_init} | {med['p']:.2f} | {med['s']:.2f} | {med['s'] / med['p']:.2f}x | {iters[0]:.0f} / "
                f"{iters[1]:.0f} | {ratio:.4f} |")
        if with_r:
            r_ratio = statistics.median(p.inertia_ / r["inertia"] for (_, p), (_, r) in zip(rows["p"], rows["r"],
                                                                                          strict=True))
            line += f" {med['r']:.2f} | {r_ratio:.4f} |"
        print(line)


def blobs_table(n_lloyd: int, n_minibatch: int) -> None:
    from sklearn.datasets import make_blobs

    print("\n4. Synthetic blobs, k = 10, n_init 1, seed 0 (one run each; inertia over all rows)")
    print("| data | method | s | iterations | inertia |\n|---|---|---|---|---|")
    x = make_blobs(n_lloyd, n_features=64, centers=K, random_state=0)[0].astype(np.float32)
    res = _alternating({"pydlr KMeans": lambda: _timed(lambda: KMeans(K, random_state=0).fit(x)),
                        "scikit-learn KMeans": lambda: _timed(lambda: SkKMeans(K, n_init=1, random_state=0).fit(x))},
                       1)
    for name, (seconds, m) in res.items():
        print(f"| {n_lloyd:,} x 64 | {name} | {seconds:.2f} | {m.n_iter_} | {m.inertia_:.5e} |")
    del x
    x = make_blobs(n_minibatch, n_features=16, centers=K, random_state=0)[0].astype(np.float32)
    res = _alternating({
        "pydlr MiniBatchKMeans": lambda: _timed(lambda: MiniBatchKMeans(K, batch_size=4096, random_state=0).fit(x)),
        "scikit-learn MiniBatchKMeans": lambda: _timed(
            lambda: SkMiniBatchKMeans(K, batch_size=4096, n_init=1, random_state=0).fit(x)),
    }, 1)
    for name, (seconds, m) in res.items():
        print(f"| {n_minibatch:,} x 16 | {name} | {seconds:.2f} | {m.n_iter_} | {m.inertia_:.5e} |")


def _r_available() -> bool:
    try:
        import pydlr.r  # noqa: F401
    except Exception:  # noqa: BLE001 - any failure to start R means: no R rows
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--n-init", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--no-r", action="store_true", help="leave out R's stats::kmeans rows")
    parser.add_argument("--quick", action="store_true",
                        help="10,000 rows, blobs of 100,000 x 64 and 1,000,000 x 16, 1 repetition, n_init 1")
    args = parser.parse_args()
    (x_train, _), _ = load_fashion_mnist()
    x = x_train.reshape(len(x_train), -1).astype(np.float32)
    sizes, counts = (1_000_000, 10_000_000), (15, 45)
    if args.quick:  # 10,000 rows converge in ~35 iterations: 5 and 15
        x, args.reps, args.n_init, sizes, counts = x[:10_000], 1, [1], (100_000, 1_000_000), (5, 15)
    with_r = not args.no_r and _r_available()
    print(f"k-means, k = {K}, Fashion-MNIST {x.shape[0]} x {x.shape[1]} float32; torch threads "
          f"{torch.get_num_threads()}; GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT', '(unset)')}; "
          f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset)')}; load average at start "
          f"{os.getloadavg()[0]:.1f}; medians of {args.reps}; R rows: {with_r}")
    limits_table(x)
    lloyd_table(x, args.reps, with_r, counts)
    seeding_table(x, args.reps)
    whole_fit_table(x, args.n_init, args.reps, with_r)
    blobs_table(*sizes)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
