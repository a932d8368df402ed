#' Pipes
#'
#' Models are built and trained with pipes: R's native `|>` (R >= 4.1) always works. `%>%` is magrittr's
#' pipe, forwarded when the magrittr package is installed (it comes with testthat and dplyr); without it,
#' `%>%` signals an error pointing to `|>`.
#'
#' @param lhs A value.
#' @param rhs A function call using the value.
#' @return The result of calling `rhs` with `lhs`.
#' @name pipe
#' @rdname pipe
#' @examples
#' if (pydlr:::.python_ready()) {
#' model <- keras_model_sequential(input_shape = c(28, 28, 1)) %>% layer_flatten() %>% layer_dense(10)
#' }
#' @export
#' @md
`%>%` <- function(lhs, rhs) {
  if (!requireNamespace("magrittr", quietly = TRUE)) {
    .not_supported("`%>%` without the magrittr package", "use R's native pipe `|>`, or install magrittr.")
  }
  pipe <- getExportedValue("magrittr", "%>%")
  eval(as.call(list(pipe, substitute(lhs), substitute(rhs))), parent.frame())
}

#' Multiple assignment (zeallot's `%<-%`)
#'
#' keras3 re-exports zeallot's destructuring assignment, so keras scripts write
#' `c(c(x_train, y_train), c(x_test, y_test)) %<-% dataset_mnist()`. pydlr forwards to zeallot when it is
#' installed (Debian: r-cran-zeallot); without it, `%<-%` signals an error saying so.
#'
#' @param x A pattern of names, e.g. `c(a, c(b, d))`.
#' @param value The value to unpack.
#' @return `value`, invisibly; the names are assigned in the calling environment.
#' @name multi-assign
#' @rdname multi-assign
#' @export
#' @md
#' @examples
#' if (requireNamespace("zeallot", quietly = TRUE)) {
#'   c(a, c(b, d)) %<-% list(1, list(2, 3))
#'   b + d
#' }
`%<-%` <- function(x, value) {
  if (!requireNamespace("zeallot", quietly = TRUE)) {
    .not_supported("`%<-%` without the zeallot package",
      "install zeallot (Debian: r-cran-zeallot), or index the list: d <- dataset_mnist(); d$train$x.")
  }
  assign_op <- getExportedValue("zeallot", "%<-%")
  eval(as.call(list(assign_op, substitute(x), substitute(value))), parent.frame())
}
