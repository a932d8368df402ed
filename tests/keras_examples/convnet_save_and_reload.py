"""
Title: Save, reload and reuse a small Fashion-MNIST convnet
Description: Train a convnet, save it whole and as weights, and bring it back four ways.

Written for pydlr's test suite in the style of keras.io's examples; the only line that differs from a
Keras 3 script is the import. Small data (600 training images, one epoch) so it runs in seconds on a CPU.
"""

import numpy as np

import pydlr as keras

"""
## Prepare the data
"""

num_classes = 10
input_shape = (28, 28, 1)

(x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
x_train, y_train = x_train[:600], y_train[:600]
x_test, y_test = x_test[:200], y_test[:200]
x_train = np.expand_dims(x_train.astype("float32") / 255, -1)
x_test = np.expand_dims(x_test.astype("float32") / 255, -1)
y_train = keras.utils.to_categorical(y_train, num_classes)
y_test = keras.utils.to_categorical(y_test, num_classes)

"""
## Build and train the model
"""

keras.utils.set_random_seed(1337)
model = keras.Sequential(
    [
        keras.Input(shape=input_shape),
        keras.layers.Conv2D(16, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(num_classes, activation="softmax"),
    ]
)
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=32, epochs=1, validation_split=0.1)
score = model.evaluate(x_test, y_test, verbose=0)
print("Test accuracy:", score[1])

"""
## Save the whole model, and load it back
"""

model.save("fashion_convnet.keras")
reloaded = keras.models.load_model("fashion_convnet.keras")
print("Reloaded model gives the same predictions:",
      np.array_equal(model.predict(x_test), reloaded.predict(x_test)))
reloaded.fit(x_train, y_train, batch_size=32, epochs=1, verbose=0)  # compiled as saved: training goes on

"""
## Architecture as JSON, weights on their own
"""

model.save_weights("fashion_convnet.weights.safetensors")
config = model.to_json()
twin = keras.models.model_from_json(config)
twin.load_weights("fashion_convnet.weights.safetensors")
print("Weights file restores the predictions:", np.array_equal(model.predict(x_test), twin.predict(x_test)))

copy = keras.models.model_from_json(config)
copy.set_weights(model.get_weights())
print("set_weights(get_weights()) restores the predictions:",
      np.array_equal(model.predict(x_test), copy.predict(x_test)))

keras.saving.save_model(model, "fashion_convnet_again.keras")
print("keras.saving round trip:",
      np.array_equal(model.predict(x_test), keras.saving.load_model("fashion_convnet_again.keras").predict(x_test)))
