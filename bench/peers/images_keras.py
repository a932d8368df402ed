"""Peer: Keras 3 on TensorFlow reading an image folder: keras.utils.image_dataset_from_directory + augmentation
layers mapped over the dataset (num_parallel_calls limited to the given threads), prefetch, one pass.

Run in the peers' environment (.venv-peers, scripts/setup_peers.sh):
    python bench/peers/images_keras.py FOLDER --size 32 --batch 64 --threads 2
Prints one JSON line: {"images": n, "seconds": s, "cpu": CPU seconds, "versions": {...}}.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

ap = argparse.ArgumentParser()
ap.add_argument("folder")
ap.add_argument("--size", type=int, default=32)
ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(args.threads)
tf.config.threading.set_inter_op_parallelism_threads(args.threads)
import keras  # noqa: E402
from keras import layers  # noqa: E402

ds = keras.utils.image_dataset_from_directory(
    args.folder, color_mode="grayscale", image_size=(args.size, args.size), batch_size=args.batch,
    shuffle=True, seed=1, verbose=False)
augment = keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.05),
                            layers.RandomZoom(0.1)])
ds = ds.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=args.threads)
ds = ds.prefetch(tf.data.AUTOTUNE)
options = tf.data.Options()
options.threading.private_threadpool_size = args.threads
ds = ds.with_options(options)

def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


t, c = time.perf_counter(), cpu_s()
n = 0
for x, _ in ds:
    n += int(x.shape[0])
print(json.dumps({"images": n, "seconds": time.perf_counter() - t, "cpu": cpu_s() - c,
                  "versions": {"tensorflow": tf.__version__, "keras": keras.__version__}}))
