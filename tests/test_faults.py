"""Faults survived and files trusted only when they are pydlr's own (docs/reliability.md, "Faults and security").

Ctrl-C during fit and during save, a full disk or unwritable folder during save, truncated and tampered files,
the CPU running out of memory, a data worker killed, pickles posing as weight files on every load path, cache
names that try to leave the cache, shell commands and temporary files.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import re
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

import pydlr
from pydlr import io, layers
from pydlr.errors import InputError, TrainingError
from pydlr.pretrained import registry, zoo
from pydlr.train.callbacks import Callback

ROOT = Path(__file__).resolve().parents[1]


def _model(seed: int = 0) -> pydlr.Sequential:
    torch.manual_seed(seed)
    model = pydlr.Sequential([layers.Input((6,)), layers.Dense(8, activation="relu"),
                              layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def _data(n: int = 96) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


class _Sigint(Callback):
    """Sends the process a real SIGINT (what Ctrl-C does) before batch ``batch`` of epoch ``epoch``."""

    def __init__(self, epoch: int, batch: int):
        self.at = (epoch, batch)

    def before_batch(self):
        if (self.learn.epoch, self.learn.iter) == self.at:
            os.kill(os.getpid(), signal.SIGINT)


def test_sigint_during_fit_keeps_the_checkpoint_and_resume_finishes(tmp_path: Path) -> None:
    x, y = _data()
    ckpt = tmp_path / "run.ckpt"
    model = _model()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=16, epochs=3, verbose=0, seed=1, resume=ckpt, callbacks=[_Sigint(1, 2)])
    with safe_open(str(ckpt), "pt") as f:
        assert json.loads(f.metadata()["meta"])["epoch"] == 1  # epoch 1 had not finished: 1 epoch done
    assert _leftovers(tmp_path) == []
    fresh = _model(seed=9)
    history = fresh.fit(x, y, batch_size=16, epochs=3, verbose=0, seed=1, resume=ckpt)
    assert history.epoch == [0, 1, 2] and len(history.history["loss"]) == 3


@pytest.mark.parametrize("name", ["m.keras", "m_dir"])
def test_interrupted_save_leaves_the_previous_save_intact(tmp_path: Path, name: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / name
    io.save_model(_model(0), path)
    before = {p.name: p.read_bytes() for p in ([path] if path.is_file() else sorted(path.iterdir()))}

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)  # after the bytes are written, before the rename
    with pytest.raises(KeyboardInterrupt):
        io.save_model(_model(1), path)
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in ([path] if path.is_file() else sorted(path.iterdir()))}
    assert after == before
    assert _leftovers(tmp_path) == []
    np.testing.assert_array_equal(io.load_model(path).get_weights()[0], _model(0).get_weights()[0])


@pytest.mark.parametrize("writer", ["save_model", "save_weights", "checkpoint"])
def test_a_full_disk_gives_a_clear_error_and_keeps_the_previous_file(tmp_path: Path, writer: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.safetensors"
    x, y = _data(32)

    def save(model, epochs: int = 1):
        if writer == "save_model":
            io.save_model(model, path)
        elif writer == "save_weights":
            io.save_weights(model, path)
        else:  # the second fit resumes after epoch 1 and checkpoints epoch 2
            model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, resume=path)

    save(_model(0))
    before = path.read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match=r"could not write .*m\.safetensors: No space left on device; nothing was "
                                      r"replaced \(an earlier file at that path is intact\)") as info:
        save(_model(1), epochs=2)
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_an_unwritable_folder_gives_a_clear_error(tmp_path: Path) -> None:
    if not Path("/sys").is_dir() or os.access("/sys", os.W_OK) and _can_write("/sys"):
        pytest.skip("needs a folder nobody can write (/sys)")
    with pytest.raises(OSError, match=r"could not write /sys/m\.keras: Permission denied; nothing was replaced"):
        io.save_model(_model(), "/sys/m.keras")


def _can_write(folder: str) -> bool:
    try:
        Path(folder, ".pydlr-probe").touch()
    except OSError:
        return False
    Path(folder, ".pydlr-probe").unlink()
    return True


def test_truncated_and_tampered_files_are_refused(tmp_path: Path) -> None:
    model = _model()
    for name in ("w.safetensors", "m.keras"):
        path = tmp_path / name
        (io.save_weights if name.startswith("w") else io.save_model)(model, path)
        good = path.read_bytes()
        load = (lambda p: io.load_weights(_model(), p)) if name.startswith("w") else io.load_model
        path.write_bytes(good[: len(good) // 2])
        with pytest.raises(InputError, match="argument `path` must be a safetensors file written by pydlr"):
            load(path)
        tampered = bytearray(good)
        tampered[-5] ^= 0x40  # one bit of the last tensor's data: the header still parses
        path.write_bytes(bytes(tampered))
        with pytest.raises(InputError, match=r"must be an intact pydlr file \(its tensors match the checksum recorded in it\)"):
            load(path)
        path.write_bytes(good)
        load(path)  # the intact file still loads


def test_cpu_out_of_memory_in_fit_suggests_a_smaller_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = _data()
    model = _model()
    dense = model.layers[-1]

    def no_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 1099511627776 bytes. Error code 12 (Cannot allocate memory)")

    monkeypatch.setattr(dense, "forward", no_memory)
    with pytest.raises(TrainingError, match=r"ran out of memory at epoch 1, batch 1: use a smaller batch_size "
                                            r"\(this fit used 32; try 16\)"):
        model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    monkeypatch.undo()
    assert len(model.fit(x, y, batch_size=32, epochs=1, verbose=0).history["loss"]) == 1  # usable again


def test_cpu_out_of_memory_in_predict_suggests_a_smaller_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    x, _ = _data()
    model = _model()
    calls = []

    def no_memory_at_the_second_batch(xb):
        calls.append(len(xb))
        if len(calls) == 2:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1099511627776 bytes.")
        return torch.zeros(len(xb), 3)

    monkeypatch.setattr(model.layers[-1], "forward", no_memory_at_the_second_batch)
    with pytest.raises(MemoryError, match=r"predict: the cpu device ran out of memory at batch 2: use a smaller "
                                          r"batch_size \(this call used 40; try 20\)"):
        model.predict(x, batch_size=40)
    monkeypatch.undo()
    assert model.predict(x, batch_size=40).shape == (96, 3)


def test_a_killed_data_worker_is_named_and_nothing_hangs() -> None:
    from pydlr.data import ArrayBatches, Augment

    x = torch.rand(32, 8, 8, 1)
    data = ArrayBatches(x, torch.arange(32), 4, seed=0, augment=Augment(shift=0.1), workers=1)
    signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(TimeoutError("the pipeline hung")))
    signal.alarm(60)  # a guard: a hang fails the test instead of blocking the suite
    try:
        it = data.epoch(0)
        next(it)
        pid = data._pool.procs[0].pid
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(TrainingError, match=rf"augmentation worker process \(pid {pid}\) died \(killed by "
                                                r"signal 9"):
            for _ in it:
                pass
    finally:
        signal.alarm(0)
        data.close()


_KILLED_PARENT = """
import os, signal, torch
from pydlr.data import Augment
from pydlr.data.workers import AugmentPool
pool = AugmentPool(torch.zeros(8, 4, 4, 1), Augment(flip="horizontal"), 4, 2)
print(" ".join(str(p.pid) for p in pool.procs), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # as a killed R session: no close(), no atexit
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has exited; its new parent reaps it when it will


def test_data_workers_end_with_a_killed_parent(tmp_path) -> None:
    import subprocess
    import sys
    import time

    out, err = tmp_path / "pids.txt", tmp_path / "stderr.txt"
    with out.open("w") as f, err.open("w") as e:  # files, not pipes: live workers would hold a pipe open
        done = subprocess.run([sys.executable, "-c", _KILLED_PARENT], stdout=f, stderr=e, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == -signal.SIGKILL, err.read_text()[-2000:]
    pids = [int(p) for p in out.read_text().split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 30  # a bound on the wait, not a measurement
    while any(_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [p for p in pids if _running(p)]
    for p in alive:  # never leave them behind, whatever the outcome
        os.kill(p, signal.SIGKILL)
    assert alive == []


# ---- security ---------------------------------------------------------------------------------------------
class _Payload:
    """Unpickling this runs ``os.system``: it would create the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".safetensors", ".bin", ".keras"])
def test_a_pickle_posing_as_weights_runs_nothing_on_any_load_path(tmp_path: Path, suffix: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / f"weights{suffix}"
    evil.write_bytes(pickle.dumps({"w": _Payload(marker)}))
    torch_zip = tmp_path / f"zipped{suffix}"
    torch.save({"w": _Payload(marker)}, torch_zip)  # torch's zip format: a pickle inside
    for path in (evil, torch_zip):
        with pytest.raises((InputError, pydlr.errors.NotSupportedError), match="safetensors|pydlr save"):
            io.load_model(path)
        with pytest.raises((InputError, pydlr.errors.NotSupportedError), match="safetensors"):
            io.load_weights(_model(), path)
        # a pretrained source file that is not the registry's: refused by its checksum before reading
        with pytest.raises(registry.ChecksumError, match="sha256"):
            registry.convert("mobilenet_v2", source=path)
        # a pickle planted in the cache: not used (the cache is rebuilt from the verified source)
        monkeypatch.setenv("PYDLR_CACHE", str(tmp_path / "cache"))
        cache = registry.cache_path("mobilenet_v2")
        cache.parent.mkdir(exist_ok=True)
        cache.write_bytes(path.read_bytes())
        assert registry._read_cache("mobilenet_v2", cache) is None
        # a pickle in place of a zoo file: refused by the checksum in its metadata
        folder = tmp_path / "zoo"
        folder.mkdir(exist_ok=True)
        meta = json.loads((zoo.weights_dir() / "seed_cnn_mnist.json").read_text())
        (folder / "seed_cnn_mnist.json").write_text(json.dumps(meta))
        (folder / "seed_cnn_mnist.safetensors").write_bytes(path.read_bytes())
        with pytest.raises(registry.ChecksumError, match="corrupt or was changed"):
            zoo.load("seed_cnn_mnist", folder)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../../etc/passwd", "../mobilenet_v2", "/tmp/x", "mobilenet_v2/../../x"])
def test_cache_and_zoo_names_never_leave_their_folder(tmp_path: Path, name: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYDLR_CACHE", str(tmp_path / "cache"))
    with pytest.raises(InputError, match="argument `name` must be one of"):
        registry.cache_path(name)
    with pytest.raises(InputError, match="`name`"):
        zoo.load(name)
    with pytest.raises(InputError, match="`name`"):
        registry.state_dict(name)
    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").iterdir()) == []


_SOURCES = [*ROOT.joinpath("pydlr").rglob("*.py"), *ROOT.joinpath("r-package", "R").glob("*.R"),
            *ROOT.joinpath("scripts").glob("*.py"), *ROOT.joinpath("bench").glob("*.py")]


def test_no_shell_command_is_built_and_temporary_files_are_made_safely() -> None:
    shell = re.compile(r"shell\s*=\s*True|os\.system\(|os\.popen\(|subprocess\.getoutput|(?<![\w.])system\(")
    unsafe_temp = re.compile(r"tempfile\.mktemp\(|(?<![\w.])mktemp\(|tempfile\(\)")
    found = []
    for path in _SOURCES:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if shell.search(code) or unsafe_temp.search(code):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []
    # the atomic writers create their temporary files next to the target (same file system, private mode)
    for path in ROOT.joinpath("pydlr").rglob("*.py"):
        for call in re.findall(r"tempfile\.mkstemp\([^)]*\)", path.read_text(encoding="utf-8")):
            assert "dir=" in call, f"{path.relative_to(ROOT)}: {call}"
