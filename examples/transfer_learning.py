"""Transfer learning with pydlr: pretrained ImageNet MobileNetV2, offline, on 2 CPU cores in ~1-2 minutes.

1. ImageNet predictions for two photos (skimage's chelsea and coffee).
2. Faces vs non-faces (skimage's lfw_subset, 200 images of 25 x 25): a plain logistic regression on
   pixels, the same on frozen MobileNetV2 embeddings, fastai-style fine-tuning, and the same network and
   recipe from random weights. Deep learning is not always the answer: compare the accuracies and seconds.
3. Inside the black box: first-layer filters, Grad-CAM on the cat, the confusion matrix, top losses.

Run:  .venv/bin/python examples/transfer_learning.py [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from skimage import data
from sklearn.linear_model import LogisticRegression

from pydlr import applications, interpret, pretrained


def timed(label: str, fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    print(f"  [{label}: {time.perf_counter() - start:.1f} s]")
    return out


def imagenet_demo(out: str) -> None:
    info = pretrained.info("mobilenet_v2")
    print(f"MobileNetV2: {info['params']:,} parameters, {info['memory_mb']} MB, "
          f"ImageNet top-1 {info['imagenet_top1']}% ({info['origin']})")
    model = timed("load (cached safetensors after the first run)", pretrained.load, "mobilenet_v2")
    photos = {"chelsea": data.chelsea(), "coffee": data.coffee()}
    x = np.concatenate([pretrained.preprocess(img) for img in photos.values()])
    probs = timed("predict 2 photos", model.predict, x)
    for name, top in zip(photos, pretrained.decode_predictions(probs, top=3), strict=True):
        print(f"  {name}: " + ", ".join(f"{label} ({score:.2f})" for _, label, score in top))
    shown = pretrained.preprocess(photos["chelsea"], normalize=False)[0]
    interpret.plot_grad_cam(model, x[:1], 285, image=shown, title="Grad-CAM: Egyptian cat",
                            path=os.path.join(out, "grad_cam_chelsea.png"))
    interpret.plot_filters(model, path=os.path.join(out, "mobilenet_filters.png"))


def faces_demo(out: str, size: int = 64) -> None:
    images = data.lfw_subset()
    labels = (np.arange(200) >= 100).astype(np.int64)  # 0 face, 1 not a face
    order = np.random.default_rng(0).permutation(200)
    train, test = order[:120], order[120:]
    print(f"\nFaces vs non-faces: {len(train)} training, {len(test)} held-out images at {size} px")

    start = time.perf_counter()
    pixels = images.reshape(200, -1)
    clf = LogisticRegression(max_iter=5000).fit(pixels[train], labels[train])
    print(f"  logistic regression on raw pixels:     accuracy {clf.score(pixels[test], labels[test]):.3f}"
          f"  ({time.perf_counter() - start:.1f} s)")

    x = pretrained.preprocess(images, size=size)
    start = time.perf_counter()
    base = pretrained.load("mobilenet_v2", include_top=False, pooling="avg", input_shape=(size, size, 3))
    feats = pretrained.embed_images(base, x)
    clf = LogisticRegression(max_iter=5000).fit(feats[train], labels[train])
    print(f"  logistic regression on embeddings:     accuracy {clf.score(feats[test], labels[test]):.3f}"
          f"  ({time.perf_counter() - start:.1f} s)")

    start = time.perf_counter()
    base = pretrained.load("mobilenet_v2", include_top=False, input_shape=(size, size, 3))
    model = pretrained.fine_tune(base, (x[train], labels[train]), epochs=1, freeze_epochs=3, base_lr=3e-3,
                                 batch_size=8, seed=0)
    pred = model.predict_classes(x[test])
    print(f"  fine-tuned MobileNetV2 (3 frozen + 1): accuracy {(pred == labels[test]).mean():.3f}"
          f"  ({time.perf_counter() - start:.1f} s)")

    # The same architecture, data, epochs and recipe from random weights: what pretraining bought
    start = time.perf_counter()
    scratch = pretrained.fine_tune(applications.MobileNetV2(weights=None, include_top=False,
                                                            input_shape=(size, size, 3)),
                                   (x[train], labels[train]), epochs=1, freeze_epochs=3, base_lr=3e-3,
                                   batch_size=8, seed=0)
    acc = (scratch.predict_classes(x[test]) == labels[test]).mean()
    print(f"  MobileNetV2 from scratch, same recipe:  accuracy {acc:.3f}  ({time.perf_counter() - start:.1f} s)")

    cm = interpret.confusion_matrix(labels[test], pred, num_classes=2)
    print(f"  confusion matrix (rows actual face/non-face):\n{cm}")
    interpret.plot_confusion_matrix(cm, class_names=["face", "non-face"],
                                    path=os.path.join(out, "faces_confusion.png"))
    worst = interpret.top_losses(model, x[test], labels[test], k=3)
    for i, loss, actual, predicted in zip(worst["index"], worst["loss"], worst["actual"],
                                          worst["predicted"], strict=True):
        print(f"  top loss: test image {test[i]} actual {actual} predicted {predicted} loss {loss:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "pydlr-transfer-learning"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    imagenet_demo(args.out)
    faces_demo(args.out)
    print(f"\nFigures in {args.out}; total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
