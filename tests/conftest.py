"""Shared pytest set-up: deterministic, 2-thread torch, as on CI's machine."""

import os

import pytest
import torch
from hypothesis import settings

# Property-based tests: "ci" (the default) draws the same examples on every run and keeps no example
# database, so a failure reproduces and a run writes nothing; HYPOTHESIS_PROFILE=dev draws new ones.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield


@pytest.fixture
def one_thread():
    """One torch thread for tests of tiny models and for gradcheck's thousands of tiny ops: they gain
    nothing from 2 threads, and on a shared 2-core machine OpenMP barriers make every op wait for a
    descheduled thread. (_deterministic_torch sets 2 again before the next test.)"""
    torch.set_num_threads(1)
    yield


def _train_step(model, x, y):
    torch.manual_seed(1)  # the same dropout mask in every run
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.fixture
def train_step():
    """One training step's loss and gradients (cross-entropy, dropout seeded): for comparing a fused model
    with its layer-by-layer twin."""
    return _train_step


@pytest.fixture
def project_root() -> str:
    return ROOT


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory: pytest.TempPathFactory):
    """A fresh pretrained-weights cache folder (PYDLR_CACHE) for one test module: its first load converts."""
    path = tmp_path_factory.mktemp("pydlr-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("PYDLR_CACHE", str(path))
    yield path
    mp.undo()
