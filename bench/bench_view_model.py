"""The live page's latency per stroke: the shipped MNIST seed CNN in `pydlr.interpret.view_model`, drawn on in
headless Chromium with real pointer input (DevTools over a pipe, as tests/test_interpret_live.py does).

Each stroke is a press, moves and a release; the page sends the canvas on every move it is free to and once
more on release. Timed per answer, by the page itself: request to drawn page (``lastMs``), request to
answer received (``serverMs``), and the model pass with Grad-CAM in the server (``modelMs``). Claim: under
100 ms from request to drawn page on this CPU.

Run: source scripts/env.sh && python bench/bench_view_model.py [--strokes 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from chromium_driver import Chromium, chromium_path  # noqa: E402

from pydlr import interpret, pretrained  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--strokes", type=int, default=20)
    args = parser.parse_args()
    if chromium_path() is None:
        sys.exit("no chromium on this machine")
    model = pretrained.load("seed_cnn_mnist")
    rng = np.random.default_rng(0)
    rows: list[tuple[float, float, float]] = []
    with interpret.view_model(model, open=False) as view:
        browser = Chromium(view.url)
        try:
            browser.wait_for("window.pydlrView && window.pydlrView.ready === true")
            left, top, width, height = browser.evaluate(
                "(() => { const r = document.getElementById('draw').getBoundingClientRect();"
                " return [r.left, r.top, r.width, r.height]; })()")
            for _ in range(args.strokes):
                browser.evaluate("document.getElementById('clear').click()")
                a, b = rng.uniform(0.2, 0.8, 2), rng.uniform(0.2, 0.8, 2)
                browser.mouse("mousePressed", left + a[0] * width, top + a[1] * height)
                for t in np.linspace(0.1, 1.0, 8):
                    p = a + t * (b - a)
                    browser.mouse("mouseMoved", left + p[0] * width, top + p[1] * height)
                browser.mouse("mouseReleased", left + b[0] * width, top + b[1] * height)
                v = browser.wait_for("(() => { const v = window.pydlrView; return v.done === v.requested && "
                                     "!v.error && v; })()")
                rows.append((v["lastMs"], v["serverMs"], v["modelMs"]))
        finally:
            browser.close()
    print(f"view_model, seed CNN on MNIST, {len(rows)} strokes (the last answer of each), ms")
    print(f"{'':28}{'median':>8}{'max':>8}")
    for i, name in enumerate(["request to drawn page", "request to answer", "model + Grad-CAM"]):
        values = [r[i] for r in rows]
        print(f"{name:28}{statistics.median(values):8.1f}{max(values):8.1f}")


if __name__ == "__main__":
    main()
