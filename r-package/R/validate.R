# Argument checks done in R before Python is called: each names the argument, what was expected and what
# came, and converts the value explicitly to the type Python receives (as keras3's verbs do at the border).
# `call` defaults to the user-facing function that called the check.

.check_count <- function(x, arg, min = 1L, null_ok = FALSE, call = sys.call(sys.parent())) {
  if (is.null(x) && null_ok) return(NULL)
  ok <- is.numeric(x) && length(x) == 1L && !is.na(x) && is.finite(x) && x == round(x) && x >= min
  if (!ok) .input_error(arg, sprintf("a whole number >= %d", min), x, call = call)
  as.integer(x)
}

.check_int_tuple <- function(x, arg, n = 2L, min = 1L, null_ok = FALSE, call = sys.call(sys.parent())) {
  if (is.null(x) && null_ok) return(NULL)
  if (is.list(x)) x <- unlist(x)
  ok <- is.numeric(x) && length(x) %in% c(1L, n) && !anyNA(x) && all(is.finite(x)) &&
    all(x == round(x)) && all(x >= min)
  if (!ok) {
    .input_error(arg, sprintf("a whole number >= %d or %d of them", min, n), x, call = call)
  }
  as.list(rep_len(as.integer(x), n)) # a Python list of n ints
}

# `upper_open`: upper itself is out; `expected`: the words for such a range ("a fraction in [0, 1)").
.check_number <- function(x, arg, lower = -Inf, upper = Inf, null_ok = FALSE, upper_open = FALSE, expected = NULL,
                          call = sys.call(sys.parent())) {
  if (is.null(x) && null_ok) return(NULL)
  ok <- is.numeric(x) && length(x) == 1L && !is.na(x) && x >= lower && (x < upper || (!upper_open && x == upper))
  if (!ok) .input_error(arg, if (is.null(expected)) .number_range(lower, upper) else expected, x, call = call)
  as.numeric(x)
}

.number_range <- function(lower, upper) {
  if (is.finite(lower) && is.finite(upper)) return(sprintf("a number in [%s, %s]", format(lower), format(upper)))
  if (is.finite(lower)) return(sprintf("a number >= %s", format(lower)))
  if (is.finite(upper)) return(sprintf("a number <= %s", format(upper)))
  "a number"
}

.check_flag <- function(x, arg, call = sys.call(sys.parent())) {
  if (!(is.logical(x) && length(x) == 1L && !is.na(x))) .input_error(arg, "TRUE or FALSE", x, call = call)
  x
}

.check_string <- function(x, arg, choices = NULL, null_ok = FALSE, call = sys.call(sys.parent())) {
  if (is.null(x) && null_ok) return(NULL)
  ok <- is.character(x) && length(x) == 1L && !is.na(x) && nzchar(x)
  if (ok && !is.null(choices)) ok <- tolower(x) %in% choices
  if (!ok) {
    expected <- if (is.null(choices)) "a single string" else
      sprintf("one of %s", paste0("\"", choices, "\"", collapse = ", "))
    .input_error(arg, expected, x, call = call)
  }
  if (is.null(choices)) x else tolower(x)
}

# A path as R reads it: `~` is the home folder (Python would take it as a folder named "~").
.check_path <- function(x, arg, null_ok = FALSE, call = sys.call(sys.parent())) {
  x <- .check_string(x, arg, null_ok = null_ok, call = call)
  if (is.null(x)) NULL else path.expand(x)
}

.check_shape <- function(x, arg, null_ok = TRUE, call = sys.call(sys.parent())) {
  if (is.null(x) && null_ok) return(NULL)
  if (is.list(x)) x <- unlist(x)
  ok <- is.numeric(x) && length(x) >= 1L && !anyNA(x) && all(x == round(x)) && all(x >= 1)
  if (!ok) .input_error(arg, "a vector of positive whole numbers such as c(28, 28, 1)", x, call = call)
  as.list(as.integer(x))
}

.check_model <- function(x, arg = "object", call = sys.call(sys.parent())) {
  if (!inherits(x, "pydlr_model")) {
    .input_error(arg, "a pydlr model (from keras_model_sequential() or load_model())", x, call = call)
  }
  invisible(x)
}

