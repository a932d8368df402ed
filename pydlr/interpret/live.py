"""The live page: draw a digit (or pick or upload an image) and watch the network think.

`view_model` serves one self-contained page (inline JavaScript and CSS, nothing fetched from the network)
from a small HTTP server bound to 127.0.0.1 on a free port, in a daemon thread of this process. The page
sends each stroke (the canvas as a PNG) to a JSON endpoint that runs the model once, with gradients, and
answers with every convolution's feature maps, the dense activations, the top classes and the Grad-CAM
heatmap of the chosen class; the page draws them.

Why a local server rather than the model exported into the page: the page then shows the model itself
(any pydlr model, pretrained ones included, with the model's own preprocessing and Grad-CAM computed by the
same code as `grad_cam`), with no JavaScript copy of each layer to keep in step with pydlr's, and works
the same in RStudio's Viewer (which shows http://127.0.0.1 pages), a browser or a notebook iframe. The
cost is a process that must stay alive while the page is used: the server stops with `ModelView.close()`,
and at interpreter exit at the latest (its thread is a daemon and every open view is closed by atexit).

R's embedded Python runs no background thread while R waits at its prompt (reticulate holds the lock
Python threads need), so R's ``view_model()`` runs the same server in a child process instead
(`pydlr.api_r.live`), which exits when R closes it or when R itself ends.
"""

from __future__ import annotations

import atexit
import base64
import io
import json
import sys
import threading
import time
import webbrowser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import torch
from torch import nn

from pydlr.errors import InputError
from pydlr.interpret._live_page import PAGE
from pydlr.interpret.inside import (
    cam_from,
    check_classes,
    check_image_model,
    last_spatial_module,
    scores_for_cam,
)
from pydlr.layers import Conv2D, Dense, DepthwiseConv2D
from pydlr.layers.base import Layer
from pydlr.models import BaseModel
from pydlr.models.modes import evaluating

__all__ = ["ModelProbe", "ModelView", "view_model"]

MAX_CONV_VIEWS = 12  # a deep network (MobileNetV2: 52 convolutions) shows this many, evenly spaced
MAX_MAP_SIDE = 56  # larger feature maps are average-pooled to this side for the page
MAX_THUMBNAILS = 48


