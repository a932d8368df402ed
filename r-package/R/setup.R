# Before Python starts: which interpreter pydlr would use and why, whether it has what pydlr needs, and the
# exact command that fixes what is missing. Nothing here starts Python in this R process: the interpreter
# is asked in a child process, so pydlr_config() works when Python is not set up at all.

# Python modules pydlr needs, and where each comes from.
.python_modules <- c(torch = "torch==2.13.0", numpy = "numpy<2", pyarrow = "pyarrow<26",
  safetensors = "safetensors", pydlr = "pydlr (the project's Python package)")

#' Where pydlr's Python stands, without starting it
#'
#' @param started Whether Python already runs in this R process (then it is the one).
#' @return A list: `python` (path or `NA`), `source` (why that interpreter), `exists`, `started`
#'   (Python already runs in this R process), `missing` (modules it cannot find), `ok`, `fix` (the
#'   command that fixes the first problem, or `NA`).
#' @keywords internal
#' @noRd
.python_situation <- function(started = reticulate::py_available(initialize = FALSE)) {
  chosen <- .python_choice(started)
  exists <- !is.na(chosen$python) && file.exists(chosen$python)
  missing <- if (exists) .missing_modules(chosen$python) else character()
  fix <- if (is.na(chosen$python)) {
    "install_pydlr()  # or, in a pydlr checkout: bash scripts/setup.sh"
  } else if (!exists) {
    sprintf("install_pydlr()  # or point pydlr at an interpreter: Sys.setenv(PYDLR_PYTHON = \"/path/to/python\")")
  } else if ("pydlr" %in% missing) {
    sprintf("install_pydlr()  # or: %s -m pip install --no-build-isolation -e /path/to/pydlr", shQuote(chosen$python))
  } else if (length(missing)) {
    sprintf("%s -m pip install %s", shQuote(chosen$python), paste(shQuote(.python_modules[missing]), collapse = " "))
  } else {
    NA_character_
  }
  list(python = chosen$python, source = chosen$source, exists = exists, started = started,
    missing = missing, ok = exists && !length(missing), fix = fix)
}

# The interpreter reticulate will start for pydlr, and the reason: Python already running, the user's
# PYDLR_PYTHON / options(pydlr.python) / RETICULATE_PYTHON, or the one the project's set-up recorded.
.python_choice <- function(started) {
  if (started) {
    return(list(python = reticulate::py_config()$python, source = "Python already runs in this R session"))
  }
  env <- Sys.getenv("PYDLR_PYTHON", "")
  if (nzchar(env)) return(list(python = env, source = "environment variable PYDLR_PYTHON"))
  opt <- getOption("pydlr.python")
  if (!is.null(opt)) return(list(python = opt, source = "option pydlr.python"))
  recorded <- .recorded_python()
  ret <- Sys.getenv("RETICULATE_PYTHON", "")
  if (nzchar(ret) && !identical(ret, recorded)) {
    return(list(python = ret, source = "environment variable RETICULATE_PYTHON"))
  }
  if (!is.na(recorded)) {
    return(list(python = recorded, source = "recorded by the project's set-up (scripts/setup.sh)"))
  }
  list(python = NA_character_, source = "none: no PYDLR_PYTHON, option pydlr.python or recorded set-up")
}

# The interpreter the project's set-up recorded when it installed this package, or NA.
.recorded_python <- function() {
  recorded <- system.file("python-path", package = "pydlr")
  if (!nzchar(recorded)) return(NA_character_)
  path <- trimws(readLines(recorded, n = 1L, warn = FALSE))
  if (nzchar(path)) path else NA_character_
}

# Modules of .python_modules that `python` cannot find (found by a child process, so this R process
# does not start Python; find_spec locates a module without importing it).
.missing_modules <- function(python) {
  code <- sprintf(
    "import importlib.util as u; print(' '.join(m for m in %s if u.find_spec(m) is None))",
    paste0("[", paste0("'", names(.python_modules), "'", collapse = ", "), "]")
  )
  out <- tryCatch(suppressWarnings(system2(python, c("-c", shQuote(code)), stdout = TRUE, stderr = FALSE)),
    error = function(e) NA_character_)
  if (!is.null(attr(out, "status")) || !length(out) || anyNA(out)) return(names(.python_modules))
  strsplit(trimws(out[length(out)]), " +")[[1]]
}

#' Whether pydlr's Python is set up (used to guard examples and vignettes)
#'
#' @return `TRUE` when Python already runs pydlr in this session, or when the interpreter pydlr would
#'   use exists and finds every module pydlr needs.
#' @keywords internal
#' @noRd
.python_ready <- function() {
  if (isTRUE(.pydlr_env$started)) return(TRUE)
  if (is.null(.pydlr_env$ready)) .pydlr_env$ready <- .python_situation()$ok
  .pydlr_env$ready
}

#' Set up pydlr's Python for this R package
#'
#' Runs the project's set-up (`scripts/setup.sh` of a pydlr checkout): the Debian packages it needs, a
#' virtual environment with the pinned Python dependencies (torch 2.13 CPU, NumPy < 2, ...), pydlr with
#' its native extension, and this R package wired to that environment. Nothing is downloaded at run time
#' afterwards. Restart R after it, then check with [pydlr_config()].
#'
#' @param project Path of a pydlr checkout (the folder holding `scripts/setup.sh`). Default: the
#'   environment variable `PYDLR_PROJECT`, else the checkout whose virtual environment this package was
#'   installed with.
#' @param dry_run `TRUE`: only return the command that would run.
#' @return The command (a string), invisibly; an error when the set-up fails.
#' @examples
#' install_pydlr(project = tempdir(), dry_run = TRUE)
#' @export
#' @md
install_pydlr <- function(project = NULL, dry_run = FALSE) {
  call <- sys.call()
  project <- .check_string(project, "project", null_ok = TRUE)
  if (is.null(project)) project <- .default_project()
  dry_run <- .check_flag(dry_run, "dry_run")
  if (is.null(project)) {
    .input_error("project", "the path of a pydlr checkout (git clone the pydlr repository first)", project, call = call)
  }
  script <- file.path(normalizePath(project, mustWork = FALSE), "scripts", "setup.sh")
  command <- paste("bash", shQuote(script))
  if (dry_run) return(invisible(command))
  if (!file.exists(script)) {
    .input_error("project", "a pydlr checkout holding scripts/setup.sh", project, call = call)
  }
  status <- system2("bash", script)
  if (!identical(status, 0L)) {
    pydlr_abort(sprintf("The set-up failed (exit status %d); its output is above. Command: %s", status, command),
      call = call)
  }
  message("pydlr is set up. Restart R, then run pydlr_config() to check.")
  invisible(command)
}

# The checkout from PYDLR_PROJECT, else the one owning the recorded interpreter (<root>/.venv/bin/python).
.default_project <- function() {
  env <- Sys.getenv("PYDLR_PROJECT", "")
  if (nzchar(env)) return(env)
  recorded <- .recorded_python()
  if (is.na(recorded)) return(NULL)
  root <- dirname(dirname(dirname(recorded)))
  if (file.exists(file.path(root, "scripts", "setup.sh"))) root else NULL
}