# A keras argument pydlr does not implement: accepted only at its "off" value, else a clear error.
.check_unsupported <- function(x, arg, offer, call = sys.call(sys.parent())) {
  if (!is.null(x)) .not_supported(sprintf("The keras argument `%s`", arg), offer, call = call)
  invisible(NULL)
}

# Data for fit/evaluate/predict: a numeric array (or matrix, data.frame of numbers) without NA.
.check_data <- function(x, arg, call = sys.call(sys.parent()), check_na = TRUE) {
  if (is.data.frame(x)) {
    numeric_cols <- vapply(x, function(col) is.numeric(col) && is.null(dim(col)), logical(1))
    if (!all(numeric_cols)) {
      .input_error(arg, "a numeric array, matrix or data.frame of numeric columns",
        I(sprintf("non-numeric column(s) %s", paste0("`", names(x)[!numeric_cols], "`", collapse = ", "))),
        call = call)
    }
    x <- as.matrix(x)
  }
  if (is.logical(x) && !is.null(dim(x))) storage.mode(x) <- "integer"
  if (!is.numeric(x) || is.object(x)) {
    .input_error(arg, "a numeric array or matrix (samples first, as in keras)", x, call = call)
  }
  if (is.null(dim(x))) dim(x) <- length(x) # a vector is n samples of one feature
  if (dim(x)[1] < 1L) .input_error(arg, "at least one sample", x, call = call)
  if (check_na && anyNA(x)) {
    .input_error(arg, "free of NA/NaN values", I(sprintf("%d NA values", sum(is.na(x)))), call = call)
  }
  x
}

# The column names of checked 2-D data (a data.frame's, a named matrix's), or NULL: they cross to Python
# beside the data (which crosses as a plain array), and the core (pydlr.data.columns) reads the columns by the
# names the model was fitted on, as predict.lm() does: their position alone would silently feed each value to
# another input.
.column_names <- function(x) if (length(dim(x)) == 2L) colnames(x)

# .check_data() for the verbs whose Python side reads every value of x anyway (fit(), evaluate(), predict(),
# lr_find(): pydlr.data.arrays checks finiteness in the pass that converts x): double data skip R's anyNA()
# pass (2-3% of predict() on 10,000 images). Evaluate the Python call through .na_found_by_python(), which
# runs R's check once Python refuses the input, so NA is still reported in R's words. Integer and logical
# data keep R's check: the bridge reads them for NA in any case.
.check_data_for_python <- function(x, arg, call = sys.call(sys.parent())) {
  .check_data(x, arg, call = call, check_na = !is.double(x))
}

# `also`: a further check of x in R's words, run after the NA check (pydlr_kmeans() names Inf values).
.na_found_by_python <- function(expr, x, arg = "x", call = sys.call(sys.parent()), also = NULL) {
  force(call) # the verb's call, taken before expr runs Python
  tryCatch(expr, pydlr_input_error = function(e) {
    .check_data(x, arg, call = call)
    if (!is.null(also)) also(x, arg, call)
    stop(e)
  })
}

# Targets: integer class labels (vector, factor) or a matrix (one-hot, or regression targets).
# `x_dim`: x's dims, to say when x holds its samples along another axis (an array transposed on the way).
.check_targets <- function(y, n, arg = "y", call = sys.call(sys.parent()), x_dim = NULL) {
  if (is.factor(y)) y <- as.integer(y) - 1L # keras wants 0-based class indices
  if (is.data.frame(y)) y <- as.matrix(y)
  if (!is.numeric(y) && !is.logical(y)) {
    .input_error(arg, "numeric class labels (a vector) or a numeric matrix", y, call = call)
  }
  ny <- if (is.null(dim(y))) length(y) else dim(y)[1]
  if (ny != n) {
    .check_samples_first(x_dim, ny, call = call)
    .input_error(arg, sprintf("one target per sample of x (%d)", n), I(sprintf("%d targets", ny)), call = call)
  }
  if (anyNA(y)) .input_error(arg, "free of NA values", I(sprintf("%d NA values", sum(is.na(y)))), call = call)
  if (is.logical(y)) storage.mode(y) <- "integer"
  if (is.null(dim(y))) dim(y) <- length(y) # a 1-d array crosses the bridge as one buffer
  y
}

