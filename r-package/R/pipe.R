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
#' \dontrun{
#' model <- keras_model_sequential(input_shape = c(28, 28, 1)) %>% layer_flatten() %>% layer_dense(10)
#' }
#' @export
`%>%` <- function(lhs, rhs) {
  if (!requireNamespace("magrittr", quietly = TRUE)) {
    .not_supported("`%>%` without the magrittr package", "use R's native pipe `|>`, or install magrittr.")
  }
  pipe <- getExportedValue("magrittr", "%>%")
  eval(as.call(list(pipe, substitute(lhs), substitute(rhs))), parent.frame())
}
