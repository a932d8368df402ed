"""Training and inference throughput of pydlr against its peers, on the seed CNN and full Fashion-MNIST.

The same model (Conv2D(32,3,relu) -> MaxPool(2) -> Conv2D(64,3,relu) -> MaxPool(2) -> Conv2D(64,3,relu) ->
Flatten -> Dense(64,relu) -> Dense(10)), data (60,000 training images scaled to [0, 1], 10,000 test images),
batch 64, Adam 1e-3 and thread count for every row. Each row runs in its own subprocess, one after the
other (never two at once), because the peers live in another virtual environment (keras and tensorflow need
NumPy 2; the project's .venv keeps NumPy 1, see scripts/setup_peers.sh):

    row           interpreter                         runner
    keras-tf      .venv-peers  (Keras 3 + TensorFlow)  bench/peers/keras_run.py --backend tensorflow
    pydlr-py      .venv        (import pydlr)          bench/peers/pydlr_py.py
    pydlr-py-bf16 .venv                                bench/peers/pydlr_py.py --precision bfloat16
    pydlr-r       Rscript      (library(pydlr))        bench/peers/pydlr_r.R
    torch-nchw    .venv        (torch only)            bench/peers/torch_loop.py --layout nchw
    torch-cl      .venv                                bench/peers/torch_loop.py --layout channels_last
    torch-cl-bf16 .venv                                ... --layout channels_last --bf16 (only with --only)
    keras-torch   .venv-peers  (Keras 3 + torch)       bench/peers/keras_run.py --backend torch
    lightning     .venv-peers  (Lightning 2)           bench/peers/lightning_run.py

Every subprocess gets the same allocator setting (GLIBC_TUNABLES, from scripts/env.sh unless already set),
the same OpenMP waiting (scripts/env.sh's short spin, GOMP_SPINCOUNT=10000, unless --omp-wait says otherwise) and thread settings (OMP_NUM_THREADS etc. in its environment; each runner also sets its framework's intra-
and inter-op thread counts). The table gives seconds per epoch (epoch 1, and the median of later epochs),
process CPU seconds per epoch (a noise indicator: on a shared machine wall time grows while CPU time does
not), test accuracy, and predict() throughput on the 10,000 test images, with ratios against Keras on
TensorFlow (what keras3 R users run). Results also go to out/bench_peers-<time>.json.

Usage (after `source scripts/env.sh`; the peers' venv is created on first use by scripts/setup_peers.sh):

    python bench/bench_peers.py                 # 5 epochs, every row (~15 min on a quiet 2-core machine)
    python bench/bench_peers.py --epochs 1 --only keras-tf,pydlr-py,torch-cl
    python bench/bench_peers.py --rounds 3      # each row 3 times, round-robin; medians reported
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS_DIR = ROOT / "bench" / "peers"
REFERENCE = "keras-tf"
DEFAULT_TUNABLES = "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184"


@dataclass(frozen=True)
class Row:
    """One line of the table: how to launch it and what it needs."""

    key: str
    label: str
    interpreter: str  # "project", "peers" or "R"
    runner: str
    args: tuple[str, ...] = field(default_factory=tuple)


ROWS = (
    Row("keras-tf", "Keras 3 on TensorFlow", "peers", "keras_run.py", ("--backend", "tensorflow")),
    Row("pydlr-py", "pydlr from Python (fit)", "project", "pydlr_py.py"),
    Row("pydlr-py-bf16", "pydlr from Python, bf16 autocast", "project", "pydlr_py.py",
        ("--precision", "bfloat16")),
    Row("pydlr-r", "pydlr from R (fit)", "R", "pydlr_r.R"),
    Row("torch-nchw", "torch loop, NCHW", "project", "torch_loop.py", ("--layout", "nchw")),
    Row("torch-cl", "torch loop, channels-last", "project", "torch_loop.py", ("--layout", "channels_last")),
    Row("torch-cl-bf16", "torch loop, channels-last, bf16 autocast", "project", "torch_loop.py",
        ("--layout", "channels_last", "--bf16")),
    Row("keras-torch", "Keras 3 on torch", "peers", "keras_run.py", ("--backend", "torch")),
    Row("lightning", "Lightning Trainer", "peers", "lightning_run.py"),
)
ROW_KEYS = tuple(r.key for r in ROWS)
# torch-cl-bf16 runs only when asked (--only): bf16 autocast made the torch loop's step 10-17x slower on
# this machine (oneDNN's bf16 backward-weights kernels), hours for 5 epochs; see docs/performance.md.
DEFAULT_ROWS = tuple(k for k in ROW_KEYS if k != "torch-cl-bf16")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=5, help="epochs per row (5 for the accuracy comparison)")
    p.add_argument("--only", default=",".join(DEFAULT_ROWS),
                   help=f"comma-separated rows, in the order given (of {', '.join(ROW_KEYS)}; "
                        "default: all but torch-cl-bf16)")
    p.add_argument("--skip", default="", help="comma-separated rows to leave out")
    p.add_argument("--rounds", type=int, default=1, help="run the whole sequence this many times")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--interop", type=int, default=2)
    p.add_argument("--predict-batch", type=int, default=256, help="batch size of the timed predict()")
    p.add_argument("--omp-wait", choices=["short-spin", "PASSIVE", "ACTIVE", "default"], default="short-spin",
                   help="OpenMP waiting for every row: 'short-spin' = GOMP_SPINCOUNT=10000 as scripts/env.sh "
                        "sets it; PASSIVE/ACTIVE = OMP_WAIT_POLICY; 'default' = libgomp's own. Long spinning "
                        "made torch-based rows 15-30x slower on an oversubscribed machine, PASSIVE costs "
                        "~50%% on an idle one (docs/performance.md); TensorFlow's thread pool reads neither")
    p.add_argument("--limit", type=int, default=0,
                   help="smoke test only: train on the first LIMIT images (0: all 60,000)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds one row may take")
    p.add_argument("--peers-venv", type=Path,
                   default=Path(os.environ.get("PYDLR_PEERS_VENV", ROOT / ".venv-peers")))
    p.add_argument("--python", type=Path, default=Path(os.environ.get("PYDLR_PYTHON", ROOT / ".venv/bin/python")),
                   help="the project's interpreter (with pydlr and torch)")
    p.add_argument("--r-lib", default=os.environ.get("PYDLR_R_LIB", ""),
                   help="an R library holding pydlr, put first on R_LIBS for the R row")
    p.add_argument("--json", type=Path, default=None, help="where to save the results (default out/...)")
    args = p.parse_args(argv)
    args.rows = _select_rows(args.only, args.skip)
    if not args.rows:
        p.error("no rows left to run (--only/--skip)")
    if args.epochs < 1 or args.rounds < 1:
        p.error(f"--epochs and --rounds must be >= 1; received {args.epochs} and {args.rounds}")
    return args


def _select_rows(only: str, skip: str) -> list[Row]:
    by_key = {r.key: r for r in ROWS}
    wanted = [k.strip() for k in only.split(",") if k.strip()]
    skipped = {k.strip() for k in skip.split(",") if k.strip()}
    unknown = [k for k in [*wanted, *skipped] if k not in by_key]
    if unknown:
        raise SystemExit(f"--only/--skip: unknown row(s) {unknown}; expected some of {list(ROW_KEYS)}")
    return [by_key[k] for k in wanted if k not in skipped]


def child_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment every runner starts with: allocator and thread settings, identical for all rows."""
    env = dict(os.environ)
    env.setdefault("GLIBC_TUNABLES", DEFAULT_TUNABLES)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        env[var] = str(args.threads)
    env["TF_NUM_INTEROP_THREADS"] = str(args.interop)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("GOMP_SPINCOUNT", None)
    if args.omp_wait == "short-spin":
        env["GOMP_SPINCOUNT"] = "10000"
    elif args.omp_wait != "default":
        env["OMP_WAIT_POLICY"] = args.omp_wait
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("VIRTUAL_ENV", None)
    return env