class ModelProbe:
    """What the page asks of a model: one input in, every view of it out (JSON-ready).

    Parameters
    ----------
    model : BaseModel
        An image model (input height x width x 1 or 3) ending in class scores.
    data : array, optional
        Images as the model takes them (N, H, W, C), offered on the page to pick from; their value range
        is also the range drawings and uploads are scaled to (default [0, 1]).
    max_maps : int, optional
        Feature maps shown per convolution (default all up to 64, 16 for networks with more than 12
        convolutions).
    """

    def __init__(self, model: Any, data: Any = None, max_maps: int | None = None):
        where = "view_model"
        self.height, self.width, self.channels = check_image_model(model, where)
        self.model = model
        self.data = self._check_data(data, where)
        lo, hi = (0.0, 1.0) if self.data is None else (float(self.data.min()), float(self.data.max()))
        self.value_range = (lo, hi if hi > lo else lo + 1.0)
        from pydlr.pretrained.imagenet import model_mode

        self.mode = model_mode(model)
        self.lock = threading.Lock()
        views, self.cam_module, self.num_classes = self._trace()
        if max_maps is not None and (isinstance(max_maps, bool) or not isinstance(max_maps, (int, np.integer))
                                     or max_maps < 1):
            raise InputError("max_maps", "a positive integer", max_maps, where)
        convs = [v for v in views if v[2] == "conv"]
        if len(convs) > MAX_CONV_VIEWS:
            keep = {id(convs[round(i * (len(convs) - 1) / (MAX_CONV_VIEWS - 1))][0]) for i in range(MAX_CONV_VIEWS)}
            views = [v for v in views if v[2] != "conv" or id(v[0]) in keep]
        self.max_maps = int(max_maps) if max_maps is not None else (64 if len(convs) <= MAX_CONV_VIEWS else 16)
        self.views = views
        names = getattr(model, "class_names", None)
        self.class_names = [str(n) for n in names] if names is not None and len(names) == self.num_classes \
            else [str(i) for i in range(self.num_classes)]

    def _check_data(self, data: Any, where: str) -> np.ndarray | None:
        if data is None:
            return None
        arr = np.asarray(data)
        if arr.ndim == 3 and self.channels == 1:
            arr = arr[..., None]
        if arr.ndim != 4 or arr.shape[1:] != (self.height, self.width, self.channels) or arr.shape[0] < 1 \
                or arr.dtype.kind not in "uif":
            raise InputError("data", f"images as the model takes them, (n, {self.height}, {self.width}, "
                             f"{self.channels}) numbers", f"an array of shape {arr.shape}", where)
        return arr.astype(np.float32)

    def _trace(self) -> tuple[list[tuple[nn.Module, str, str]], nn.Module, int]:
        """The layers shown (module, name, "conv" or "dense") in execution order, the Grad-CAM layer and
        the number of classes, from one forward pass of a blank image."""
        model = self.model
        seen: list[tuple[nn.Module, str, str]] = []

        def record(m: nn.Module, _i: Any, out: Any) -> None:
            if not isinstance(out, torch.Tensor) or any(m is s[0] for s in seen):
                return
            if isinstance(m, (Conv2D, DepthwiseConv2D)) and out.dim() == 4:
                seen.append((m, m.name, "conv"))
            elif isinstance(m, Dense) and out.dim() == 2:
                seen.append((m, m.name, "dense"))

        blank = np.zeros((1, self.height, self.width, self.channels), np.float32)
        xt = model.prepare_input(blank)
        hooks = [m.register_forward_hook(record) for m in model.modules()
                 if isinstance(m, Layer) and not isinstance(m, BaseModel)]
        try:
            with evaluating(model), torch.no_grad():
                out = model.call_internal(xt)
        finally:
            for h in hooks:
                h.remove()
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[1] < 2:
            raise InputError("model", "a classifier: outputs (n, classes) with 2 classes or more",
                             f"outputs of shape {tuple(getattr(out, 'shape', ()))}", "view_model")
        return seen, last_spatial_module(model, xt, "view_model"), int(out.shape[1])

    # ---- what the page asks --------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """The page's static facts: input shape, whether it can be drawn on, classes, data thumbnails."""
        return {
            "name": str(getattr(self.model, "name", type(self.model).__name__)),
            "input_shape": [self.height, self.width, self.channels],
            "drawable": self.channels == 1 and self.height <= 64 and self.width <= 64,
            "class_names": self.class_names,
            "layers": [{"name": name, "kind": kind} for _m, name, kind in self.views],
            "thumbnails": [] if self.data is None else
            [_png_data_url(self._display(self.data[i])) for i in range(min(len(self.data), MAX_THUMBNAILS))],
        }

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer one page request: ``{"drawing" | "upload": PNG/JPEG data URL, or "index": i}`` and
        ``class_index`` (None: the predicted class)."""
        where = "view_model"
        if not isinstance(request, dict):
            raise InputError("request", "a JSON object", request, where)
        class_index = request.get("class_index")
        if "index" in request:
            i = request["index"]
            n = 0 if self.data is None else len(self.data)
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
                raise InputError("index", f"an image of data (0..{n - 1})", i, where)
            x, shown = self.data[i], self._display(self.data[i])
        elif "drawing" in request:
            x = self.from_drawing(decode_image(request["drawing"], "L")[..., 0])
            shown = self._display(x)
        elif "upload" in request:
            x, shown = self.from_upload(decode_image(request["upload"], "RGB"))
        else:
            raise InputError("request", 'one of "drawing", "upload" or "index"', sorted(request), where)
        start = time.perf_counter()
        result = self.run(x[None], class_index)
        result["compute_ms"] = round((time.perf_counter() - start) * 1000, 2)
        result["input"] = _png_data_url(shown)
        return result

    # ---- inputs --------------------------------------------------------------------------------------
    def _scale(self, pixels: np.ndarray) -> np.ndarray:
        """0-255 pixels to the model's value range."""
        lo, hi = self.value_range
        return (lo + pixels.astype(np.float32) / 255.0 * (hi - lo)).astype(np.float32)

    def _display(self, x: np.ndarray) -> np.ndarray:
        """An input (H, W, C) as 0-255 pixels for the page."""
        lo, hi = (float(x.min()), float(x.max())) if self.mode else self.value_range
        return np.clip((x - lo) / max(hi - lo, 1e-12) * 255.0, 0, 255).astype(np.uint8)

    def from_drawing(self, grey: np.ndarray) -> np.ndarray:
        """A drawing (white on black, any size) framed as MNIST frames digits: the strokes' bounding box
        scaled to fit 20/28 of the input side, then placed so their centre of mass is the centre."""
        from PIL import Image

        h, w = self.height, self.width
        ys, xs = np.nonzero(grey > 16)
        out = np.zeros((h, w), np.float32)
        if len(ys):
            crop = grey[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
            box = max(1, round(min(h, w) * 20 / 28))
            f = box / max(crop.shape)
            size = (max(1, round(crop.shape[1] * f)), max(1, round(crop.shape[0] * f)))
            small = np.asarray(Image.fromarray(crop).resize(size, Image.LANCZOS), np.float32)
            total = small.sum()
            cy, cx = ((np.indices(small.shape) * small).reshape(2, -1).sum(1) / total) if total > 0 \
                else (small.shape[0] / 2, small.shape[1] / 2)
            top = int(np.clip(round(h / 2 - cy), 0, h - small.shape[0]))
            left = int(np.clip(round(w / 2 - cx), 0, w - small.shape[1]))
            out[top:top + small.shape[0], left:left + small.shape[1]] = np.clip(small, 0, 255)
        return self._scale(out)[..., None]

    def from_upload(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """An uploaded image as the model takes it, and as the page shows it: the ImageNet networks' own
        preprocessing, else a centre crop to the input's aspect, resized, in the data's value range (a grey
        image on a light background inverted for a model of light-on-dark images)."""
        if self.mode is not None:
            from pydlr.pretrained.imagenet import preprocess

            x = preprocess(rgb, size=self.height, mode=self.mode)[0]
            shown = preprocess(rgb, size=self.height, mode=self.mode, normalize=False)[0]
            return x, (shown * 255).astype(np.uint8)
        from PIL import Image

        img = Image.fromarray(rgb)
        ratio = self.width / self.height
        w, h = img.size
        cw, ch = (min(w, round(h * ratio)), min(h, round(w / ratio)))
        img = img.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch))
        img = img.resize((self.width, self.height), Image.LANCZOS).convert("L" if self.channels == 1 else "RGB")
        pixels = np.asarray(img).reshape(self.height, self.width, self.channels).astype(np.uint8)
        if self.channels == 1 and _border_mean(pixels) > 127 and self._dark_background():
            pixels = 255 - pixels  # a dark digit photographed on paper, for a model of light-on-dark images
        return self._scale(pixels), pixels

    def _dark_background(self) -> bool:
        """Whether the model's images are light on dark (MNIST's way, and the canvas'): ``data``'s borders
        tell; without data, yes."""
        if self.data is None:
            return True
        lo, hi = self.value_range
        return _border_mean((self.data - lo) / (hi - lo) * 255) <= 127

    # ---- the model -----------------------------------------------------------------------------------
    def run(self, x: np.ndarray, class_index: Any = None) -> dict[str, Any]:
        """One forward pass (with gradients for Grad-CAM) of a batch of one; the views as JSON-ready data."""
        where = "view_model"
        model = self.model
        xt = model.prepare_input(x)
        outputs: dict[int, torch.Tensor] = {}
        modules = [v[0] for v in self.views] + [self.cam_module]

        def keep(m: nn.Module, _i: Any, out: Any) -> None:
            if isinstance(out, torch.Tensor) and id(m) not in outputs:
                outputs[id(m)] = out

        with self.lock:
            hooks = [m.register_forward_hook(keep) for m in modules]
            try:
                with evaluating(model), torch.enable_grad():
                    out = model.call_internal(xt)
                    scores, probabilities = scores_for_cam(out)
                    if class_index is not None and not isinstance(class_index, bool) \
                            and isinstance(class_index, float) and class_index.is_integer():
                        class_index = int(class_index)
                    explained = int(check_classes(class_index, out, 1, where)[0])
                    fmap = outputs[id(self.cam_module)]
                    (grad,) = torch.autograd.grad(scores[0, explained], fmap)
            finally:
                for h in hooks:
                    h.remove()
        cam = cam_from(fmap.detach(), grad, (self.height, self.width))[0]
        probs = (out.detach() if probabilities else torch.softmax(out.detach(), dim=1))[0].float()
        order = torch.argsort(probs, descending=True)[:5].tolist()
        return {
            "predicted": order[0],
            "top": [{"index": i, "name": self.class_names[i], "probability": float(probs[i])} for i in order],
            "explained": {"index": explained, "name": self.class_names[explained],
                          "probability": float(probs[explained])},
            "cam": _encode(cam.cpu().numpy()[None]),
            "layers": [self._layer_view(name, kind, outputs[id(m)].detach()) for m, name, kind in self.views
                       if id(m) in outputs],
        }

    def _layer_view(self, name: str, kind: str, out: torch.Tensor) -> dict[str, Any]:
        out = out[0].float()
        if kind == "dense":
            return {"name": name, "kind": kind, "units": int(out.shape[0]), **_encode(out.cpu().numpy()[None, None])}
        channels = int(out.shape[0])
        maps = out[: self.max_maps]
        if max(maps.shape[1:]) > MAX_MAP_SIDE:
            maps = torch.nn.functional.adaptive_avg_pool2d(maps[None], MAX_MAP_SIDE)[0]
        return {"name": name, "kind": kind, "channels": channels, "shape": list(out.shape[1:]),
                **_encode(maps.cpu().numpy())}


