"""k-means, equal work: pydlr's torch KMeans vs scikit-learn's (and R's stats::kmeans) on Fashion-MNIST 60,000 x 784.

Three tables, each with both libraries doing the same work in one process, runs alternating so background
load hits both alike, medians over --reps:

1. Lloyd iterations from the same starting centers (scikit-learn's k-means++ draw), tol = 0, 15 and 45
   iterations (both checked to run exactly that many): the per-iteration time is (t45 - t15) / 30 and the
   fixed cost t15 - 15 x that. R's stats::kmeans (Lloyd) from the same centers with --r.
2. k-means++ seeding alone (pydlr's seeding vs ``sklearn.cluster.kmeans_plusplus``), k = 10.
3. Whole fits with the same n_init (k-means++, tol 1e-4, max_iter 300): time, iterations, inertia ratio
   (< 1: pydlr's partition is tighter); R's Hartigan-Wong with --r.

With --large: 1,000,000 x 64 synthetic blobs (KMeans) and 10,000,000 x 16 (MiniBatchKMeans), against
scikit-learn's KMeans and MiniBatchKMeans. Targets (issue "Deep learning or not?"): Lloyd iterations >= 2.5x
faster than scikit-learn's, fixed cost no higher, seeding >= 2x, whole fits >= 2x at equal or lower inertia.

Run: ``source scripts/env.sh && python bench/bench_kmeans.py [--reps 3] [--n-init 1 3] [--r] [--large]
[--quick]``. Say whether the machine was shared: ratios on a loaded machine are noisy.
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
from pydlr.cluster._kmeans import _kmeans_plusplus, _Plan, _row_sq_norms
from pydlr.data import load_fashion_mnist


def _median_time(fn: Callable[[], object], reps: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(reps):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def lloyd_table(x: np.ndarray, reps: int, with_r: bool) -> None:
    start = kmeans_plusplus(x, 10, random_state=0)[0]
    rows = {}
    for iters in (15, 45):
        t_p, p = _median_time(lambda i=iters: KMeans(10, init=start, max_iter=i, tol=0.0).fit(x), reps)
        t_s, s = _median_time(lambda i=iters: SkKMeans(10, init=start, n_init=1, max_iter=i, tol=0.0,
                                                        algorithm="lloyd").fit(x), reps)
        rows[iters] = {"pydlr": (t_p, p.n_iter_), "scikit-learn": (t_s, s.n_iter_)}
        if with_r:
            import pydlr.r

            fits = [pydlr.r.kmeans(x, start, max_iter=iters, algorithm="Lloyd") for _ in range(reps)]
            rows[iters]["R Lloyd"] = (statistics.median(f["seconds"] for f in fits), fits[0]["n_iter"])
    print("\n1. Lloyd from the same k-means++ centers, tol = 0")
    print(f"{'method':>14} {'15 it ms':>9} {'45 it ms':>9} {'ms/it':>7} {'fixed ms':>9} {'iters':>7}")
    per = {}
    for method in rows[15]:
        (t15, i15), (t45, i45) = rows[15][method], rows[45][method]
        per_it = (t45 - t15) / (i45 - i15) if i45 > i15 else float("nan")
        per[method] = (per_it, t15 - i15 * per_it)
        print(f"{method:>14} {1e3 * t15:>9.1f} {1e3 * t45:>9.1f} {1e3 * per_it:>7.2f} {1e3 * per[method][1]:>9.1f} "
              f"{i15:>3}/{i45:<3}")
    sk, py = per["scikit-learn"], per["pydlr"]
    print(f"speed-up per iteration (scikit-learn / pydlr): {sk[0] / py[0]:.2f}x (target >= 2.5x); fixed cost "
          f"{1e3 * py[1]:.0f} vs {1e3 * sk[1]:.0f} ms")


def seeding_table(x: np.ndarray, reps: int) -> None:
    xt = torch.from_numpy(x)

    def ours() -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        plan = _Plan(xt.shape[0], xt.device, 8192)
        try:
            return _kmeans_plusplus(xt, _row_sq_norms(xt), 10, generator, plan)
        finally:
            plan.close()

    t_p, _ = _median_time(ours, reps)
    t_s, _ = _median_time(lambda: kmeans_plusplus(x, 10, random_state=0), reps)
    print("\n2. k-means++ seeding, k = 10 (row norms included for pydlr)")
    print(f"pydlr {1e3 * t_p:.1f} ms, scikit-learn {1e3 * t_s:.1f} ms: {t_s / t_p:.2f}x (target >= 2x)")


def whole_fit_table(x: np.ndarray, n_inits: list[int], reps: int, with_r: bool) -> None:
    print("\n3. Whole fits, k-means++, same n_init, tol 1e-4, max_iter 300 (median over seeds 0..reps-1)")
    print(f"{'n_init':>6} {'pydlr s':>8} {'sklearn s':>9} {'speed-up':>8} {'iters p/s':>10} {'inertia p/s':>11}"
          + (f" {'R H-W s':>8}" if with_r else ""))
    for n_init in n_inits:
        res = {"p": [], "s": [], "ip": [], "is": [], "np": [], "ns": [], "r": []}
        for seed in range(reps):
            start = time.perf_counter()
            p = KMeans(10, n_init=n_init, random_state=seed).fit(x)
            res["p"].append(time.perf_counter() - start)
            start = time.perf_counter()
            s = SkKMeans(10, n_init=n_init, random_state=seed).fit(x)
            res["s"].append(time.perf_counter() - start)
            res["ip"].append(p.inertia_)
            res["is"].append(s.inertia_)
            res["np"].append(p.n_iter_)
            res["ns"].append(s.n_iter_)
            if with_r:
                import pydlr.r

                res["r"].append(pydlr.r.kmeans(x, 10, n_init=n_init, max_iter=300, seed=seed)["seconds"])
        med = {k: statistics.median(v) for k, v in res.items() if v}
        ratio = statistics.median(a / b for a, b in zip(res["ip"], res["is"], strict=True))
        print(f"{n_init:>6} {med['p']:>8.2f} {med['s']:>9.2f} {med['s'] / med['p']:>7.2f}x "
              f"{med['np']:>4.0f}/{med['ns']:<5.0f} {ratio:>11.4f}" + (f" {med['r']:>8.2f}" if with_r else ""))


def large_table(reps: int) -> None:
    from sklearn.datasets import make_blobs

    print("\n4. Large synthetic blobs (k = 10, n_init 1, seed 0)")
    x, _ = make_blobs(1_000_000, n_features=64, centers=10, random_state=0)
    x = x.astype(np.float32)
    for name, make in (("pydlr KMeans", lambda: KMeans(10, random_state=0)),
                       ("sklearn KMeans", lambda: SkKMeans(10, n_init=1, random_state=0))):
        t, m = _median_time(lambda mk=make: mk().fit(x), reps)
        print(f"1e6 x 64   {name:>22}: {t:7.2f} s, inertia {m.inertia_:.4e}, {m.n_iter_} iterations")
    del x
    x, _ = make_blobs(10_000_000, n_features=16, centers=10, random_state=0)
    x = x.astype(np.float32)
    for name, make in (("pydlr MiniBatchKMeans", lambda: MiniBatchKMeans(10, batch_size=4096, random_state=0)),
                       ("sklearn MiniBatchKMeans", lambda: SkMiniBatchKMeans(10, batch_size=4096, n_init=1,
                                                                               random_state=0))):
        t, m = _median_time(lambda mk=make: mk().fit(x), 1)
        print(f"1e7 x 16   {name:>22}: {t:7.2f} s, inertia {m.inertia_:.4e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--n-init", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--r", action="store_true", help="add R's stats::kmeans rows (rpy2 and the R package)")
    parser.add_argument("--large", action="store_true", help="add 1e6 x 64 and 1e7 x 16 synthetic blobs")
    parser.add_argument("--quick", action="store_true", help="10,000 rows, 1 rep, n_init 1 (a smoke run)")
    args = parser.parse_args()
    (x_train, _), _ = load_fashion_mnist()
    x = x_train.reshape(len(x_train), -1).astype(np.float32)
    if args.quick:
        x, args.reps, args.n_init = x[:10_000], 1, [1]
    print(f"k-means, k = 10, Fashion-MNIST {x.shape[0]} x {x.shape[1]} float32; torch threads "
          f"{torch.get_num_threads()}; GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT', '(unset)')}; "
          f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset)')}; load average "
          f"{os.getloadavg()[0]:.1f}; medians of {args.reps}")
    lloyd_table(x, args.reps, args.r)
    seeding_table(x, args.reps)
    whole_fit_table(x, args.n_init, args.reps, args.r)
    if args.large:
        large_table(1)


if __name__ == "__main__":
    main()
