"""The live page of `pydlr.interpret.live`: one HTML document, its script and style inline (it must work
offline and in RStudio's Viewer). It asks its own server for ``/info`` once and ``/run`` per stroke.

The page exposes ``window.pydlrView`` (``requested``, ``done``, ``predicted``, and the last update's
``lastMs`` from request to drawn page, ``serverMs`` until the answer arrived, ``modelMs`` in the model) and marks the
prediction as ``#prediction[data-class]``, so a driven browser can tell when an answer is drawn.
"""

PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pydlr: inside the model</title>
<style>
body{font-family:system-ui,sans-serif;margin:12px;color:#222;background:#fafafa}
h1{font-size:18px;margin:0 0 8px} h2{font-size:14px;margin:10px 0 4px}
#top-row{display:flex;gap:18px;flex-wrap:wrap;align-items:flex-start}
.panel{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px}
#draw{background:#000;touch-action:none;cursor:crosshair;border-radius:4px;display:block}
#prediction{font-size:44px;font-weight:bold;min-width:60px;text-align:center}
.bar{display:flex;align-items:center;gap:6px;font-size:12px;margin:2px 0}
.bar span.name{width:140px;overflow:hidden;white-space:nowrap;text-overflow:ellipsis}
.bar div.fill{height:10px;background:#0050c8;border-radius:2px}
.maps{display:flex;flex-wrap:wrap;gap:2px}
.maps canvas{image-rendering:pixelated;border:1px solid #eee}
#thumbs img{width:40px;height:40px;image-rendering:pixelated;cursor:pointer;margin:1px;border:1px solid #ccc}
#status{font-size:12px;color:#666;max-width:300px} .err{color:#b00020}
button,select,input{font-size:13px}
#cams canvas{image-rendering:pixelated;width:168px;height:168px;border:1px solid #ddd}
</style></head><body>
<h1 id="title">pydlr: inside the model</h1>
<div id="top-row">
 <div class="panel" id="input-panel">
  <div id="draw-box" hidden><canvas id="draw" width="280" height="280"></canvas>
   <button id="clear">Clear</button> <span style="font-size:12px">draw with the mouse, a pen or a finger</span></div>
  <div style="margin-top:6px"><label>Upload an image: <input type="file" id="upload" accept="image/*"></label></div>
  <div id="thumbs-box" hidden><h2>Pick one of the data</h2><div id="thumbs"></div></div>
 </div>
 <div class="panel"><h2>Prediction</h2><div id="prediction" data-class="">&ndash;</div><div id="top"></div>
  <div id="status">draw, pick or upload an image</div></div>
 <div class="panel" id="cams"><h2>Grad-CAM for
  <select id="cam-class"><option value="">the predicted class</option></select></h2>
  <canvas id="shown"></canvas> <canvas id="overlay"></canvas>
  <div style="font-size:12px" id="cam-label"></div></div>
</div>
<div id="layers"></div>
<script>
"use strict";
const view = window.pydlrView = {requested: 0, done: 0, predicted: null, lastMs: null, serverMs: null, modelMs: null, error: null};
let info = null, inflight = false, pending = null, source = null;
const $ = (id) => document.getElementById(id);

// viridis, 9 stops, interpolated to 256 entries
const VIRIDIS = [[68,1,84],[71,44,122],[59,81,139],[44,113,142],[33,144,141],[39,173,129],[92,200,99],[170,220,50],[253,231,37]];
const JET = [[0,0,131],[0,60,170],[5,255,255],[255,255,0],[250,0,0],[128,0,0]];
function lut(stops) {
  const out = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = i / 255 * (stops.length - 1), k = Math.min(Math.floor(t), stops.length - 2), f = t - k;
    for (let c = 0; c < 3; c++) out[i * 3 + c] = stops[k][c] * (1 - f) + stops[k + 1][c] * f;
  }
  return out;
}
const VLUT = lut(VIRIDIS), JLUT = lut(JET);
function bytes(b64) { const s = atob(b64), a = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) a[i] = s.charCodeAt(i); return a; }
function paint(canvas, vals, offset, h, w, table, alphaOf) {
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h);
  for (let p = 0; p < h * w; p++) {
    const v = vals[offset + p];
    img.data[p * 4] = table[v * 3]; img.data[p * 4 + 1] = table[v * 3 + 1]; img.data[p * 4 + 2] = table[v * 3 + 2];
    img.data[p * 4 + 3] = alphaOf ? alphaOf(v) : 255;
  }
  ctx.putImageData(img, 0, 0);
}

