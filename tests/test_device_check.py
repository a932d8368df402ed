"""scripts/device_check.sh --device cpu --quick: the GPU check's Python paths run on CI's CPU machine.

Its numbers mean nothing here (tiny sizes, a shared CPU); the test checks that every section runs and reports
the rows the GPU run reports, so the script cannot rot between the rare sessions that have a GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pydlr import ops

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = ("conv", "seed_cnn", "mobilenet", "kmeans", "augment")


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("device_check")
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": ROOT}
    proc = subprocess.run(
        ["bash", os.path.join(ROOT, "scripts", "device_check.sh"), "--device", "cpu", "--quick",
         "--no-build", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, json.loads((out / "device_check.json").read_text())


def test_every_section_runs_on_the_cpu(quick_report):
    _, report = quick_report
    assert report["environment"]["device"] == "cpu"
    assert report["environment"]["pydlr_build"]["cuda"] == ops.build_info()["cuda"]
    for name in SECTIONS:
        section = report["sections"][name]
        assert section["status"] == "ok", (name, section)
        assert section["rows"], name
        assert not [r for r in section["rows"] if "error" in r], (name, section["rows"])


def test_sections_report_their_measurements(quick_report):
    out, report = quick_report
    s = report["sections"]
    conv = s["conv"]["rows"]
    assert {r["layer"] for r in conv} >= {"seed conv1 1->32 @28", "seed conv2 32->64 @13"}
    assert all(r["rel_err"] < 1e-5 and r["auto_picks"] in ("native", "torch") for r in conv)
    impls = {r["impl"] for r in s["seed_cnn"]["rows"]}
    assert {"torch eager (NCHW)", "pydlr fit (float32)"} <= impls
    fit = next(r for r in s["seed_cnn"]["rows"] if r["impl"] == "pydlr fit (float32)")
    assert fit["epoch_s"] > 0 and 0 <= fit["test_accuracy"] <= 1 and fit["over_torch_eager"] > 0
    km = s["kmeans"]["rows"][0]
    assert km["pydlr_inertia"] == pytest.approx(km["sklearn_inertia"], rel=1e-3)  # equal work, same answer
    assert len(s["augment"]["rows"]) == 3
    md = (out / "device_check.md").read_text()
    for name in SECTIONS:
        assert f"## {name} (ok" in md
