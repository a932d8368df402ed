"""
Title: Subclassing Model and Layer
Description: A layer with its own weights (build/call/add_weight), a block layer holding other layers, and
a Model subclass whose call() wires them, trained with compile/fit.

Written for pydlr's test suite in the style of keras.io's "Making new layers and models via subclassing"
guide; the only line that differs from a Keras 3 script is the import. Small data (800 Fashion-MNIST images).
"""

import numpy as np

import pydlr as keras

(x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
x_train = np.expand_dims(x_train[:800].astype("float32") / 255, -1)
x_test = np.expand_dims(x_test[:200].astype("float32") / 255, -1)
y_train, y_test = y_train[:800], y_test[:200]


class ChannelScale(keras.layers.Layer):
    """Multiplies each channel by a learned factor (a weight per channel: channels are the last axis)."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", trainable=True)

    def call(self, inputs):
        return inputs * self.scale


class ConvBlock(keras.layers.Layer):
    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")
        self.scale = ChannelScale()
        self.pool = keras.layers.MaxPooling2D()

    def call(self, inputs):
        return self.pool(self.scale(self.conv(inputs)))


class SmallConvNet(keras.Model):
    def __init__(self, num_classes=10):
        super().__init__()
        self.block1 = ConvBlock(16)
        self.block2 = ConvBlock(32)
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.dropout = keras.layers.Dropout(0.1)
        self.classifier = keras.layers.Dense(num_classes, activation="softmax")

    def call(self, inputs, training=False):
        x = self.block2(self.block1(inputs))
        x = self.dropout(self.pool(x), training=training)
        return self.classifier(x)


keras.utils.set_random_seed(5)
model = SmallConvNet()
model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x_train, y_train, batch_size=32, epochs=3, validation_split=0.1, verbose=2)
model.summary()
print("Parameters:", model.count_params())
print("Test accuracy:", round(model.evaluate(x_test, y_test, verbose=0)[1], 3))
print("Predictions shape:", model.predict(x_test, verbose=0).shape)

"""
## Weights round trip: a new instance, built on the input shape, takes the saved weights
"""

model.save_weights("small_convnet.weights.safetensors")
again = SmallConvNet()
again.build((None, 28, 28, 1))
again.load_weights("small_convnet.weights.safetensors")
print("Reloaded weights give the same predictions:",
      bool(np.array_equal(again.predict(x_test, verbose=0), model.predict(x_test, verbose=0))))
