"""
Title: A training loop of your own with train_on_batch
Description: Mini-batches drawn by hand, one optimizer step each with train_on_batch, validation with
test_on_batch and predictions with predict_on_batch.

Written for pydlr's test suite in the style of keras.io's examples; the only line that differs from a
Keras 3 script is the import. Small data (1,000 MNIST digits).
"""

import numpy as np

import pydlr as keras

(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train = np.expand_dims(x_train[:1000].astype("float32") / 255, -1)
x_test = np.expand_dims(x_test[:200].astype("float32") / 255, -1)
y_train, y_test = keras.utils.to_categorical(y_train[:1000], 10), keras.utils.to_categorical(y_test[:200], 10)

keras.utils.set_random_seed(11)
model = keras.Sequential(
    [
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(16, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])

batch_size = 50
rng = np.random.default_rng(0)
first_loss = None
for epoch in range(3):
    order = rng.permutation(len(x_train))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        loss, accuracy = model.train_on_batch(x_train[idx], y_train[idx])
        if first_loss is None:
            first_loss = loss
    logs = model.test_on_batch(x_test, y_test, return_dict=True)
    print(f"Epoch {epoch + 1}: last batch loss {loss:.4f}, test loss {logs['loss']:.4f}, "
          f"test accuracy {logs['accuracy']:.3f}")

print("Steps taken:", model.optimizer.iterations)
print("Loss went down:", bool(loss < first_loss))
print("Test accuracy:", round(logs["accuracy"], 3))
probs = model.predict_on_batch(x_test[:8])
print("predict_on_batch shape:", probs.shape)
print("Agrees with predict:", bool(np.allclose(probs, model.predict(x_test[:8], verbose=0), atol=1e-5)))
