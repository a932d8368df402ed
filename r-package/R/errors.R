# pydlr's R conditions: plain classed conditions (no rlang), so users can catch exactly what they need:
#   pydlr_input_error          bad argument, detected in R before any work or by Python's InputError
#   pydlr_not_supported_error  a keras feature outside pydlr's subset (the message says what pydlr offers)
#   pydlr_training_error       training stopped for a reason to act on (NaN loss, ...)
#   pydlr_stale_object_error   a pydlr object restored with readRDS() (its Python object is gone)
#   pydlr_error                the parent class of all of them, and of any other error from Python
# A condition from Python also carries `python_class` (e.g. "pydlr.errors.InputError") and `notes` (the
# exception's __notes__, appended to the message); input errors carry `argument` and `expected`.

#' Signal a pydlr error condition
#'
#' @param message The message.
#' @param class Sub-classes placed before `"pydlr_error"`.
#' @param call The call to report.
#' @param ... Fields stored in the condition (e.g. `argument`).
#' @keywords internal
#' @noRd
pydlr_abort <- function(message, class = character(), call = NULL, ...) {
  fields <- Filter(Negate(is.null), list(...))
  cond <- structure(
    c(list(message = message, call = call), fields),
    class = c(class, "pydlr_error", "error", "condition")
  )
  stop(cond)
}

# An input error naming the function, the argument, what was expected, and what came.
.input_error <- function(argument, expected, received, call = sys.call(sys.parent())) {
  pydlr_abort(
    sprintf("%sargument `%s` must be %s; received %s.", .where(call), argument, expected, .describe(received)),
    class = "pydlr_input_error", call = call, argument = argument, expected = expected
  )
}

# "layer_conv_2d(): " for messages, from the user-facing call (S3 methods shown as their generic).
.where <- function(call) {
  if (!is.call(call) || !is.name(call[[1]])) return("")
  sprintf("%s(): ", sub("\\.pydlr_[a-z]+$", "", as.character(call[[1]])))
}

# A keras feature outside the supported subset, and what pydlr offers instead.
.not_supported <- function(feature, offer, call = sys.call(sys.parent())) {
  pydlr_abort(
    sprintf("%s is not supported by pydlr. %s", feature, offer),
    class = "pydlr_not_supported_error", call = call, feature = feature
  )
}

# A short description of a received value for messages: type, shape, and the value when small.
.describe <- function(x) {
  if (is.null(x)) return("NULL")
  if (inherits(x, "AsIs")) return(as.character(x))
  if (is.function(x)) return("a function")
  if (inherits(x, "python.builtin.object")) return(sprintf("a Python object (%s)", class(x)[1]))
  type <- if (is.factor(x)) "factor" else if (is.data.frame(x)) "data.frame" else typeof(x)
  d <- dim(x)
  if (!is.null(d)) {
    return(sprintf("%s %s %s of dim c(%s)", .article(type), type, if (length(d) == 2) "matrix" else "array",
                   paste(d, collapse = ", ")))
  }
  if (is.list(x)) return(sprintf("a list of length %d", length(x)))
  if (length(x) == 1) {
    shown <- if (is.character(x)) sprintf("\"%s\"", x) else format(x)
    return(sprintf("%s (%s)", shown, type))
  }
  if (length(x) <= 6) {
    shown <- if (is.character(x)) sprintf("\"%s\"", x) else format(x)
    return(sprintf("c(%s) (%s)", paste(shown, collapse = ", "), type))
  }
  sprintf("%s %s vector of length %d", .article(type), type, length(x))
}

.article <- function(word) if (grepl("^[aeiou]", word)) "an" else "a"

#' @export
#' @md
print.pydlr_error <- function(x, ...) {
  cat("<", class(x)[1], ">\n", conditionMessage(x), "\n", sep = "")
  invisible(x)
}
