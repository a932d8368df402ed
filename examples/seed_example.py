"""The seed's worked example, exactly, from Python: the Keras CNN, its summary, "same" padding, and
training by mini-batches (steps_per_epoch x batch_size = 100 x 20 = 2000 images an epoch) while CPU
workers augment the next batches on the fly. Run: .venv/bin/python examples/seed_example.py
"""

import pydlr as keras
from pydlr import layers
from pydlr.data import Augment, load_fashion_mnist

model = keras.Sequential([
    layers.Input((28, 28, 1)),
    layers.Conv2D(32, (3, 3), activation="relu"),
    layers.MaxPooling2D((2, 2)),
    layers.Conv2D(64, (3, 3), activation="relu"),
    layers.MaxPooling2D((2, 2)),
    layers.Conv2D(64, (3, 3), activation="relu"),
])
model.summary()  # (26,26,32) 320 . (13,13,32) 0 . (11,11,64) 18,496 . (5,5,64) 0 . (3,3,64) 36,928
assert model.count_params() == 55_744

same = keras.Sequential([layers.Input((28, 28, 1)), layers.Conv2D(32, 3, padding="same")])
print('With padding="same" the first layer keeps 28x28:', same.output_shape)

model.add(layers.Flatten())
model.add(layers.Dense(64, activation="relu"))
model.add(layers.Dense(10, activation="softmax"))
model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

(x_train, y_train), (x_test, y_test) = load_fashion_mnist()
x, y = x_train[:2000] / 255.0, y_train[:2000]
print("An epoch = steps_per_epoch x batch_size = 100 x 20 = 2000 images, one update per batch;")
print("2 CPU workers augment the next batches (flips, shifts, zoom) while the model trains.")
history = model.fit(x, y, epochs=3, batch_size=20, steps_per_epoch=100, seed=1,
                    augment=Augment(flip="horizontal", shift=0.1, zoom=0.1), workers=2,
                    validation_data=(x_test[:1000] / 255.0, y_test[:1000]))
print({k: [round(v, 3) for v in vals] for k, vals in history.history.items()})
