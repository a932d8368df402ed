"""A mixed script: Python drives R through rpy2, that R calls pydlr through reticulate, results come back.

It runs as its own Python process, as a user's script would, so the test also proves the process exits
cleanly (rpy2's atexit hook, which aborts once R has called back into Python, is unregistered by pydlr.r).
Everything happens in ONE process and ONE Python interpreter: reticulate, inside the R that rpy2 embeds,
finds the interpreter already running and uses it (the script checks that by identity).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    r'''
    import json, sys
    import numpy as np
    import pydlr.r as pr

    marker = object()
    sys.modules["__main__"].bridge_marker_id = id(marker)
    x = np.arange(12, dtype=np.float64).reshape(3, 4)
    run_in_r = pr.r("""
    function(m) {
      library(pydlr)
      t <- to_torch(m)  # R's matrix viewed by torch, through reticulate
      same_memory <- reticulate::py_str(t$data_ptr()) == sprintf("%.0f", pydlr:::.bridge_address(m))
      img <- to_torch(array(as.double(1:32), c(1, 4, 4, 2)), dtype = "float32")  # NHWC
      torch <- reticulate::import("torch", convert = FALSE)
      ops <- reticulate::import("pydlr.ops", convert = FALSE)
      w <- torch$ones(c(1L, 2L, 3L, 3L), dtype = torch$float32)
      conv <- ops$conv2d(img$permute(c(0L, 3L, 1L, 2L)), w)  # torch.ops.pydlr.conv2d, NCHW
      main <- reticulate::import_main(convert = FALSE)
      list(colsums = from_py(t$sum(0L)), conv = from_py(conv), same_memory = same_memory,
           marker_id = reticulate::py_str(main$bridge_marker_id))
    }
    """)
    res = run_in_r(pr.to_r(x))
    out = {
        "colsums": pr.from_r(res.rx2("colsums")).tolist(),
        "conv": pr.from_r(res.rx2("conv")).tolist(),
        "same_memory": bool(res.rx2("same_memory")[0]),
        "same_interpreter": res.rx2("marker_id")[0] == str(id(marker)),
    }
    print("RESULT " + json.dumps(out))
    '''
)


def test_python_drives_r_which_calls_pydlr_back_in_one_process():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]  # a clean exit: no abort from rpy2's endr
    lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip().startswith("RESULT ")]
    assert lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(lines[0][len("RESULT "):])
    assert out["same_interpreter"] is True
    assert out["same_memory"] is True
    assert out["colsums"] == [12.0, 15.0, 18.0, 21.0]  # column sums of arange(12).reshape(3, 4)
    img = torch.arange(1, 33, dtype=torch.float32).reshape(2, 4, 4, 1).permute(3, 2, 1, 0)  # (c,w,h,n) -> NHWC
    expected = F.conv2d(img.permute(0, 3, 1, 2), torch.ones(1, 2, 3, 3))
    assert torch.equal(torch.tensor(out["conv"]), expected)


PARK_SCRIPT = textwrap.dedent(
    r'''
    import json, os, threading, time
    import pydlr.r as pr
    from pydlr.bridge.rpy2 import _park_reticulate_poller

    pr.r("function() { library(pydlr); reticulate::py_eval('1 + 1') }")()  # reticulate attaches to us

    def states():
        me = threading.get_native_id()
        out = {}
        for tid in os.listdir("/proc/self/task"):
            if int(tid) != me:
                with open(f"/proc/self/task/{tid}/syscall") as f:
                    out[tid] = f.read().split(" ", 1)[0]
        return out

    time.sleep(0.6)  # let reticulate's poller settle into its sleep
    before = states()
    _park_reticulate_poller()
    time.sleep(0.3)
    print("STATES " + json.dumps({"before": before, "after": states()}))
    '''
)


def test_reticulate_poller_is_parked_at_exit():
    """reticulate 1.28 starts a thread that keeps calling Py_AddPendingCall every 250 ms; after the interpreter is
    finalised that call segfaults (1 exit in 10 before the fix). pydlr.r parks it at exit: the one thread
    sleeping in clock_nanosleep must end up in pause() (syscall 34) and stay there."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", PARK_SCRIPT], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip().startswith("STATES ")]
    assert lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    states = json.loads(lines[0][len("STATES "):])
    sleepers = [tid for tid, call in states["before"].items() if call in ("35", "230")]
    assert len(sleepers) == 1, states  # reticulate's poller, and nothing else sleeps in nanosleep
    assert states["after"][sleepers[0]] == "34", states  # parked in pause()
    assert all(states["after"][t] == c for t, c in states["before"].items() if t not in sleepers), states


HYGIENE_SCRIPT = textwrap.dedent(
    r'''
    import json, sys
    import pydlr

    lazy = "rpy2" not in sys.modules and "pydlr.r" not in sys.modules
    R = "the user's own R"
    pydlr.r.r("function() { library(pydlr); pydlr::set_random_seed(1) }")()  # R calls back into pydlr
    try:
        pydlr.r.r("stop('boom-once')")
    except Exception as err:
        print("CAUGHT", err)
    print("RESULT " + json.dumps({"lazy": lazy, "R": globals().get("R"), "r_injected": "r" in globals()}))
    '''
)


def test_pydlr_r_leaves_the_users_namespace_and_console_alone():
    """pydlr.r is reachable after `import pydlr` (rpy2 imported only then); reticulate attaching to this
    interpreter neither deletes a global `R` nor adds `r`; R errors are printed once; rpy2's obsolete
    reticulate warning is not printed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", HYGIENE_SCRIPT], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    output = proc.stdout + proc.stderr
    lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip().startswith("RESULT ")]
    assert lines, output[-3000:]
    assert json.loads(lines[0][len("RESULT "):]) == {"lazy": True, "R": "the user's own R", "r_injected": False}
    assert output.count("boom-once") == 1, output[-3000:]
    assert "only fixed recently" not in output, output[-3000:]
