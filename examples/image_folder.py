"""Your own images: train the seed CNN from a folder of PNG files, as a Keras script would.

    python scripts/make_image_folder.py /tmp/fashion-png --limit 6000   # once: PNGs in class folders
    python examples/image_folder.py [/tmp/fashion-png]

The folder is streamed: worker processes decode, resize and augment the next batches while the model trains.
"""

import sys

import pydlr as keras
from pydlr import layers
from pydlr.data import Augment

folder = sys.argv[1] if len(sys.argv) > 1 else "/tmp/fashion-png"
train_ds, val_ds = keras.utils.image_dataset_from_directory(
    folder, validation_split=0.2, subset="both", seed=1, image_size=(28, 28), color_mode="grayscale",
    batch_size=20)
print(train_ds)

model = keras.Sequential([
    layers.Input((28, 28, 1)), layers.Rescaling(1 / 255),
    layers.Conv2D(32, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
    layers.Conv2D(64, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
    layers.Conv2D(64, (3, 3), activation="relu"),
    layers.Flatten(), layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(train_ds, epochs=3, steps_per_epoch=100, validation_data=val_ds, validation_steps=20,
                    augment=Augment(flip="horizontal", zoom=0.1), seed=1)
print(f"{len(train_ds)} batches a pass; 100 steps x 20 = 2000 images an epoch")
print("validation:", model.evaluate(val_ds, return_dict=True))

# one photo of your own: load_img decodes it as the dataset does; add the batch axis, then predict
img = keras.utils.load_img(val_ds.file_paths[0], color_mode="grayscale", target_size=(28, 28))
x = keras.utils.img_to_array(img)[None]
print("first validation file:", val_ds.class_names[int(model.predict(x, verbose=0).argmax())])
