# Package load: find the project's Python environment by itself, from any directory.

.pydlr_env <- new.env(parent = emptyenv())

#' Path of the Python interpreter pydlr uses
#'
#' Order: the `PYDLR_PYTHON` environment variable, then the `pydlr.python` option, then the
#' interpreter recorded by the project's set-up when it installed this package.
#' @return A path, or `NULL` when none is known.
#' @keywords internal
pydlr_python_path <- function() {
  env <- Sys.getenv("PYDLR_PYTHON", "")
  if (nzchar(env)) return(env)
  opt <- getOption("pydlr.python")
  if (!is.null(opt)) return(opt)
  recorded <- system.file("python-path", package = "pydlr")
  if (nzchar(recorded)) {
    path <- trimws(readLines(recorded, n = 1L, warn = FALSE))
    if (nzchar(path) && file.exists(path)) return(path)
  }
  NULL
}

.onLoad <- function(libname, pkgname) {
  python <- pydlr_python_path()
  # Only claim Python when the user has not chosen one and reticulate has not started yet.
  if (!is.null(python) && !nzchar(Sys.getenv("RETICULATE_PYTHON")) &&
      !reticulate::py_available(initialize = FALSE)) {
    Sys.setenv(RETICULATE_PYTHON = python)
  }
  invisible()
}
