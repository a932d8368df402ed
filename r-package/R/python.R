# The one door from R to Python: every R file reaches Python through .py_call(), which calls a function of
# pydlr's narrow API (pydlr.api_r.*) or of the bridge (pydlr.bridge) by its qualified name, and turns Python
# exceptions into pydlr's R conditions (errors.R). R reaches nothing else in Python (docs/CONTRACT.md).

#' Call a Python function of pydlr by its qualified name; Python exceptions come back as R conditions
#'
#' @param fun The function's name under `pydlr`, e.g. `"api_r.models.add"` or `"bridge.numpy_from_r"`.
#' @param ... Arguments, converted by reticulate (scalars, lists, R functions, Python objects made by the
#'   bridge, model handles).
#' @param .convert Convert the result to R with reticulate (`TRUE`, for small plain results) or return the
#'   Python object (`FALSE`: model handles, arrays that go through the bridge).
#' @param .call The user-facing call to report in the condition.
#' @keywords internal
#' @noRd
.py_call <- function(fun, ..., .convert = TRUE, .call = sys.call(-1L)) {
  f <- .py_function(fun)
  args <- list(...)
  .check_live_handles(args, .call)
  result <- tryCatch(do.call(f, args), error = function(e) .signal_python_error(e, .call))
  if (.convert) reticulate::py_to_r(result) else result
}

# The Python function object, looked up once: reticulate's attribute access costs more than the bridge
# itself for small data. Modules are imported without conversion: R decides what to convert, and how.
.py_function <- function(fun) {
  f <- .pydlr_env$funs[[fun]]
  if (!is.null(f)) return(f)
  .pydlr_py() # the one-time Python set-up (zzz.R / config.R) happens there, before torch loads
  module <- sub("\\.[^.]+$", "", fun)
  f <- reticulate::import(paste0("pydlr.", module), convert = FALSE, delay_load = FALSE)[[sub("^.*\\.", "", fun)]]
  .pydlr_env$funs[[fun]] <- f
  f
}

# A Python object saved with saveRDS() or in a workspace comes back as a null pointer: the Python object
# died with the session that made it. Say so, and what works, before reticulate's Rcpp exception would.
.check_live_handles <- function(args, call) {
  for (a in args) {
    if (inherits(a, "python.builtin.object") && reticulate::py_is_null_xptr(a)) {
      pydlr_abort(paste(
        "This pydlr object was restored by readRDS() or from a saved workspace: the Python object behind it",
        "is not in the file (saveRDS() keeps only a pointer, empty once restored). Save models with",
        "save_model(model, path) and restore them with load_model(path); k-means fits are refitted with",
        "pydlr_kmeans()."
      ), class = "pydlr_stale_object_error", call = call)
    }
  }
}

# Re-signal the Python exception behind `e` as an R condition, without the Python traceback: the message
# (and the exception's notes, e.g. which callback raised it), the R class for pydlr's exception classes,
# and the fields `python_class`, `notes`, `argument`, `expected`.
.signal_python_error <- function(e, call) {
  exc <- .python_exception(e)
  if (is.null(exc)) stop(e)
  info <- reticulate::py_to_r(.py_function("api_r.errors.error_info")(exc))
  notes <- as.character(unlist(info$notes))
  # An error raised by R code that Python called back (a callback_lambda function) keeps its R message.
  message <- sub("^Error in [^:]*: *", "", info$message)
  if (length(notes)) message <- paste(c(message, notes), collapse = "\n")
  pydlr_abort(message,
    class = if (is.null(info$r_class)) character() else info$r_class, call = call,
    argument = info$argument, expected = info$expected, python_class = info$python_class,
    notes = if (length(notes)) notes
  )
}

# The Python exception object behind a reticulate error, or NULL for an error R raised itself.
.python_exception <- function(e) {
  if (!inherits(e, c("Rcpp::exception", "python.builtin.BaseException"))) return(NULL)
  last <- reticulate::py_last_error()
  if (is.null(last) || is.null(last$value) || !grepl(last$value, conditionMessage(e), fixed = TRUE)) {
    return(NULL)
  }
  attr(last, "exception")
}

# An R function Python can call, receiving its arguments converted to R values (the API modules are
# imported with convert = FALSE, which would otherwise hand R functions raw Python objects).
.r_callable <- function(fn) reticulate::r_to_py(fn, convert = TRUE)

# The warnings pydlr raised during a call (the door's `_pydlr_warnings`: messages already in R's syntax, e.g.
# images on another scale than the training images) as R warnings of the verb's call, which
# withCallingHandlers() and expect_warning() see.
.signal_python_warnings <- function(messages, call = sys.call(sys.parent())) {
  for (msg in unlist(messages)) warning(warningCondition(msg, class = "pydlr_warning", call = call))
}

# A Python function's array result as an R array with the same dims, through the bridge.
.py_array <- function(fun, ..., .call = sys.call(-1L)) {
  .bridge_from_py(.py_call(fun, ..., .convert = FALSE, .call = .call), call = .call)
}
