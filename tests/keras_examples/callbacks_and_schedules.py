"""
Title: Learning-rate schedules and callbacks on Fashion-MNIST
Description: A functional convnet trained with a decaying learning rate and Keras' callbacks.

Written for pydlr's test suite in the style of keras.io's examples; the only line that differs from a
Keras 3 script is the import. Small data (600 training images) so it runs in seconds on a CPU.
"""

import numpy as np

import pydlr as keras

(x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
x_train = np.expand_dims(x_train[:600].astype("float32") / 255, -1)
x_test = np.expand_dims(x_test[:200].astype("float32") / 255, -1)
y_train, y_test = y_train[:600], y_test[:200]

"""
## A functional model
"""

keras.utils.set_random_seed(42)
inputs = keras.Input(shape=(28, 28, 1))
x = keras.layers.Conv2D(16, 3, activation="relu")(inputs)
x = keras.layers.MaxPooling2D()(x)
x = keras.layers.Conv2D(32, 3, activation="relu")(x)
x = keras.layers.GlobalAveragePooling2D()(x)
outputs = keras.layers.Dense(10, activation="softmax")(x)
model = keras.Model(inputs, outputs)

"""
## A schedule as the optimizer's learning rate
"""

steps_per_epoch = 600 // 30
lr_schedule = keras.optimizers.schedules.CosineDecay(
    initial_learning_rate=1e-4, decay_steps=2 * steps_per_epoch, warmup_target=1e-2, warmup_steps=5
)
model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=lr_schedule),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)

"""
## Callbacks
"""


class RecordLearningRate(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(float(self.model.optimizer.learning_rate))


record = RecordLearningRate()
callbacks = [
    keras.callbacks.TerminateOnNaN(),
    keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1),
    keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True),
    record,
]
history = model.fit(x_train, y_train, batch_size=30, epochs=2, validation_split=0.1, callbacks=callbacks)
print("Steps trained:", model.optimizer.iterations)
print("Peak learning rate:", round(max(record.rates), 6), "at step", int(np.argmax(record.rates)))
print("Last learning rate:", round(record.rates[-1], 6))
print("Test accuracy:", model.evaluate(x_test, y_test, verbose=0)[1])

"""
## Another schedule, per epoch this time
"""

model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
per_epoch = keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr if epoch == 0 else lr * 0.1, verbose=1)
model.fit(x_train, y_train, batch_size=30, epochs=2, verbose=0, callbacks=[per_epoch])
print("Learning rate after the per-epoch schedule:", model.optimizer.learning_rate)
