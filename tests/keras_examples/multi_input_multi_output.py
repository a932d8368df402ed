"""
Title: A functional model with two inputs and two outputs
Description: Fashion-MNIST images plus a small vector of side information, predicting the class and
whether the item is footwear, with a loss and metrics per output.

Written for pydlr's test suite in the style of keras.io's functional-API examples; the only line that
differs from a Keras 3 script is the import. Small data (800 training images) so it runs in seconds.
"""

import numpy as np

import pydlr as keras

(x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
x_train, y_train = x_train[:800].astype("float32") / 255, y_train[:800]
x_test, y_test = x_test[:200].astype("float32") / 255, y_test[:200]
x_train, x_test = np.expand_dims(x_train, -1), np.expand_dims(x_test, -1)

# Side information: the mean brightness of each image row band (a stand-in for tabular metadata).
def side_info(images):
    return images.reshape(len(images), 4, 7, 28).mean(axis=(2, 3))


footwear = (5, 7, 9)  # sandal, sneaker, ankle boot
is_footwear_train = np.isin(y_train, footwear).astype("float32")
is_footwear_test = np.isin(y_test, footwear).astype("float32")

"""
## Build the model with the functional API
"""

keras.utils.set_random_seed(7)
image_input = keras.Input(shape=(28, 28, 1), name="image")
info_input = keras.Input(shape=(4,), name="info")

x = keras.layers.Conv2D(16, 3, activation="relu")(image_input)
x = keras.layers.MaxPooling2D()(x)
x = keras.layers.Conv2D(32, 3, activation="relu")(x)
x = keras.layers.GlobalAveragePooling2D()(x)
info = keras.layers.Dense(8, activation="relu")(info_input)
x = keras.layers.concatenate([x, info])

class_output = keras.layers.Dense(10, activation="softmax", name="class")(x)
footwear_output = keras.layers.Dense(1, activation="sigmoid", name="footwear")(x)

model = keras.Model(inputs=[image_input, info_input], outputs=[class_output, footwear_output])
model.summary()

"""
## Compile with a loss per output, and train on dicts keyed by the inputs' and outputs' names
"""

model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=3e-3),
    loss={"class": "sparse_categorical_crossentropy", "footwear": "binary_crossentropy"},
    loss_weights={"class": 1.0, "footwear": 0.5},
    metrics={"class": ["accuracy"], "footwear": ["accuracy"]},
)
history = model.fit(
    {"image": x_train, "info": side_info(x_train)},
    {"class": y_train, "footwear": is_footwear_train},
    batch_size=32,
    epochs=3,
    validation_split=0.1,
    verbose=2,
)
print("History keys:", sorted(history.history))

"""
## Evaluate and predict; lists in the inputs' order work too
"""

results = model.evaluate([x_test, side_info(x_test)], [y_test, is_footwear_test], return_dict=True, verbose=0)
print("Total loss is the weighted sum:",
      bool(np.isclose(results["loss"], results["class_loss"] + 0.5 * results["footwear_loss"], rtol=1e-4)))
print("Class accuracy:", round(results["class_accuracy"], 3))
print("Footwear accuracy:", round(results["footwear_accuracy"], 3))
class_probs, footwear_probs = model.predict([x_test, side_info(x_test)], verbose=0)
print("Prediction shapes:", class_probs.shape, footwear_probs.shape)