def ensure_peers_venv(args: argparse.Namespace) -> None:
    """Create or check the peers' venv (a no-op taking < 1 s when its stamp is current)."""
    env = dict(os.environ, PYDLR_PEERS_VENV=str(args.peers_venv))
    subprocess.run(["bash", str(ROOT / "scripts" / "setup_peers.sh")], check=True, env=env)


def command(row: Row, args: argparse.Namespace, out: Path) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run `row`, writing its JSON result to `out`."""
    env = child_env(args)
    common = ["--epochs", str(args.epochs), "--threads", str(args.threads), "--interop", str(args.interop),
              "--predict-batch", str(args.predict_batch), "--limit", str(args.limit), "--out", str(out),
              *row.args]
    runner = str(PEERS_DIR / row.runner)
    if row.interpreter == "R":
        if args.r_lib:
            env["R_LIBS"] = os.pathsep.join(p for p in (args.r_lib, env.get("R_LIBS", "")) if p)
        env["PYDLR_BENCH_PEERS_DIR"] = str(PEERS_DIR)
        return ["Rscript", runner, *common], env
    if row.interpreter == "project":
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        return [str(args.python), runner, *common], env
    return [str(args.peers_venv / "bin" / "python"), runner, *common], env


def run_row(row: Row, args: argparse.Namespace, workdir: Path, round_no: int) -> dict:
    """Run one row in its own subprocess; return its result, or {"error": ...} with the reason."""
    out = workdir / f"{row.key}-{round_no}.json"
    cmd, env = command(row, args, out)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    print(f"--- {row.key} (round {round_no + 1}/{args.rounds}, load {load0:.1f}): {' '.join(cmd)}", flush=True)
    try:
        proc = subprocess.run(cmd, cwd=PEERS_DIR, env=env, timeout=args.timeout,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout:.0f} s"}
    except FileNotFoundError as e:
        return {"error": f"cannot start: {e}"}
    total = time.perf_counter() - t0
    tail = proc.stdout.strip().splitlines()[-15:]
    if proc.returncode != 0 or not out.exists():
        print("\n".join(tail), flush=True)
        last = next((ln for ln in reversed(tail) if ln.strip()), "no output")
        return {"error": f"exit {proc.returncode}: {last.strip()[:160]}"}
    print(tail[-1] if tail else "", flush=True)
    result = json.loads(out.read_text())
    result.update(process_s=total, load_before=load0, load_after=os.getloadavg()[0])
    return result


def summarize(results: list[dict]) -> dict:
    """Medians over rounds of one row's figures (a row that failed every round keeps the first error)."""
    ok = [r for r in results if "error" not in r]
    if not ok:
        return {"error": results[0]["error"]}
    first = [r["epoch_wall_s"][0] for r in ok]
    later = [w for r in ok for w in r["epoch_wall_s"][1:]]
    later_cpu = [c for r in ok for c in r["epoch_cpu_s"][1:]] or [r["epoch_cpu_s"][0] for r in ok]
    ips = [r["predict_images_per_s"] for r in ok if r.get("predict_images_per_s")]
    return {
        "epoch1_s": statistics.median(first),
        "later_s": statistics.median(later) if later else None,
        "steady_s": _steady(ok),
        "cpu_s": statistics.median(later_cpu),
        "test_acc": statistics.median(r["test_acc"] for r in ok),
        "predict_ips": statistics.median(ips) if ips else None,
        "runs": len(ok),
        "detail": ok,
    }