function send(payload) {
  const cls = $("cam-class").value;
  payload.class_index = cls === "" ? null : Number(cls);
  if (inflight) { pending = payload; return; }
  inflight = true;
  view.requested += 1;
  const started = performance.now();
  fetch("run", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(payload)})
    .then((r) => r.json())
    .then((res) => {
      if (res.error) throw new Error(res.error);
      const answered = performance.now();
      render(res);
      view.lastMs = performance.now() - started;
      view.serverMs = answered - started;
      view.modelMs = res.compute_ms;
      $("status").textContent = `update ${view.lastMs.toFixed(0)} ms: model ${res.compute_ms.toFixed(1)} ms, ` +
        `answer ${view.serverMs.toFixed(0)} ms, drawing ${(view.lastMs - view.serverMs).toFixed(0)} ms`;
      $("status").className = "";
      view.error = null;
    })
    .catch((e) => { view.error = String(e.message || e); $("status").textContent = view.error; $("status").className = "err"; })
    .finally(() => {
      inflight = false; view.done += 1;
      if (pending) { const p = pending; pending = null; send(p); }
    });
}

function render(res) {
  view.predicted = res.predicted;
  const pred = $("prediction");
  pred.dataset.class = String(res.predicted);
  pred.textContent = res.top[0].name;
  $("top").innerHTML = "";
  for (const t of res.top) {
    const row = document.createElement("div"); row.className = "bar";
    row.innerHTML = `<span class="name"></span><div class="fill" style="width:${Math.max(1, 120 * t.probability)}px"></div><span>${(100 * t.probability).toFixed(1)}%</span>`;
    row.querySelector(".name").textContent = t.name;
    $("top").appendChild(row);
  }
  const shown = $("shown"), overlay = $("overlay"), im = new Image();
  im.onload = () => {
    for (const c of [shown, overlay]) { c.width = im.width; c.height = im.height; c.getContext("2d").drawImage(im, 0, 0); }
    const cam = res.cam, heat = document.createElement("canvas");
    paint(heat, bytes(cam.data), 0, cam.h, cam.w, JLUT, (v) => 60 + v * 0.6);
    overlay.getContext("2d").drawImage(heat, 0, 0, im.width, im.height);
  };
  im.src = res.input;
  $("cam-label").textContent = `evidence for ${res.explained.name} (p = ${res.explained.probability.toFixed(3)})`;
  renderLayers(res.layers);
}