# x whose samples lie along another axis than the first (as many as y has targets there, none first).
.check_samples_first <- function(x_dim, n_targets, call = sys.call(sys.parent())) {
  axis <- which(x_dim[-1] == n_targets)[1] + 1L
  if (is.na(axis)) return(invisible())
  .input_error("x", sprintf(paste0(
    "an array with its samples along the first axis, one per target of y (%d): x's axis %d has %d, so put it ",
    "first with aperm(x, c(%s))"), n_targets, axis, n_targets, paste(c(axis, setdiff(seq_along(x_dim), axis)), collapse = ", ")),
    I(sprintf("an array of dim c(%s)", paste(x_dim, collapse = ", "))), call = call)
}

# TRUE/FALSE labels for a softmax over 3 or more classes: taken as classes 0 and 1 they would train a model
# whose other classes never occur (keras takes them silently), almost surely a mistake.
.check_logical_labels <- function(object, y, x, arg = "y", call = sys.call(sys.parent())) {
  if (!is.logical(y) || (length(dim(y)) > 1L && dim(y)[2] > 1L)) return(invisible(y))
  units <- .py_call("api_r.training.softmax_units", object$py, as.list(dim(x)[-1]), .call = call)
  if (!is.null(units)) {
    .input_error(arg, sprintf(paste0(
      "class indices 0 to %d (whole numbers or a factor) for a model whose last layer is a %d-unit softmax; ",
      "for two classes end the model with layer_dense(units = 1, activation = \"sigmoid\") and ",
      "loss = \"binary_crossentropy\""), units - 1L, units), I("a logical vector (TRUE/FALSE)"), call = call)
  }
  invisible(y)
}

# Class targets for `object` (NULL: a model whose head is not built yet) with samples `x`: TRUE/FALSE
# refused for a multi-class softmax, a factor read on the training `levels`, then as .check_targets().
# One route for y, validation labels and test labels, so each is read as the others are.
.check_class_targets <- function(object, y, x, levels = NULL, arg = "y", call = sys.call(sys.parent())) {
  if (!is.null(object)) .check_logical_labels(object, y, x, arg, call = call)
  .check_targets(.on_levels(y, levels, arg, call = call), dim(x)[1], arg, call = call,
                 x_dim = if (arg == "y") dim(x))
}

# A factor `y` re-coded on the class levels the model was trained with (`levels`; NULL: as it is): its
# codes alone would shift the classes of a factor with other levels, e.g. a test set where a class is
# absent (factor() drops it) or the levels in another order.
# Labels as characters are read the same way, by name. Plain numbers stay 0-based class codes (keras'
# labels), except for a model trained on a factor whose levels are numbers other than "0", "1", ...: there
# the numbers could be codes or labels, and reading them as codes would silently shift every class.
.on_levels <- function(y, levels, arg = "y", call = sys.call(sys.parent())) {
  if (is.factor(y) && is.null(levels)) return(.check_numbered_factor(y, arg, call = call))
  if (is.null(levels)) return(y)
  if (is.numeric(y) && is.null(dim(y))) return(.check_codes_for_levels(y, levels, arg, call = call))
  if (!(is.factor(y) || is.character(y)) || identical(levels(y), levels)) return(y)
  unknown <- setdiff(unique(as.character(y[!is.na(y)])), levels)
  if (length(unknown)) {
    .input_error(arg, sprintf("a factor of the classes the model was trained on (%s)",
                              paste0('"', levels, '"', collapse = ", ")),
                 I(sprintf("labels not among them: %s", paste0('"', utils::head(unknown, 5), '"', collapse = ", "))),
                 call = call)
  }
  factor(as.character(y), levels = levels)
}

# Levels that are numbers but not the 0-based codes "0", "1", ... in order: a factor's codes and its labels
# then name different classes.
.codes_differ_from_labels <- function(levels) {
  !anyNA(suppressWarnings(as.numeric(levels))) && !identical(levels, as.character(seq_along(levels) - 1L))
}