def _steady(ok: list[dict]) -> float:
    """Median over later epochs (epoch 1 when only one) of wall time minus the runner's measured stall."""
    values = []
    for r in ok:
        stalls = r.get("epoch_stall_s") or [0.0] * len(r["epoch_wall_s"])
        pairs = list(zip(r["epoch_wall_s"], stalls, strict=True))
        values += [w - st for w, st in (pairs[1:] or pairs)]
    return statistics.median(values)


def _epoch_s(s: dict) -> float | None:
    """The per-epoch figure the ratios use: later epochs when there are any, else epoch 1."""
    if "error" in s:
        return None
    return s["later_s"] if s["later_s"] is not None else s["epoch1_s"]


def _fmt(v: float | None, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def table(rows: list[Row], summary: dict[str, dict]) -> str:
    """The results as a Markdown table, with ratios against Keras on TensorFlow."""
    ref = summary.get(REFERENCE, {"error": "not run"})
    ref_epoch, ref_ips = _epoch_s(ref), ref.get("predict_ips")
    ref_acc = ref.get("test_acc")
    ref_cpu = ref.get("cpu_s")
    head = ("| row | epoch 1 s | later epochs s | x Keras-TF | steady epoch s | x Keras-TF | CPU s/epoch "
            "| x Keras-TF (CPU) | test acc | vs Keras-TF (pts) | predict img/s | x Keras-TF |")
    lines = [head, "|" + "---|" * 12]
    ref_steady = ref.get("steady_s")
    for row in rows:
        s = summary[row.key]
        if "error" in s:
            lines.append(f"| {row.label} | did not run: {s['error']} |" + " |" * 10)
            continue
        epoch = _epoch_s(s)
        ratio = epoch / ref_epoch if epoch and ref_epoch else None
        steady_ratio = s["steady_s"] / ref_steady if ref_steady else None
        cpu_ratio = s["cpu_s"] / ref_cpu if ref_cpu else None
        ips_ratio = s["predict_ips"] / ref_ips if s["predict_ips"] and ref_ips else None
        dacc = 100 * (s["test_acc"] - ref_acc) if ref_acc is not None else None
        lines.append(
            f"| {row.label} | {s['epoch1_s']:.1f} | {_fmt(s['later_s'], '.1f')} | {_fmt(ratio, '.2f')} "
            f"| {s['steady_s']:.1f} | {_fmt(steady_ratio, '.2f')} "
            f"| {s['cpu_s']:.1f} | {_fmt(cpu_ratio, '.2f')} | {100 * s['test_acc']:.2f}% | {_fmt(dacc, '+.2f')} "
            f"| {_fmt(s['predict_ips'], '.0f')} | {_fmt(ips_ratio, '.2f')} |")
    return "\n".join(lines)


def machine() -> dict:
    """What the figures were taken on."""
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), "unknown")
    return {"cpu": model, "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def main(argv: list[str] | None = None) -> int:
    """Run the selected rows sequentially, print the table, save the JSON."""
    args = parse_args(argv)
    env = child_env(args)
    info = machine()
    print(f"# bench_peers: {info['date']}, {info['cpu']}, {info['cores']} cores, load {os.getloadavg()}")
    print(f"# epochs {args.epochs}, rounds {args.rounds}, batch 64, Adam 1e-3, threads {args.threads} "
          f"(interop {args.interop}), predict batch {args.predict_batch}")
    if args.limit:
        print(f"# SMOKE TEST: training on the first {args.limit} images only; timings are not comparable")
    print(f"# GLIBC_TUNABLES={env['GLIBC_TUNABLES']!r}, OMP_WAIT_POLICY={env.get('OMP_WAIT_POLICY', '(unset)')}, GOMP_SPINCOUNT={env.get('GOMP_SPINCOUNT', '(unset)')} "
          "(the same for every row)")
    if any(r.interpreter == "peers" for r in args.rows):
        ensure_peers_venv(args)
    if any(r.interpreter == "R" for r in args.rows) and shutil.which("Rscript") is None:
        print("# Rscript not found: the R row will fail")
    workdir = ROOT / "out" / "bench_peers"
    workdir.mkdir(parents=True, exist_ok=True)
    path = args.json or workdir.parent / f"bench_peers-{time.strftime('%Y%m%d-%H%M%S')}.json"
    raw: dict[str, list[dict]] = {r.key: [] for r in args.rows}
    for round_no in range(args.rounds):
        for row in args.rows:
            raw[row.key].append(run_row(row, args, workdir, round_no))
            # Save after every row, so a run stopped early still leaves the rows it finished.
            done = [r for r in args.rows if raw[r.key]]
            summary = {r.key: summarize(raw[r.key]) for r in done}
            text = table(done, summary)
            path.write_text(json.dumps({"machine": info, "glibc_tunables": env["GLIBC_TUNABLES"],
                                        "omp_wait_policy": env.get("OMP_WAIT_POLICY", "(unset)"),
                                        "gomp_spincount": env.get("GOMP_SPINCOUNT", "(unset)"),
                                        "args": {k: str(v) for k, v in vars(args).items() if k != "rows"},
                                        "summary": summary, "table": text}, indent=1))
    print(f"\n{text}\n")
    print("x Keras-TF: seconds per epoch (median of later epochs; epoch 1 when only one) relative to Keras on "
          "TensorFlow in this run; steady epoch: the same minus the stall the runner measured before an epoch's "
          "first batch (Keras-TF idles ~10 s there in many epochs on this machine; rows that report no batch "
          "times count as stall-free): the conservative ratio; (CPU): process CPU seconds, steadier than wall time on a shared "
          "machine. Targets for pydlr: <= 0.80 for training, >= 1.2x images/s for predict.")
    print(f"saved {path}")
    return 0 if all("error" not in s for s in summary.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
