# Shared by the bridge tests: addresses and counts read on both sides of the bridge.

# A Python integer (e.g. a data pointer) as an R double, exactly (reticulate truncates big ints).
py_number <- function(x) as.numeric(reticulate::py_str(x))

# The address of a torch tensor's or NumPy array's first element.
py_data_ptr <- function(t) {
  if (inherits(t, "torch.Tensor")) py_number(t$data_ptr()) else py_number(t$ctypes$data)
}

# R objects the bridge keeps alive for Python, after both garbage collectors ran.
bridge_live <- function() {
  invisible(gc(verbose = FALSE))
  reticulate::import("gc")$collect()
  unname(pydlr:::.bridge_preserved(drain = TRUE)[["live"]])
}

# Resident memory of this R process, in MB.
vm_rss_mb <- function() {
  line <- grep("^VmRSS:", readLines("/proc/self/status"), value = TRUE)
  as.numeric(gsub("[^0-9]", "", line)) / 1024
}

# Python values as R values, converted by reticulate (small results only).
py_r <- function(x) reticulate::py_to_r(x)

# A torch tensor's shape or strides as an R integer vector.
py_shape <- function(t) unlist(py_r(reticulate::import_builtins(convert = FALSE)$list(t$shape)))
py_strides <- function(t) unlist(py_r(reticulate::import_builtins(convert = FALSE)$list(t$stride())))
