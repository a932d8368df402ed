"""pydlr's caching allocator for torch's CPU tensors (native/cpu_allocator.cpp, pydlr.ops.set_cpu_cache): on
after import, freed blocks of 4 KiB and more come back for the next request of their size, what it keeps stays
within its limit, training gives the same weights bit for bit with and without it, and it survives switching,
forking and running out of its limit."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from pydlr import ops
from pydlr.errors import InputError

FOUR_MB = 1 << 20  # float32 values


@pytest.fixture
def cache_on():
    was = ops.cpu_cache_info()["enabled"] == 1
    ops.set_cpu_cache(True)
    yield
    ops.set_cpu_cache(was)


def in_subprocess(code: str, **env: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_on_after_import_unless_the_environment_says_0():
    code = "import pydlr.ops as o; print(o.cpu_cache_info()['enabled'])"
    assert in_subprocess(code, PYDLR_CPU_CACHE_MB="") == "1"
    assert in_subprocess(code, PYDLR_CPU_CACHE_MB="0") == "0"


def test_a_freed_block_serves_the_next_request_of_its_size(cache_on):
    ops.cpu_cache_clear()
    a = torch.empty(FOUR_MB)
    address = a.data_ptr()
    assert address % 64 == 0
    del a
    kept = ops.cpu_cache_info()
    assert kept["cached_bytes"] >= 4 * FOUR_MB
    b = torch.full((FOUR_MB,), 3.0)  # the same size: the same block, and its values are the new ones
    assert b.data_ptr() == address
    assert ops.cpu_cache_info()["hits"] == kept["hits"] + 1
    assert ops.cpu_cache_info()["cached_bytes"] == kept["cached_bytes"] - 4 * FOUR_MB  # 4 MiB: its own bucket
    assert bool((b == 3.0).all())
    z = torch.zeros(1000, 1000)  # zeros() still zeroes a reused block
    del z
    assert float(torch.zeros(1000, 1000).abs().sum()) == 0.0


def test_small_blocks_go_to_malloc(cache_on):
    ops.cpu_cache_clear()
    before = ops.cpu_cache_info()
    for _ in range(100):
        torch.empty(100)  # 400 bytes
    after = ops.cpu_cache_info()
    assert after["cached_bytes"] == 0 and after["misses"] == before["misses"]


def test_what_it_keeps_stays_within_its_limit():
    code = ("import torch, pydlr.ops as o\n"
            "a = torch.empty(300_000); b = torch.empty(100_000); del a, b\n"  # 1.2 MB + 0.4 MB, limit 1 MiB
            "i = o.cpu_cache_info(); print(i['limit_bytes'], i['cached_bytes'])")
    limit, cached = map(int, in_subprocess(code, PYDLR_CPU_CACHE_MB="1").split())
    assert limit == 1 << 20
    assert 400_000 <= cached <= limit


def test_switching_off_gives_blocks_back_and_frees_later_ones(cache_on):
    kept = torch.empty(FOUR_MB)  # handed out by the cache, freed after the switch
    del_later = torch.empty(FOUR_MB)
    ops.set_cpu_cache(False)
    info = ops.cpu_cache_info()
    assert info["enabled"] == 0 and info["cached_bytes"] == 0
    del del_later  # back to malloc, not kept
    assert ops.cpu_cache_info()["cached_bytes"] == 0
    other = torch.ones(FOUR_MB)  # torch's own allocator again
    assert float(other.sum()) == FOUR_MB
    ops.set_cpu_cache(True)
    del kept
    assert ops.cpu_cache_info()["cached_bytes"] >= 4 * FOUR_MB


def _child_allocates(queue) -> None:
    # 16 KB tensors: served by the cache, and below torch's parallel grain (OpenMP's threads do not survive a
    # fork, with or without the cache)
    total = 0.0
    for _ in range(50):
        total += float(torch.ones(4096).sum())
    queue.put(total)


def test_a_forked_process_allocates_and_frees(cache_on):
    torch.empty(FOUR_MB)  # a kept block the child inherits
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_allocates, args=(queue,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == 50 * 4096


def test_torch_profiler_sees_its_blocks(cache_on):
    # A block served from the cache is still an allocation to the profiler's memory columns, as with torch's own
    # allocator (they read 0 for every operator when the cache did not report its blocks).
    from torch.profiler import ProfilerActivity, profile

    x = torch.randn(256, 1024)
    hits = ops.cpu_cache_info()["hits"]
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        for _ in range(3):
            (x @ x.T).relu_()
    usage = {e.key: e.cpu_memory_usage for e in prof.key_averages()}
    assert usage["aten::mm"] == 3 * 256 * 256 * 4  # three 256 x 256 float32 results
    assert ops.cpu_cache_info()["hits"] > hits  # the later results reused the first ones' blocks


def test_training_gives_the_same_weights_with_and_without_it():
    from test_train_engine import quadrant_data, small_model

    def train(cached: bool) -> list[np.ndarray]:
        ops.set_cpu_cache(cached)
        torch.manual_seed(0)
        x, y = quadrant_data(256)
        m = small_model()
        m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        m.fit(x, y, epochs=2, batch_size=32, verbose=0, seed=0)
        return [w.copy() for w in m.get_weights()]

    was = ops.cpu_cache_info()["enabled"] == 1
    try:
        with_cache, without = train(True), train(False)
    finally:
        ops.set_cpu_cache(was)
    assert all(np.array_equal(a, b) for a, b in zip(with_cache, without, strict=True))


def test_bad_argument():
    with pytest.raises(InputError, match="`enabled` must be True or False"):
        ops.set_cpu_cache("yes")
