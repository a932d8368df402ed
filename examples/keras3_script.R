# A keras3 script (the "simple MNIST convnet" of the keras3 examples) run on pydlr.
# Changed lines are marked "# pydlr:"; everything else is the keras3 code as written for keras3.
# See docs/coming-from-keras.md.

library(pydlr) # pydlr: was library(keras3)

# Model / data parameters
num_classes <- 10
input_shape <- c(28, 28, 1)

# Load the data and split it between train and test sets
c(c(x_train, y_train), c(x_test, y_test)) %<-% dataset_fashion_mnist() # pydlr: was dataset_mnist()
# pydlr: a subset and fewer epochs keep the run short on a CPU (PYDLR_EXAMPLE_N, _N_TEST, _EPOCHS)
n <- as.integer(Sys.getenv("PYDLR_EXAMPLE_N", "10000"))
n_test <- as.integer(Sys.getenv("PYDLR_EXAMPLE_N_TEST", "10000"))
x_train <- x_train[seq_len(n), , ]
y_train <- y_train[seq_len(n)]
x_test <- x_test[seq_len(n_test), , ]
y_test <- y_test[seq_len(n_test)]

# Scale images to the [0, 1] range
x_train <- x_train / 255
x_test <- x_test / 255
# Make sure images have shape (28, 28, 1)
x_train <- array_reshape(x_train, c(dim(x_train), 1))
x_test <- array_reshape(x_test, c(dim(x_test), 1))
cat("x_train shape:", dim(x_train), "\n")
cat(nrow(x_train), "train samples\n")
cat(nrow(x_test), "test samples\n")

# convert class vectors to binary class matrices
y_train <- to_categorical(y_train, num_classes)
y_test <- to_categorical(y_test, num_classes)

model <- keras_model_sequential(input_shape = input_shape)
model %>%
  layer_conv_2d(filters = 32, kernel_size = c(3, 3), activation = "relu") %>%
  layer_max_pooling_2d(pool_size = c(2, 2)) %>%
  layer_conv_2d(filters = 64, kernel_size = c(3, 3), activation = "relu") %>%
  layer_max_pooling_2d(pool_size = c(2, 2)) %>%
  layer_flatten() %>%
  layer_dropout(rate = 0.5) %>%
  layer_dense(units = num_classes, activation = "softmax")

summary(model)

batch_size <- 128
epochs <- as.integer(Sys.getenv("PYDLR_EXAMPLE_EPOCHS", "3")) # pydlr: was 15

model %>% compile(
  loss = "categorical_crossentropy",
  optimizer = "adam",
  metrics = "accuracy"
)

model %>% fit(
  x_train, y_train,
  batch_size = batch_size,
  epochs = epochs,
  validation_split = 0.1
)

score <- model %>% evaluate(x_test, y_test, verbose = 0)
cat("Test loss:", score$loss, "\n")
cat("Test accuracy:", score$accuracy, "\n")
