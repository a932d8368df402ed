"""
Title: Transfer learning and fine-tuning with a pretrained MobileNetV2
Description: A frozen ImageNet MobileNetV2 as a feature extractor with a new classifier on top, then the
whole network fine-tuned with a low learning rate.

Written for pydlr's test suite in the style of keras.io's "Transfer learning & fine-tuning" guide; the only
line that differs from a Keras 3 script is the import. Small data (Fashion-MNIST as 64 x 64 RGB images,
600 of them) so it runs in under a minute on a CPU.
"""

import numpy as np

import pydlr as keras

(x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()


def to_rgb_64(images):
    # 28 x 28 grey -> 56 x 56 (each pixel twice) -> padded to 64 x 64, three channels, 0-255 pixels
    big = images.repeat(2, axis=1).repeat(2, axis=2)
    big = np.pad(big, ((0, 0), (4, 4), (4, 4)))
    return np.repeat(big[..., None], 3, axis=-1).astype("float32")


x_train, y_train = to_rgb_64(x_train[:600]), y_train[:600]
x_test, y_test = to_rgb_64(x_test[:200]), y_test[:200]

"""
## The base model, frozen
"""

keras.utils.set_random_seed(3)
base_model = keras.applications.MobileNetV2(weights="imagenet", include_top=False, input_shape=(64, 64, 3))
base_model.trainable = False

inputs = keras.Input(shape=(64, 64, 3))
x = keras.applications.mobilenet_v2.preprocess_input(inputs)
x = base_model(x, training=False)  # BatchNormalization stays in inference mode, even when fine-tuning
x = keras.layers.GlobalAveragePooling2D()(x)
x = keras.layers.Dropout(0.2)(x)
outputs = keras.layers.Dense(10, activation="softmax")(x)
model = keras.Model(inputs, outputs)
print("Trainable weights while frozen:", len(model.trainable_weights))

model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=32, epochs=3, verbose=2)
frozen_accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
print("Accuracy with the frozen base:", round(frozen_accuracy, 3))

"""
## Fine-tuning: unfreeze the base and train everything with a low learning rate
"""

base_model.trainable = True
model.compile(optimizer=keras.optimizers.Adam(1e-5), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
print("Trainable weights while fine-tuning:", len(model.trainable_weights))
model.fit(x_train, y_train, batch_size=32, epochs=1, verbose=2)
print("Accuracy after fine-tuning:", round(model.evaluate(x_test, y_test, verbose=0)[1], 3))