// The layer panels are built on the first answer and repainted in place afterwards: rebuilding a few
// hundred canvases per stroke costs more than the model does.
let panels = null;
function renderLayers(layers) {
  const box = $("layers");
  if (!panels || panels.length !== layers.length) {
    box.innerHTML = "";
    panels = layers.map((layer) => {
      const panel = document.createElement("div"); panel.className = "panel"; panel.style.marginTop = "8px";
      const title = document.createElement("h2"), maps = document.createElement("div"); maps.className = "maps";
      const canvases = [];
      const count = layer.kind === "dense" ? 1 : layer.n;
      for (let k = 0; k < count; k++) {
        const c = document.createElement("canvas");
        if (layer.kind === "dense") {
          c.style.width = Math.min(900, layer.units * 14) + "px"; c.style.height = "18px"; c.style.imageRendering = "pixelated";
        } else {
          const side = Math.max(24, Math.min(84, 3 * layer.h));
          c.style.width = side + "px"; c.style.height = side * layer.h / layer.w + "px"; c.title = `map ${k}`;
        }
        canvases.push(c); maps.appendChild(c);
      }
      panel.append(title, maps); box.appendChild(panel);
      return {title, canvases};
    });
  }
  layers.forEach((layer, i) => {
    const vals = bytes(layer.data), p = panels[i];
    if (layer.kind === "dense") {
      p.title.textContent = `${layer.name}: ${layer.units} units (range ${layer.min.toFixed(2)} to ${layer.max.toFixed(2)})`;
      paint(p.canvases[0], vals, 0, 1, layer.units, VLUT);
    } else {
      p.title.textContent = `${layer.name}: ${layer.shape[0]} x ${layer.shape[1]} x ${layer.channels}` +
        (layer.n < layer.channels ? ` (first ${layer.n} maps)` : "");
      for (let k = 0; k < layer.n; k++) paint(p.canvases[k], vals, k * layer.h * layer.w, layer.h, layer.w, VLUT);
    }
  });
}

function setupDrawing() {
  const c = $("draw"), ctx = c.getContext("2d");
  const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, c.width, c.height); };
  clear();
  ctx.strokeStyle = "#fff"; ctx.lineCap = "round"; ctx.lineJoin = "round"; ctx.lineWidth = c.width / 13;
  let last = null;
  const at = (e) => { const r = c.getBoundingClientRect(); return [(e.clientX - r.left) * c.width / r.width, (e.clientY - r.top) * c.height / r.height]; };
  const submit = () => { source = () => ({drawing: c.toDataURL("image/png")}); send(source()); };
  c.addEventListener("pointerdown", (e) => { c.setPointerCapture && c.setPointerCapture(e.pointerId); last = at(e);
    ctx.beginPath(); ctx.arc(last[0], last[1], ctx.lineWidth / 2, 0, 2 * Math.PI); ctx.fillStyle = "#fff"; ctx.fill(); });
  c.addEventListener("pointermove", (e) => { if (!last) return; const p = at(e);
    ctx.beginPath(); ctx.moveTo(last[0], last[1]); ctx.lineTo(p[0], p[1]); ctx.stroke(); last = p; submit(); });
  const end = () => { if (last) { last = null; submit(); } };
  c.addEventListener("pointerup", end); c.addEventListener("pointercancel", end); c.addEventListener("pointerleave", end);
  $("clear").addEventListener("click", () => { clear(); source = null; });
  $("draw-box").hidden = false;
}

fetch("info").then((r) => r.json()).then((i) => {
  info = i;
  $("title").textContent = `pydlr: inside ${i.name} (input ${i.input_shape.join(" x ")})`;
  i.class_names.forEach((n, k) => { const o = document.createElement("option"); o.value = k; o.textContent = `${k}: ${n}`; $("cam-class").appendChild(o); });
  if (i.drawable) setupDrawing();
  if (i.thumbnails.length) {
    $("thumbs-box").hidden = false;
    i.thumbnails.forEach((src, k) => { const im = document.createElement("img"); im.src = src; im.title = `image ${k}`;
      im.addEventListener("click", () => { source = () => ({index: k}); send(source()); }); $("thumbs").appendChild(im); });
  }
  $("upload").addEventListener("change", (e) => {
    const f = e.target.files[0]; if (!f) return;
    const rd = new FileReader();
    rd.onload = () => { const url = rd.result; source = () => ({upload: url}); send(source()); };
    rd.readAsDataURL(f);
  });
  $("cam-class").addEventListener("change", () => { if (source) send(source()); });
  view.ready = true;
}).catch((e) => { $("status").textContent = "cannot reach the model: " + e; $("status").className = "err"; });
</script></body></html>
"""
