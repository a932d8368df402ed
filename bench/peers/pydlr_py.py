"""pydlr from Python: the seed CNN through pydlr.Sequential(...).compile(...).fit(...), as a user writes it.

Same data (NHWC float32 in [0, 1]), batch 64, Adam 1e-3, sparse cross-entropy on logits as the Keras row.
With --precision bfloat16 it asks fit (or compile, wherever the training module takes it) for bf16 autocast.
"""

from __future__ import annotations

import inspect

import peer_common as pc

args = pc.parse_args(__doc__, {
    "--precision": {"choices": ["float32", "bfloat16"], "default": "float32"},
})
pc.set_thread_env(args.threads, args.interop)

import torch  # noqa: E402

threads = pc.set_torch_threads(torch, args.threads, args.interop)

import pydlr  # noqa: E402
from pydlr import layers  # noqa: E402
from pydlr.train import callbacks, losses, optimizers  # noqa: E402
from pydlr.utils import set_random_seed  # noqa: E402

set_random_seed(pc.SEED)  # the initial weights too, as keras.utils.set_random_seed in the Keras row

x_train, y_train, x_test, y_test = pc.load_fashion_mnist(args.limit)
model = pydlr.Sequential([
    layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
    layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
    layers.Conv2D(64, 3, activation="relu"), layers.Flatten(),
    layers.Dense(64, activation="relu"), layers.Dense(10),
], input_shape=(28, 28, 1))


def precision_kwargs(fn) -> dict[str, str]:
    """{"precision": ...} when `fn` takes it (always passed, so the row says what it ran); else {}."""
    return {"precision": args.precision} if "precision" in inspect.signature(fn).parameters else {}


compile_kw = precision_kwargs(model.compile)
fit_kw = {} if compile_kw else precision_kwargs(model.fit)
if args.precision != "float32" and not (compile_kw or fit_kw):
    raise SystemExit(f"pydlr {pydlr.__version__}: neither compile() nor fit() takes precision=")
model.compile(optimizer=optimizers.Adam(learning_rate=pc.LEARNING_RATE),
              loss=losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"], **compile_kw)

clock = pc.EpochClock()
timer = callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs=None: clock.start(),
                                 on_batch_end=lambda batch, logs=None: clock.batch_end(),
                                 on_epoch_end=lambda epoch, logs=None: clock.stop())
model.fit(x_train, y_train, batch_size=pc.BATCH_SIZE, epochs=args.epochs, shuffle=True, verbose=0,
          callbacks=[timer], seed=pc.SEED, device="cpu", **fit_kw)
scores = model.evaluate(x_test, y_test, batch_size=args.predict_batch, return_dict=True)
ips = None
if not args.no_predict:
    ips = pc.time_predict(lambda x: model.predict(x, batch_size=args.predict_batch), x_test)
name = "pydlr (Python)" + (f" {args.precision}" if args.precision != "float32" else "")
pc.write_result(args, name, clock, float(scores["accuracy"]), ips,
                {"pydlr": pydlr.__version__, "torch": torch.__version__}, threads,
                notes=f"precision={args.precision}")
