"""R's ``view_model()``: the live page's server (`pydlr.interpret.live`) in a child Python process.

Inside R, reticulate keeps the lock Python threads need while R waits at its prompt, so a server thread in
R's own Python would answer nothing until the next call into Python. The child process serves instead: the
model is saved (safetensors + JSON) to a temporary folder, the child loads it, serves on 127.0.0.1, prints
its URL on standard output and serves until its standard input closes, which happens on ``close()`` and
also when R ends (the pipe closes with the process), so no server outlives the R session.

Run as ``python -m pydlr.api_r.live FOLDER`` it is the child.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from pydlr.errors import InputError

__all__ = ["close", "start"]

_CHILDREN: dict[int, tuple[subprocess.Popen, str]] = {}
START_TIMEOUT_S = 180


def start(model: Any, data: Any = None, max_maps: int | None = None) -> dict[str, Any]:
    """Check the model and data (as `view_model` does, before any process starts), save them, start the
    child and return ``{"url", "pid"}`` once it serves."""
    from pydlr.interpret.live import ModelProbe
    from pydlr.saving import save_model

    ModelProbe(model, data, max_maps)  # every InputError here, in R's call, before the child exists
    folder = tempfile.mkdtemp(prefix="pydlr-view-")
    try:
        save_model(model, os.path.join(folder, "model"), include_optimizer=False)
        if data is not None:
            np.save(os.path.join(folder, "data.npy"), np.asarray(data, dtype=np.float32), allow_pickle=False)
        args = [sys.executable, "-m", "pydlr.api_r.live", folder] + ([] if max_maps is None else [str(int(max_maps))])
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    line = _first_line(proc)
    if not line.startswith("URL "):
        err = proc.stderr.read() if proc.poll() is not None else ""
        _stop(proc, folder)
        raise RuntimeError(f"the page's server did not start: {line or err.strip()[-2000:]}")
    _CHILDREN[proc.pid] = (proc, folder)
    return {"url": line[4:].strip(), "pid": proc.pid}


def _first_line(proc: subprocess.Popen) -> str:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(START_TIMEOUT_S)
    return box[0] if box else ""


def _stop(proc: subprocess.Popen, folder: str) -> None:
    try:
        proc.stdin.close()
    except OSError:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for stream in (proc.stdout, proc.stderr):
        stream.close()
    shutil.rmtree(folder, ignore_errors=True)


def close(pid: int) -> bool:
    """Stop the child ``pid`` started (idempotent); True when it was running."""
    entry = _CHILDREN.pop(int(pid), None)
    if entry is None:
        return False
    _stop(*entry)
    return True


def running(pid: int) -> bool:
    """Whether the child ``pid`` still serves."""
    entry = _CHILDREN.get(int(pid))
    return entry is not None and entry[0].poll() is None


def _serve(folder: str, max_maps: int | None) -> None:
    from pydlr.interpret.live import ModelProbe, ModelView
    from pydlr.saving import load_model

    model = load_model(os.path.join(folder, "model"), compile=False)
    data_path = Path(folder) / "data.npy"
    data = np.load(data_path, allow_pickle=False) if data_path.exists() else None
    view = ModelView(ModelProbe(model, data, max_maps))
    print(f"URL {view.url}", flush=True)
    sys.stdin.read()  # until the parent closes the pipe or ends
    view.close()


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise InputError("argv", "FOLDER [MAX_MAPS]", sys.argv[1:], "pydlr.api_r.live")
    _serve(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else None)
