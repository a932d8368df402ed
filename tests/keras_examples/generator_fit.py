"""
Title: Training from a Python generator
Description: fit on a generator of (x, y) batches with steps_per_epoch, validation from another generator
with validation_steps, then evaluate and predict on generators with steps.

Written for pydlr's test suite in the style of keras.io's examples; the only line that differs from a
Keras 3 script is the import. Small data (1,000 Fashion-MNIST images), augmented in the generator.
"""

import numpy as np

import pydlr as keras

(x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
x_train = np.expand_dims(x_train[:1000].astype("float32") / 255, -1)
x_test = np.expand_dims(x_test[:256].astype("float32") / 255, -1)
y_train, y_test = y_train[:1000], y_test[:256]

batches_drawn = {"train": 0, "validation": 0}


def training_batches(batch_size=32, seed=0):
    rng = np.random.default_rng(seed)
    while True:
        idx = rng.integers(0, len(x_train), batch_size)
        images = x_train[idx]
        flip = rng.random(batch_size) < 0.5
        images[flip] = images[flip, :, ::-1]  # random horizontal flips
        batches_drawn["train"] += 1
        yield images, y_train[idx]


def validation_batches(batch_size=64):
    while True:
        for start in range(0, len(x_test), batch_size):
            batches_drawn["validation"] += 1
            yield x_test[start:start + batch_size], y_test[start:start + batch_size]


keras.utils.set_random_seed(9)
model = keras.Sequential(
    [
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, activation="softmax"),
    ]
)
model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(
    training_batches(),
    steps_per_epoch=20,
    epochs=3,
    validation_data=validation_batches(),
    validation_steps=4,
    verbose=2,
)
print("Training batches drawn:", batches_drawn["train"])
print("Validation batches drawn:", batches_drawn["validation"])
print("History keys:", sorted(history.history))

loss, accuracy = model.evaluate(validation_batches(), steps=4, verbose=0)
print("Test accuracy:", round(accuracy, 3))
probs = model.predict((x for x, _ in validation_batches()), steps=2, verbose=0)
print("Predictions shape:", probs.shape)
