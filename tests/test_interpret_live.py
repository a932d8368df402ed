"""The live page (pydlr.interpret.view_model): its JSON endpoints on the shipped MNIST seed CNN, its bad
input, its clean shutdown, and the page itself in headless Chromium, drawn on with real pointer input."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from chromium_driver import Chromium, chromium_path

import pydlr
from pydlr import interpret, layers, pretrained
from pydlr.data.samples import example_image
from pydlr.errors import InputError
from pydlr.interpret.live import ModelProbe

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mnist_cnn():
    return pretrained.load("seed_cnn_mnist")


def drawing(points: list[tuple[float, float]], size: int = 280, width: int = 22) -> str:
    """A white-on-black PNG data URL of a polyline (coordinates in [0, 1])."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size))
    ImageDraw.Draw(img).line([(x * size, y * size) for x, y in points], fill="white", width=width,
                             joint="curve")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


ONE = [(0.52, 0.15), (0.5, 0.85)]
RING = [(0.5 + 0.25 * np.sin(t), 0.5 - 0.33 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 40)]


def post(url: str, payload: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url + "run", data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_endpoints_answer_drawings_data_and_classes(mnist_cnn):
    (_x, _y), (xt, yt) = pydlr.data.load_mnist()
    data = xt[:8].astype(np.float32)[..., None] / 255.0
    with interpret.view_model(mnist_cnn, data=data, open=False) as view:
        info = json.loads(urllib.request.urlopen(view.url + "info", timeout=30).read())
        assert info["drawable"] and info["input_shape"] == [28, 28, 1] and len(info["thumbnails"]) == 8
        assert [(v["name"], v["kind"]) for v in info["layers"]] == [
            (m.name, "conv" if isinstance(m, layers.Conv2D) else "dense") for m in mnist_cnn.layers
            if isinstance(m, (layers.Conv2D, layers.Dense))]
        page = urllib.request.urlopen(view.url, timeout=30).read().decode()
        assert "<script>" in page and "http" not in page.replace(view.url, "")  # nothing fetched from afar
        status, one = post(view.url, {"drawing": drawing(ONE)})
        assert status == 200 and one["predicted"] == 1
        status, ring = post(view.url, {"drawing": drawing(RING)})
        assert status == 200 and ring["predicted"] == 0
        shapes = [(v["n"], v["h"], v["w"]) for v in ring["layers"]]
        assert shapes == [(32, 26, 26), (64, 11, 11), (64, 3, 3), (1, 1, 64), (1, 1, 10)]
        dense = np.frombuffer(base64.b64decode(ring["layers"][-1]["data"]), np.uint8)
        assert dense.argmax() == 0  # the output layer's largest unit is the predicted class
        assert sum(t["probability"] for t in ring["top"]) <= 1.0 + 1e-6
        # picking an image of data gives the model's own prediction of it, Grad-CAM explains class 3
        status, picked = post(view.url, {"index": 2, "class_index": 3})
        assert picked["predicted"] == int(mnist_cnn.predict(data[2:3]).argmax())
        assert picked["explained"]["index"] == 3 and (picked["cam"]["h"], picked["cam"]["w"]) == (28, 28)
        heat = interpret.grad_cam(mnist_cnn, data[2:3], class_index=3)[0]
        got = np.frombuffer(base64.b64decode(picked["cam"]["data"]), np.uint8).reshape(28, 28) / 255.0
        assert np.abs(got - heat).max() < 0.01  # the page's heatmap is grad_cam's
        # a dark "1" on white paper, uploaded as a JPEG: inverted for this light-on-dark model
        from PIL import Image, ImageOps

        paper = ImageOps.invert(Image.open(io.BytesIO(base64.b64decode(drawing(ONE).split(",")[1]))))
        buf = io.BytesIO()
        paper.resize((600, 480)).save(buf, "JPEG")
        status, upload = post(view.url, {"upload": "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()})
        assert status == 200 and upload["predicted"] == 1
        for bad, word in [({"index": 99}, "index"), ({"drawing": drawing(ONE), "class_index": 10}, "class_index"),
                          ({"upload": "data:image/png;base64,AAAA"}, "image"), ({"nothing": 1}, "request")]:
            status, answer = post(view.url, bad)
            assert status == 400 and word in answer["error"], answer
    assert view.closed
    with pytest.raises(OSError):
        urllib.request.urlopen(view.url + "info", timeout=5)


def test_bad_input_before_any_server(mnist_cnn):
    threads = threading.active_count()
    dense = pydlr.Sequential([layers.Input((4,)), layers.Dense(2, activation="softmax")])
    with pytest.raises(InputError, match="an image model"):
        interpret.view_model(dense, open=False)
    with pytest.raises(InputError, match=r"\(n, 28, 28, 1\)"):
        interpret.view_model(mnist_cnn, data=np.zeros((3, 32, 32, 3)), open=False)
    with pytest.raises(InputError, match="max_maps"):
        interpret.view_model(mnist_cnn, max_maps=0, open=False)
    assert threading.active_count() == threads


def test_upload_uses_imagenet_preprocessing_for_pretrained(module_cache):
    model = pydlr.applications.MobileNetV2(weights="imagenet")
    probe = ModelProbe(model)
    assert probe.mode == "torch" and len([v for v in probe.views if v[2] == "conv"]) == 12
    cat = example_image("chelsea")
    x, shown = probe.from_upload(np.asarray(cat, np.uint8))
    np.testing.assert_allclose(x, pydlr.applications.preprocess_inputs(model, cat)[0], atol=1e-5)
    out = probe.run(x[None])
    assert out["top"][0]["index"] in (281, 282, 285)  # a cat class
    assert shown.shape == (224, 224, 3)


def test_nothing_outlives_the_interpreter(tmp_path: Path):
    """A script that leaves a thread-served page and a child-process page open (R's way) exits at once,
    and neither server is left: the port refuses and the child process is gone."""
    script = tmp_path / "leave_open.py"
    script.write_text(
        "from pydlr import interpret, pretrained\n"
        "from pydlr.api_r import live\n"
        "m = pretrained.load('seed_cnn_mnist')\n"
        "v = interpret.view_model(m, open=False)\n"
        "h = live.start(m)\n"
        "print(v.url, h['url'], h['pid'], flush=True)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    thread_url, child_url, pid = done.stdout.split()
    for url in (thread_url, child_url):
        with pytest.raises(OSError):
            urllib.request.urlopen(url + "info", timeout=5)
    for _ in range(50):  # the child sees its input close with the parent and ends
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the page's child process {pid} outlived its parent")


@pytest.mark.skipif(chromium_path() is None, reason="no chromium on this machine")
def test_page_in_headless_chromium_reads_a_drawn_one_and_zero(mnist_cnn, tmp_path: Path):
    """Real pointer input (DevTools Input.dispatchMouseEvent) draws a "1", then a ring, on the page's
    canvas; the page's own prediction is read back after each, and a screenshot is kept (for the docs)."""
    with interpret.view_model(mnist_cnn, open=False) as view:
        browser = Chromium(view.url, width=1200, height=1400)
        try:
            browser.wait_for("window.pydlrView && window.pydlrView.ready === true")
            box = browser.evaluate("(() => { const r = document.getElementById('draw').getBoundingClientRect();"
                                   " return [r.left, r.top, r.width, r.height]; })()")

            def stroke(points):
                xy = [(box[0] + x * box[2], box[1] + y * box[3]) for x, y in points]
                browser.mouse("mousePressed", *xy[0])
                for a, b in zip(xy, xy[1:], strict=False):
                    for t in (0.5, 1.0):
                        browser.mouse("mouseMoved", a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))
                browser.mouse("mouseReleased", *xy[-1])
                return browser.wait_for("(() => { const v = window.pydlrView; return v.done > 0 && "
                                        "v.done === v.requested && !v.error && v; })()")

            one = stroke(ONE)
            assert one["predicted"] == 1
            assert browser.evaluate("document.getElementById('prediction').dataset.class") == "1"
            assert browser.evaluate("document.querySelectorAll('#layers canvas').length") == 32 + 64 + 64 + 2
            browser.evaluate("document.getElementById('clear').click()")
            ring = stroke(RING)
            assert ring["predicted"] == 0
            assert browser.evaluate("document.getElementById('prediction').dataset.class") == "0"
            print(f"page update after a stroke: {ring['lastMs']:.0f} ms request to drawn page, answer after "
                  f"{ring['serverMs']:.0f} ms, model {ring['modelMs']:.1f} ms")
            png = browser.screenshot()
            assert png[:8] == b"\x89PNG\r\n\x1a\n"
            # docs/view_model.png is this screenshot: PYDLR_WRITE_DOCS=1 refreshes it
            folder = ROOT / "docs" if os.environ.get("PYDLR_WRITE_DOCS") == "1" else tmp_path
            (folder / "view_model.png").write_bytes(png)
        finally:
            browser.close()
        assert browser.process.returncode is not None
