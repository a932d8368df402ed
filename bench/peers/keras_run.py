"""Peer: Keras 3 (what keras3 R users run) on the TensorFlow or the torch backend, the seed CNN, model.fit.

Written as the Keras tutorials write it: Sequential, Adam(1e-3), sparse cross-entropy on logits, fit on
NumPy arrays with batch 64 (shuffled each epoch), evaluate, predict.
"""

from __future__ import annotations

import os

import peer_common as pc

args = pc.parse_args(__doc__, {"--backend": {"choices": ["tensorflow", "torch"], "default": "tensorflow"}})
pc.set_thread_env(args.threads, args.interop)
os.environ["KERAS_BACKEND"] = args.backend  # must be set before keras is imported

threads: dict[str, int] = {}
versions: dict[str, str] = {}
if args.backend == "tensorflow":
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.interop)
    threads = {"tf_intra": tf.config.threading.get_intra_op_parallelism_threads(),
               "tf_inter": tf.config.threading.get_inter_op_parallelism_threads()}
    versions["tensorflow"] = tf.__version__
else:
    import torch

    threads = pc.set_torch_threads(torch, args.threads, args.interop)
    versions["torch"] = torch.__version__

import keras  # noqa: E402
from keras import layers  # noqa: E402

versions["keras"] = keras.__version__
keras.utils.set_random_seed(pc.SEED)


class EpochTimer(keras.callbacks.Callback):
    """Feeds fit's epoch boundaries to the shared clock."""

    def __init__(self, clock: pc.EpochClock) -> None:
        super().__init__()
        self.clock = clock

    def on_epoch_begin(self, epoch, logs=None):  # noqa: D102
        self.clock.start()

    def on_train_batch_end(self, batch, logs=None):  # noqa: D102
        self.clock.batch_end()

    def on_epoch_end(self, epoch, logs=None):  # noqa: D102
        self.clock.stop()


x_train, y_train, x_test, y_test = pc.load_fashion_mnist(args.limit)
model = keras.Sequential([
    keras.Input((28, 28, 1)),
    layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
    layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
    layers.Conv2D(64, 3, activation="relu"), layers.Flatten(),
    layers.Dense(64, activation="relu"), layers.Dense(10),
])
model.compile(optimizer=keras.optimizers.Adam(pc.LEARNING_RATE),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
clock = pc.EpochClock()
model.fit(x_train, y_train, batch_size=pc.BATCH_SIZE, epochs=args.epochs, shuffle=True, verbose=0,
          callbacks=[EpochTimer(clock)])
_, acc = model.evaluate(x_test, y_test, batch_size=args.predict_batch, verbose=0)
ips = None
if not args.no_predict:
    ips = pc.time_predict(lambda x: model.predict(x, batch_size=args.predict_batch, verbose=0), x_test)
pc.write_result(args, f"Keras {versions['keras']} on {args.backend}", clock, float(acc), ips, versions, threads)