.check_codes_for_levels <- function(y, levels, arg, call = sys.call(sys.parent())) {
  if (!.codes_differ_from_labels(levels)) return(y)
  shown <- paste0('"', utils::head(levels, 5), '"', collapse = ", ")
  .input_error(arg, sprintf(paste0(
    "a factor of the classes the model was trained on (%s%s): the model learnt a factor whose levels are ",
    "numbers, so plain numbers here could be 0-based class codes or those labels; pass factor(%s, levels = %s)"),
    shown, if (length(levels) > 5L) ", ..." else "", arg,
    if (length(levels) <= 5L) sprintf("c(%s)", shown) else "<the training factor's levels>"),
    I(sprintf("numbers (%s)", paste(utils::head(unique(y), 5), collapse = ", "))), call = call)
}

# A factor of numbers for a model trained on plain 0-based labels: its codes (0, 1, ... in level order)
# are the classes only when its levels are "0", "1", ... all present; otherwise (a test set lacking class
# 0, labels 1..10) the codes would silently name other classes than the numbers shown.
.check_numbered_factor <- function(y, arg, call = sys.call(sys.parent())) {
  if (!.codes_differ_from_labels(levels(y))) return(y)
  .input_error(arg, sprintf(paste0(
    "0-based class labels like those the model was trained on (numbers, not a factor): a factor's codes ",
    "count its levels from 0, so these labels would become other classes; pass as.integer(as.character(%s))"),
    arg), I(sprintf("a factor with levels %s", paste0('"', utils::head(levels(y), 5), '"', collapse = ", "))),
    call = call)
}

# A numeric matrix, one row per observation, from a matrix, a data.frame of numeric columns or an array of
# images (n, h, w[, c]) flattened row by row in R's column-major order.
.check_matrix <- function(x, arg, call = sys.call(sys.parent()), check_na = TRUE) {
  x <- .check_data(x, arg, call = call, check_na = check_na)
  if (length(dim(x)) != 2L) x <- matrix(x, nrow = dim(x)[1L])
  if (ncol(x) == 0L) .input_error(arg, "at least one column", x, call = call)
  x
}

# Class labels for a classifier: a factor (its codes) or whole numbers 0, 1, ..., one per sample, as a
# 1-d integer array (one buffer across the bridge).
.check_labels <- function(y, n, arg = "y", call = sys.call(sys.parent())) {
  y <- .check_targets(y, n, arg, call = call)
  if (length(dim(y)) > 1L && dim(y)[2] > 1L) .input_error(arg, "a vector of class labels", y, call = call)
  if (any(y < 0) || any(y != round(y))) .input_error(arg, "whole-number class labels 0, 1, ...", y, call = call)
  y <- as.integer(y)
  dim(y) <- length(y)
  y
}

# keras' labels are 0-based class indices: R's 1-based ones leave class 0 without a `what` (an image, a
# sample) and make one class too many, silently.
.warn_no_class_zero <- function(labels, arg, what, call = sys.call(sys.parent())) {
  if (!length(labels) || min(labels) < 1) return(invisible())
  warning(warningCondition(sprintf(
    "`%s` has no 0: they are 0-based class indices, so class 0 gets no %s and there are %d classes; for 1-based labels pass %s - 1",
    arg, what, as.integer(max(labels)) + 1L, arg), class = "pydlr_warning", call = call))
}

# match.arg() with pydlr's classed input error: `x` is one of the choices written as the default of argument
# `arg` of the calling function (the whole default means its first element; unique prefixes are accepted).
.match_choice <- function(x, arg, several_ok = FALSE, call = sys.call(sys.parent())) {
  choices <- eval(formals(sys.function(sys.parent()))[[arg]])
  if (identical(x, choices)) return(if (several_ok) choices else choices[[1L]])
  found <- if (is.character(x) && length(x) >= 1L && !anyNA(x)) choices[pmatch(x, choices, duplicates.ok = TRUE)]
  if (is.null(found) || anyNA(found) || (!several_ok && length(found) != 1L)) {
    .input_error(arg, sprintf("%s %s", if (several_ok) "some of" else "one of",
      paste0("\"", choices, "\"", collapse = ", ")), x, call = call)
  }
  found
}
