# The one door from R to Python: the narrow API module pydlr.api_r, and Python errors turned into R
# conditions. R reaches nothing else in Python (see docs/CONTRACT.md).

#' The imported Python module `pydlr.api_r` (not converted: R decides what to convert, and how)
#' @keywords internal
#' @noRd
.pydlr_api <- function() {
  if (is.null(.pydlr_env$api)) {
    .pydlr_py() # the one-time Python set-up (zzz.R / config.R) happens there, before torch loads
    .pydlr_env$api <- reticulate::import("pydlr.api_r", convert = FALSE, delay_load = FALSE)
  }
  .pydlr_env$api
}

#' Call a function of `pydlr.api_r`; Python exceptions come back as classed R conditions
#'
#' @param fun Name of the function in `pydlr.api_r`.
#' @param ... Arguments, converted by reticulate (scalars, lists, Python objects made by the bridge).
#' @param .convert Convert the result to R with reticulate (`TRUE`, for small plain results) or return the
#'   Python object (`FALSE`: model handles, arrays that go through the bridge).
#' @param .call The user-facing call to report in the condition.
#' @keywords internal
#' @noRd
.api_call <- function(fun, ..., .convert = TRUE, .call = sys.call(-1L)) {
  api <- .pydlr_api()
  result <- tryCatch(
    api[[fun]](...),
    error = function(e) .signal_python_error(e, .call)
  )
  if (.convert) reticulate::py_to_r(result) else result
}

# Re-signal the Python exception behind `e` as an R condition, without the Python traceback.
.signal_python_error <- function(e, call) {
  last <- reticulate::py_last_error()
  from_python <- !is.null(last) && !is.null(last$value) &&
    grepl(last$value, conditionMessage(e), fixed = TRUE)
  if (!from_python) stop(e)
  exc <- attr(last, "exception")
  info <- if (is.null(exc)) {
    list(kind = "error", type = last$type, message = last$value)
  } else {
    reticulate::py_to_r(.pydlr_api()$error_info(exc))
  }
  # An error raised by R code that Python called back (a callback_lambda function) keeps its R message.
  message <- sub("^Error in [^:]*: *", "", info$message)
  cls <- switch(info$kind,
    input_error = "pydlr_input_error",
    not_supported_error = "pydlr_not_supported_error",
    training_error = "pydlr_training_error",
    character()
  )
  pydlr_abort(message,
    class = cls, call = call,
    argument = info$argument, expected = info$expected, python_type = info$type
  )
}

# An R function Python can call, receiving its arguments converted to R values (the API module is
# imported with convert = FALSE, which would otherwise hand R functions raw Python objects).
.r_callable <- function(fn) reticulate::r_to_py(fn, convert = TRUE)
