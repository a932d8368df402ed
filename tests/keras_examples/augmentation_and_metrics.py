"""
Title: Data augmentation layers, classification metrics and TensorBoard
Description: A small binary convnet (sneakers vs. ankle boots) with augmentation layers inside the
model, AUC / precision / recall metrics, and TensorBoard logs.

Written for pydlr's test suite in the style of keras.io's "Image classification from scratch"; the only
line that differs from a Keras 3 script is the import. Small data so it runs in seconds on a CPU.
"""

import numpy as np

import pydlr as keras

(x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
# class 7 (sneaker) against class 9 (ankle boot)
keep_train, keep_test = np.isin(y_train, [7, 9]), np.isin(y_test, [7, 9])
x_train = np.expand_dims(x_train[keep_train][:800], -1).astype("float32")
y_train = (y_train[keep_train][:800] == 9).astype("float32")
x_test = np.expand_dims(x_test[keep_test][:300], -1).astype("float32")
y_test = (y_test[keep_test][:300] == 9).astype("float32")

"""
## Augmentation inside the model: random in training, nothing at inference
"""

keras.utils.set_random_seed(7)
data_augmentation = [
    keras.layers.RandomFlip("horizontal"),
    keras.layers.RandomRotation(0.05),
    keras.layers.RandomZoom(0.1),
]

model = keras.Sequential(
    [keras.Input(shape=(28, 28, 1))]
    + data_augmentation
    + [
        keras.layers.Rescaling(1.0 / 255),
        keras.layers.Resizing(24, 24),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(1, activation="sigmoid"),
    ]
)
model.summary()

model.compile(
    optimizer=keras.optimizers.Adam(1e-3),
    loss="binary_crossentropy",
    metrics=[
        keras.metrics.BinaryAccuracy(name="acc"),
        keras.metrics.AUC(),
        keras.metrics.Precision(),
        keras.metrics.Recall(),
    ],
)
callbacks = [keras.callbacks.TensorBoard(log_dir="logs", histogram_freq=1)]
history = model.fit(
    x_train, y_train, batch_size=32, epochs=2, validation_split=0.2, callbacks=callbacks, verbose=2
)
print("History keys:", ",".join(history.history))

results = model.evaluate(x_test, y_test, return_dict=True, verbose=0)
print("Test AUC:", round(results["auc"], 4))
print("Test precision:", round(results["precision"], 4))

"""
## The metric objects on their own
"""

auc = keras.metrics.AUC()
auc.update_state(y_test, model.predict(x_test, verbose=0))
print("Standalone AUC equals evaluate's:", abs(float(auc.result()) - results["auc"]) < 1e-5)