def _border_mean(images: np.ndarray) -> float:
    """Mean of the one-pixel frame of an image (H, W, C) or of images (N, H, W, C)."""
    a = images if images.ndim == 4 else images[None]
    frame = np.concatenate([a[:, 0].ravel(), a[:, -1].ravel(), a[:, :, 0].ravel(), a[:, :, -1].ravel()])
    return float(frame.mean())


def _encode(maps: np.ndarray) -> dict[str, Any]:
    """(n, h, w) values as base64 bytes 0-255 over their common min..max, with the range."""
    lo, hi = float(maps.min()), float(maps.max())
    scaled = np.zeros(maps.shape, np.uint8) if hi <= lo else \
        np.round((maps - lo) / (hi - lo) * 255).astype(np.uint8)
    n, h, w = maps.shape
    return {"n": n, "h": h, "w": w, "min": lo, "max": hi,
            "data": base64.b64encode(np.ascontiguousarray(scaled).tobytes()).decode("ascii")}


def decode_image(data_url: Any, mode: str) -> np.ndarray:
    """A data URL (or bare base64) of a PNG/JPEG/... as uint8 pixels (H, W, C) in PIL ``mode``."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(data_url, str):
        raise InputError("image", "an image as a data URL", data_url, "view_model")
    payload = data_url.split(",", 1)[1] if data_url.startswith("data:") else data_url
    try:
        img = Image.open(io.BytesIO(base64.b64decode(payload)))
        img.load()
    except (ValueError, OSError, UnidentifiedImageError) as err:
        raise InputError("image", "a PNG, JPEG or other image file PIL reads", f"undecodable bytes ({err})",
                         "view_model") from None
    if mode == "L" and img.mode in ("RGBA", "LA"):
        # a drawing: what is transparent is the black background
        back = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(back, img.convert("RGBA"))
    arr = np.array(img.convert(mode))  # a writable copy: torch warns on read-only arrays
    return arr[..., None] if arr.ndim == 2 else arr


def _png_data_url(pixels: np.ndarray) -> str:
    from PIL import Image

    img = pixels[..., 0] if pixels.ndim == 3 and pixels.shape[-1] == 1 else pixels
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# ---- the server ----------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *_args: Any) -> None:  # the page polls nothing, but stay quiet in consoles
        pass

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            self._send(200, PAGE.encode(), "text/html; charset=utf-8")
        elif path == "/info":
            self._json(200, self.server.info)
        else:
            self._json(404, {"error": f"no page {path}"})

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/run":
            self._json(404, {"error": f"no endpoint {self.path}"})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            request = json.loads(self.rfile.read(length) or b"{}")
            self._json(200, self.server.probe.handle(request))
        except (InputError, json.JSONDecodeError) as err:
            self._json(400, {"error": str(err)})
        except Exception as err:  # noqa: BLE001 (the page shows it; the server keeps serving)
            self._json(500, {"error": f"{type(err).__name__}: {err}"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, probe: ModelProbe, port: int = 0):
        self.probe = probe
        self.info = probe.info()
        super().__init__(("127.0.0.1", port), _Handler)


class ModelView:
    """A running page (`view_model`'s result): ``url``; ``close()`` stops the server (also at interpreter
    exit, and as a context manager)."""

    def __init__(self, probe: ModelProbe, port: int = 0):
        self._server = _Server(probe, port)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"pydlr-view-{self.port}",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        atexit.register(self.close)

    @property
    def closed(self) -> bool:
        return not self._thread.is_alive()

    def close(self) -> None:
        """Stop serving and free the port (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
        atexit.unregister(self.close)

    def __enter__(self) -> ModelView:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ModelView {self.url} ({'closed' if self.closed else 'serving'})>"

    def _repr_html_(self) -> str:
        return f'<iframe src="{self.url}" width="100%" height="720" style="border:0"></iframe>'


def _interactive() -> bool:
    """An interactive session (a console or a notebook), not a script or a knitr/Quarto render."""
    return bool(hasattr(sys, "ps1") or sys.flags.interactive or "IPython" in sys.modules
                and getattr(sys.modules["IPython"], "get_ipython", lambda: None)() is not None)


def view_model(model: Any, data: Any = None, open: bool | None = None,  # noqa: A002 (webbrowser's word)
               max_maps: int | None = None, port: int = 0) -> ModelView:
    """Serve the live page of an image model: draw (28x28 grey models and other small grey ones), pick
    an image of ``data`` or upload one, and see every convolution's feature maps, the dense activations,
    the top classes and the Grad-CAM heatmap of a chosen class, updated as you draw.

    Parameters
    ----------
    model : BaseModel
        A trained image classifier (input height x width x 1 or 3), pretrained ones included (uploads
        then get the model's own preprocessing).
    data : array, optional
        Images as the model takes them (n, H, W, C), to pick from on the page (the first 48).
    open : bool, optional
        Open the page in the browser; default only in an interactive session (never in scripts or
        knitr, as R's view_metrics).
    max_maps : int, optional
        Feature maps shown per convolution (see `ModelProbe`).
    port : int
        0 (default): a free port.

    Returns
    -------
    ModelView
        ``.url``, ``.close()``; in a notebook it displays the page in an iframe.
    """
    if isinstance(port, bool) or not isinstance(port, (int, np.integer)) or not 0 <= port <= 65535:
        raise InputError("port", "0 (a free port) or a port number up to 65535", port, "view_model")
    view = ModelView(ModelProbe(model, data, max_maps), int(port))
    if open if open is not None else _interactive():
        webbrowser.open(view.url)
    return view
