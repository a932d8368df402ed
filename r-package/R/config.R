# Torch inside an R process at Python's speed: the process set-up done before torch's first import, and
# pydlr_config(), which reports what torch actually bound to.
#
# Why a set-up is needed: R (libR.so) is linked against the system BLAS (libblas.so.3: reference BLAS,
# OpenBLAS or MKL through Debian's alternatives) and libgomp, both loaded with global symbols before Python
# starts. torch's libtorch_cpu.so carries MKL inside and calls it through its own exported `sgemm_`/`dgemm_`;
# the dynamic loader resolves those calls in the global scope first, so inside R torch's matrix products ran
# on R's BLAS (26x slower with the reference BLAS). Loading torch with RTLD_DEEPBIND puts torch's own
# libraries ahead of the global scope for torch's symbol look-ups only; the flags are restored right after,
# so modules imported later (numpy, scipy, pyarrow, ...) load as usual, and R keeps its own BLAS for `%*%`.
# The set-up talks to Python directly (py_eval, py_run_string) because it must run before pydlr, which
# imports torch, is imported; every later call goes through .py_call() (python.R).

#' Prepare the embedded Python so torch binds to its own kernels, then import torch (idempotent)
#'
#' Called once by [.pydlr_py()]. Options: `pydlr.deepbind` (default `TRUE`, or `FALSE` when the
#' environment variable `PYDLR_DEEPBIND` is `0`; `FALSE` loads torch with Python's default flags) and
#' `pydlr.num_threads` (torch's intra-op threads; default: torch's choice, the number of cores, as in
#' Python).
#' @return The set-up record (a list), invisibly.
#' @keywords internal
#' @noRd
.pydlr_prepare_python <- function() {
  if (!is.null(.pydlr_env$setup)) return(invisible(.pydlr_env$setup))
  if (!reticulate::py_available(initialize = FALSE) && is.null(getOption("reticulate.poetry.project"))) {
    # reticulate takes any pyproject.toml with a [tool] table in the working directory (this project's own,
    # when R runs from its root) for a Poetry project and warns that poetry is missing. pydlr has chosen the
    # interpreter already (.onLoad), so Python starts without that lookup: the option points reticulate at a
    # directory without a pyproject.toml, for this start only.
    old <- options(reticulate.poetry.project = system.file(package = "pydlr"))
    on.exit(options(old), add = TRUE)
  }
  preloaded <- reticulate::py_eval("'torch' in __import__('sys').modules")
  want <- isTRUE(getOption("pydlr.deepbind", Sys.getenv("PYDLR_DEEPBIND", "1") != "0"))
  interposer <- .blas_in_global_scope()
  can_bind <- want && nzchar(interposer) && .deepbind_supported()
  deepbind <- can_bind && !preloaded
  # pydlr's own extension can still be bound right when someone imported torch before us.
  env <- reticulate::py_run_string(.import_torch_code(deepbind, can_bind), local = TRUE)
  .pydlr_env$setup <- list(
    deepbind = deepbind, preloaded = preloaded,
    mechanism = .setup_mechanism(preloaded, deepbind, want, interposer),
    python = env[["_executable"]], flags_restored = isTRUE(env[["_restored"]])
  )
  if (preloaded && nzchar(interposer)) .warn_torch_preloaded()
  invisible(.pydlr_env$setup)
}

# pydlr.ops switches its caching allocator for torch's CPU tensors on when imported (pydlr.ops.set_cpu_cache);
# options(pydlr.cpu_cache = FALSE) before the first pydlr call (or PYDLR_CPU_CACHE_MB=0) keeps torch's own.
.use_cpu_cache <- function() {
  on <- isTRUE(getOption("pydlr.cpu_cache", TRUE))
  if (!on) reticulate::import("pydlr.ops", convert = FALSE)$set_cpu_cache(FALSE)
  invisible(on)
}

# Python code run once: import torch (with RTLD_DEEPBIND for torch's own look-ups when `deepbind`), load
# pydlr's native extension the same way (it calls sgemm_ too; its import later reuses the loaded library),
# restore the loader flags, and apply `options(pydlr.num_threads)`.
.import_torch_code <- function(deepbind, bind_native) {
  flags <- function(on) if (on) "os.RTLD_NOW | os.RTLD_DEEPBIND" else "_flags"
  threads <- getOption("pydlr.num_threads")
  paste(
    "import ctypes, glob, importlib.util, os, sys",
    "_flags = sys.getdlopenflags()",
    sprintf("sys.setdlopenflags(%s)", flags(deepbind)),
    "try:",
    "    import torch",
    "finally:",
    "    sys.setdlopenflags(_flags)",
    "_spec = importlib.util.find_spec('pydlr')",
    # The build pydlr.ops will load: PYDLR_NATIVE_LIB's (another build, e.g. the sanitized one) when set, as
    # loading both would register torch.ops.pydlr twice.
    "_native = [os.environ['PYDLR_NATIVE_LIB']] if os.environ.get('PYDLR_NATIVE_LIB') else (",
    "    sorted(glob.glob(os.path.join(_spec.submodule_search_locations[0], '_C*.so'))) if _spec else [])",
    sprintf("_handle = ctypes.CDLL(_native[0], mode=%s) if _native else None", flags(bind_native)),
    if (!is.null(threads)) sprintf("torch.set_num_threads(%d)", as.integer(threads)),
    "_restored = sys.getdlopenflags() == _flags",
    "_executable = sys.executable",
    sep = "\n"
  )
}

.setup_mechanism <- function(preloaded, deepbind, want, interposer) {
  if (preloaded) return("none: torch was imported before pydlr's set-up")
  if (deepbind) {
    return(sprintf("RTLD_DEEPBIND for torch's import (global scope had BLAS symbols from %s)", interposer))
  }
  if (!want) return("none: disabled by options(pydlr.deepbind = FALSE)")
  if (!nzchar(interposer)) return("none needed: no BLAS symbols in the process's global scope")
  "none: RTLD_DEEPBIND unavailable (not glibc Linux)"
}

# torch came in before pydlr could prepare the process: when its GEMM calls really go to R's BLAS, say so
# once per session, with the fix (pydlr_config() reports the details).
.warn_torch_preloaded <- function() {
  cpu_lib <- .loaded_libraries("^libtorch_cpu\\.so")[1]
  gemm <- .resolved_symbol_library(cpu_lib, "sgemm_")
  if (is.na(gemm) || is.na(cpu_lib) || identical(normalizePath(gemm), normalizePath(cpu_lib))) return()
  warning(paste0(
    "torch was imported (e.g. by reticulate::import(\"torch\")) before pydlr's first call, so torch's ",
    "matrix products run on R's BLAS (", basename(gemm), "), which can be 10x slower. Fix: restart R and ",
    "call a pydlr function (e.g. pydlr_config()) before anything imports torch. See ?pydlr_config."
  ), call. = FALSE)
}

# Which loaded library, if any, exports sgemm_/dgemm_ in the global scope (the symbols torch would bind to).
.blas_in_global_scope <- function() {
  address <- reticulate::py_eval(paste0(
    "(lambda c: next((float(c.cast(getattr(c.CDLL(None), s), c.c_void_p).value) for s in ('sgemm_', 'dgemm_')",
    " if hasattr(c.CDLL(None), s)), None))(__import__('ctypes'))"
  ))
  if (is.null(address)) return("") # a float: reticulate would truncate a Python int beyond 32 bits
  maps <- .proc_maps()
  hit <- maps$path[maps$start <= address & address < maps$end]
  if (length(hit)) hit[[1]] else "an unknown library"
}

.deepbind_supported <- function() {
  isTRUE(Sys.info()[["sysname"]] == "Linux") &&
    isTRUE(reticulate::py_eval("hasattr(__import__('os'), 'RTLD_DEEPBIND')"))
}

# Paths of the shared libraries mapped into this process whose file name matches `pattern`.
.loaded_libraries <- function(pattern) {
  maps <- .proc_maps()
  if (is.null(maps)) return(character())
  paths <- unique(maps$path[grepl(pattern, basename(maps$path))])
  paths[nzchar(paths)]
}

# /proc/self/maps of this (R) process as a data.frame: start, end (doubles), offset, path.
.proc_maps <- function() {
  if (!file.exists("/proc/self/maps")) return(NULL)
  lines <- readLines("/proc/self/maps", warn = FALSE)
  parts <- regmatches(lines, regexec("^([0-9a-f]+)-([0-9a-f]+) \\S+ ([0-9a-f]+) \\S+ \\S+\\s*(.*)$", lines))
  parts <- do.call(rbind, parts[lengths(parts) == 5L])
  data.frame(
    start = as.numeric(paste0("0x", parts[, 2])), end = as.numeric(paste0("0x", parts[, 3])),
    offset = as.numeric(paste0("0x", parts[, 4])), path = parts[, 5], stringsAsFactors = FALSE
  )
}

#' The library a loaded shared object's calls to `symbol` really go to
#'
#' Reads the object's relocation for `symbol` from its ELF file, then the resolved address from its GOT
#' slot in this process's memory (/proc/self/mem), and names the mapped file holding that address. This is
#' what the dynamic loader actually bound, not a guess from which libraries are loaded.
#' @param library Path of a loaded shared object (e.g. torch's libtorch_cpu.so).
#' @param symbol Symbol name, e.g. `"sgemm_"`.
#' @return The path of the library the call resolves to, or `NA` when it cannot be told.
#' @keywords internal
#' @noRd
.resolved_symbol_library <- function(library, symbol) {
  maps <- .proc_maps()
  if (is.null(maps) || is.na(library)) return(NA_character_)
  base <- maps$start[maps$path == library & maps$offset == 0][1]
  slot <- tryCatch(.elf_got_offset(library, symbol), error = function(e) NA_real_)
  if (is.na(base) || is.na(slot)) return(NA_character_)
  target <- tryCatch(.read_pointer(base + slot), error = function(e) NA_real_)
  if (is.na(target)) return(NA_character_)
  hit <- maps$path[maps$start <= target & target < maps$end]
  if (length(hit)) hit[[1]] else NA_character_
}

.read_pointer <- function(address) {
  con <- file("/proc/self/mem", "rb")
  on.exit(close(con))
  seek(con, address)
  sum(as.numeric(readBin(con, "raw", 8L)) * 256^(0:7))
}

# Offset (from the load base) of the GOT slot the ELF64 object's relocations use for `symbol`.
.elf_got_offset <- function(path, symbol) {
  con <- file(path, "rb")
  on.exit(close(con))
  read_at <- function(offset, n, what = "integer") {
    seek(con, offset)
    readBin(con, what, n, size = if (what == "raw") 1L else 4L, endian = "little")
  }
  u32 <- function(x) ifelse(x < 0, x + 2^32, x)
  u64 <- function(lo, hi) u32(lo) + u32(hi) * 2^32
  head <- read_at(0, 64L, "raw")
  stopifnot(identical(head[1:4], as.raw(c(0x7f, 0x45, 0x4c, 0x46))), head[5] == as.raw(2))
  shoff <- u64(readBin(head[41:44], "integer"), readBin(head[45:48], "integer"))
  shnum <- readBin(head[61:62], "integer", size = 2L, signed = FALSE)
  sh <- matrix(read_at(shoff, 16L * shnum), nrow = 16L) # 64-byte headers as 16 int32 columns
  type <- sh[2, ]
  offset <- u64(sh[7, ], sh[8, ])
  size <- u64(sh[9, ], sh[10, ])
  link <- sh[11, ] + 1L
  target <- c(charToRaw(symbol), as.raw(0L))
  for (i in which(type == 4L)) { # SHT_RELA
    rela <- matrix(read_at(offset[i], size[i] / 4), nrow = 6L)
    sym <- rela[4, ]
    keep <- which(sym > 0L)
    dynsym <- link[i]
    dynstr <- link[dynsym]
    names_at <- read_at(offset[dynsym], size[dynsym] / 4)[6L * sym[keep] + 1L]
    strtab <- read_at(offset[dynstr], size[dynstr], "raw")
    idx <- outer(u32(names_at), seq_along(target), "+")
    match <- rowSums(matrix(strtab[idx] == rep(target, each = length(keep)), ncol = length(target)))
    found <- keep[match == length(target)]
    if (length(found)) return(u64(rela[1, found[1]], rela[2, found[1]]))
  }
  NA_real_
}

#' pydlr's situation report: which Python, what is missing, and the kernels torch really uses
#'
#' Works before Python starts and when it cannot start: it says which interpreter pydlr would use and why
#' (`PYDLR_PYTHON`, `options(pydlr.python)`, `RETICULATE_PYTHON`, or the one the project's set-up
#' recorded), whether it exists, which modules it lacks, and the exact command that fixes it (often
#' [install_pydlr()]). When Python is ready it starts it (unless `start = FALSE`) and reports the versions
#' of Python, torch, NumPy, pyarrow and reticulate; CUDA and its devices; pydlr's native extension and its
#' features; which library torch's GEMM calls resolve to (read from the process's memory), the BLAS and
#' OpenMP libraries loaded in the process (`/proc/self/maps`); threads; the allocator setting; the
#' pretrained weights (package installed, converted cache present). It warns when torch's matrix products
#' do not run on torch's own kernels (e.g. when torch was imported, by another package, before pydlr could
#' prepare the process).
#'
#' @section How pydlr makes torch fast inside R:
#' R is linked against the system BLAS and libgomp, loaded before Python with global symbols. Without
#' care, torch's calls to `sgemm_`/`dgemm_` resolve to R's BLAS (with Debian's reference BLAS a 1024x1024
#' matrix product is 26 times slower than in Python). pydlr imports torch with `RTLD_DEEPBIND`, so
#' torch's libraries look up their own symbols first (its bundled MKL); the loader flags are restored
#' right after, so later Python imports and R's own `%*%` are unaffected. The OpenMP runtime is
#' the libgomp R loaded (a process can hold one `libgomp.so.1`), the system's GNU OpenMP; torch's wheel
#' bundles an older build of the same runtime, which ran convolutions and GEMM 2-4% faster inside R. Only
#' `LD_PRELOAD` at R's start can choose it (`openmp_torch_bundled` is its path); `R` and `Rscript` started
#' from pydlr's `scripts/env.sh` do that.
#' Set `options(pydlr.deepbind = FALSE)` before the first pydlr call to turn the set-up off, and
#' `options(pydlr.num_threads = n)` to choose torch's thread count. torch's CPU tensors come from pydlr's
#' caching allocator: the blocks a training step frees are reused by the next step instead of going back to
#' malloc, which without `GLIBC_TUNABLES` set at R's start returns large blocks to the system and page-faults
#' them in again (MobileNetV2 training 30% slower). It keeps at most `PYDLR_CPU_CACHE_MB` (default 1/8 of RAM,
#' at most 4 GiB); `options(pydlr.cpu_cache = FALSE)` before the first pydlr call keeps torch's own allocator. R's libgomp reads
#' `OMP_WAIT_POLICY` and `GOMP_SPINCOUNT` once, when R starts: start R with `GOMP_SPINCOUNT=10000` (as
#' pydlr's scripts do) so that threads spin only briefly (setting it from R is too late). Details:
#' `docs/r-speed.md`.
#'
#' @param warn Whether to emit a warning when torch is not using its own kernels.
#' @param start Whether to start Python when it is ready (`FALSE`: report only what can be told without
#'   starting it).
#' @return An object of class `pydlr_config`: a list with `situation` (the interpreter, `source`,
#'   `exists`, `missing` modules, `fix`) and `started`; once Python runs also `python`, `python_version`,
#'   `torch_version`, `numpy_version`, `pyarrow_version`, `reticulate_version`, `cuda` (list: `built`,
#'   `available`, `devices`), `weights` (list per weight set: `present`, `cached`, `install_hint`),
#'   `gemm_library`, `gemm_own` (logical), `native_gemm_library`, `native_gemm_own`, `blas_loaded`,
#'   `openmp_loaded`, `openmp_torch_bundled`, `threads` (list), `allocator`, `cpu_cache` (list: `enabled`,
#'   `cached_bytes`, `limit_bytes`, `hits`, `misses`; see below), `omp_wait_policy` and
#'   `gomp_spincount` (as R started: libgomp reads them once, at R's start), `mechanism`, `native`
#'   (build info list or `NULL`), `torch_parallel_info`, `torch_build` and `problems` (character).
#' @examples
#' cfg <- pydlr_config(start = FALSE) # never starts Python
#' cfg$situation$source
#' if (pydlr:::.python_ready()) pydlr_config()
#' @export
pydlr_config <- function(warn = TRUE, start = TRUE) {
  .check_flag(warn, "warn")
  .check_flag(start, "start")
  situation <- .python_situation()
  if (!start || (!situation$ok && !situation$started)) {
    cfg <- structure(list(situation = situation, started = FALSE), class = "pydlr_config")
    cfg$problems <- if (!situation$ok) .situation_problems(situation) else character()
    return(cfg)
  }
  info <- .py_call("api_r.config.runtime_info")
  cpu_lib <- .loaded_libraries("^libtorch_cpu\\.so")[1]
  gemm <- .resolved_symbol_library(cpu_lib, "sgemm_")
  native_lib <- .loaded_libraries("^_C\\..*\\.so$")
  native_lib <- native_lib[basename(dirname(native_lib)) == "pydlr"][1]
  native_gemm <- .resolved_symbol_library(native_lib, "sgemm_")
  cfg <- structure(list(
    situation = situation, started = TRUE,
    python = info$python, python_version = info$python_version, torch_version = info$torch_version,
    pydlr_version = info$pydlr_version, numpy_version = info$numpy_version,
    pyarrow_version = info$pyarrow_version, reticulate_version = as.character(utils::packageVersion("reticulate")),
    cuda = info$cuda, weights = info$weights,
    gemm_library = gemm,
    gemm_own = !is.na(gemm) && !is.na(cpu_lib) && identical(normalizePath(gemm), normalizePath(cpu_lib)),
    native_gemm_library = native_gemm,
    native_gemm_own = is.na(native_lib) || identical(native_gemm, cpu_lib),
    blas_loaded = .loaded_libraries("blas|lapack|mkl|atlas|blis"),
    openmp_loaded = .loaded_libraries("^lib(g|i|io)omp"),
    openmp_torch_bundled = file.path(info$torch_lib, "lib", "libgomp.so.1"),
    threads = c(info$threads, list(
      OMP_NUM_THREADS = Sys.getenv("OMP_NUM_THREADS", NA), MKL_NUM_THREADS = Sys.getenv("MKL_NUM_THREADS", NA)
    )),
    allocator = Sys.getenv("GLIBC_TUNABLES", NA), cpu_cache = info$cpu_cache,
    omp_wait_policy = .startup_env("OMP_WAIT_POLICY"), gomp_spincount = .startup_env("GOMP_SPINCOUNT"),
    mechanism = .pydlr_env$setup$mechanism, native = info$native,
    torch_parallel_info = info$torch_parallel_info, torch_build = info$torch_build
  ), class = "pydlr_config")
  cfg$problems <- .config_problems(cfg)
  if (warn && length(cfg$problems)) {
    warning(paste(c("torch is not running at full speed in this R process:", cfg$problems),
      collapse = "\n  - "
    ), call. = FALSE)
  }
  cfg
}

# What keeps Python from starting, in words, each with its fix.
.situation_problems <- function(s) {
  what <- if (is.na(s$python)) {
    "no Python interpreter is known to pydlr"
  } else if (!s$exists) {
    sprintf("the interpreter %s does not exist", s$python)
  } else {
    sprintf("%s lacks the Python module(s) %s", s$python, paste(s$missing, collapse = ", "))
  }
  sprintf("%s. Fix: %s", what, s$fix)
}

# A variable as it was when this process started (/proc/self/environ): what libgomp, loaded with R and
# initialised before any R code ran, has read. Sys.setenv() in R comes too late for it.
.startup_env <- function(name) {
  if (!file.exists("/proc/self/environ")) return(Sys.getenv(name, NA))
  raw <- readBin("/proc/self/environ", "raw", 1e6)
  ends <- which(raw == as.raw(0L))
  starts <- c(1L, head(ends, -1L) + 1L)
  vars <- vapply(seq_along(ends), function(i) rawToChar(raw[starts[i]:(ends[i] - 1L)]), "")
  hit <- vars[startsWith(vars, paste0(name, "="))]
  if (length(hit)) sub("^[^=]*=", "", hit[[1]]) else NA_character_
}

.config_problems <- function(cfg) {
  problems <- character()
  if (is.na(cfg$gemm_library)) {
    problems <- c(problems, "could not tell which library torch's GEMM (sgemm_) resolves to")
  } else if (!cfg$gemm_own) {
    problems <- c(problems, sprintf(
      "torch's GEMM resolves to %s, not torch's own MKL (%s); restart R and call pydlr before anything imports torch",
      cfg$gemm_library, cfg$mechanism
    ))
  }
  if (!isTRUE(cfg$native_gemm_own)) {
    problems <- c(problems, sprintf(
      "pydlr's native extension calls sgemm_ in %s, not torch's MKL",
      if (is.na(cfg$native_gemm_library)) "an unknown library" else cfg$native_gemm_library
    ))
  }
  runtimes <- unique(sub("\\.so.*$", "", basename(cfg$openmp_loaded)))
  if (length(runtimes) > 1L) {
    problems <- c(problems, sprintf(
      "several OpenMP runtimes are loaded (%s): threads may oversubscribe the cores",
      paste(cfg$openmp_loaded, collapse = ", ")
    ))
  }
  if (!is.na(cfg$threads$torch) && cfg$threads$torch < min(2L, cfg$threads$cores, na.rm = TRUE) &&
      is.na(cfg$threads$OMP_NUM_THREADS)) {
    problems <- c(problems, sprintf("torch uses %d thread(s) on %d cores", cfg$threads$torch, cfg$threads$cores))
  }
  problems
}

#' @export
print.pydlr_config <- function(x, ...) {
  line <- function(label, value) cat(sprintf("%-22s %s\n", label, paste(value, collapse = "\n                       ")))
  cat("pydlr configuration\n")
  s <- x$situation
  line("Python", sprintf("%s (%s)%s", s$python, s$source, if (!is.na(s$python) && !s$exists) " [MISSING]" else ""))
  if (!isTRUE(x$started)) {
    line("Python modules", if (s$exists) {
      if (length(s$missing)) paste("missing:", paste(s$missing, collapse = ", ")) else "all found (torch, numpy, pyarrow, safetensors, pydlr)"
    } else "not checked")
    line("Python started", "no")
    if (!is.na(s$fix)) line("Fix", s$fix)
    return(invisible(x))
  }
  line("Versions", sprintf("Python %s, pydlr %s, torch %s, NumPy %s, pyarrow %s, reticulate %s",
    x$python_version, x$pydlr_version, x$torch_version, x$numpy_version, if (is.null(x$pyarrow_version)) "absent" else x$pyarrow_version,
    x$reticulate_version))
  line("CUDA", if (isTRUE(x$cuda$available)) {
    paste(c(sprintf("CUDA %s", x$cuda$built), paste0("device ", seq_along(x$cuda$devices) - 1L, ": ", unlist(x$cuda$devices))), collapse = "; ")
  } else if (is.null(x$cuda$built)) "not in this torch build (CPU only)" else sprintf("torch built with CUDA %s, no device found", x$cuda$built))
  for (w in x$weights) {
    line(sprintf("Weights %s", w$name), paste0(
      if (isTRUE(w$present)) "installed" else sprintf("NOT installed (fix: %s)", w$install_hint),
      if (isTRUE(w$cached)) sprintf(", cached at %s", w$cache) else ", not cached yet (converted on first use)"
    ))
  }
  .print_process_setup(x, line)
  if (length(x$problems)) {
    cat("Problems:\n")
    cat(paste0("  - ", x$problems, "\n"), sep = "")
  }
  invisible(x)
}

# Whether torch runs on its bundled libgomp (preloaded when R started) rather than the system copy R links.
.openmp_torch_own <- function(x) {
  bundled <- suppressWarnings(normalizePath(x$openmp_torch_bundled, mustWork = FALSE))
  bundled %in% suppressWarnings(normalizePath(x$openmp_loaded, mustWork = FALSE))
}

# The process part of the report: where GEMM binds, BLAS/OpenMP libraries, threads, allocator, extension.
.print_process_setup <- function(x, line) {
  line("GEMM (sgemm_) from", paste0(
    if (is.na(x$gemm_library)) "unknown" else x$gemm_library,
    if (isTRUE(x$gemm_own)) "  [torch's own MKL]" else "  [NOT torch's]"
  ))
  if (!is.na(x$native_gemm_library)) {
    line("pydlr native GEMM", paste0(x$native_gemm_library, if (isTRUE(x$native_gemm_own)) "  [torch's own MKL]" else "  [NOT torch's]"))
  }
  line("Set-up", x$mechanism)
  line("BLAS libs loaded", if (length(x$blas_loaded)) x$blas_loaded else "none")
  line("OpenMP runtime", if (length(x$openmp_loaded)) x$openmp_loaded else "none")
  if (length(x$openmp_loaded) && !.openmp_torch_own(x)) {
    line("", paste0("(R's libgomp.so.1 serves torch: one per process. For torch's own copy, 2-4% faster on ",
      "convolutions and GEMM, start R with LD_PRELOAD=", x$openmp_torch_bundled, ", as pydlr's scripts/env.sh does)"))
  }
  t <- x$threads
  line("Threads", sprintf(
    "torch %d (inter-op %d), cores %d, OMP_NUM_THREADS=%s, MKL_NUM_THREADS=%s",
    t$torch, t$torch_interop, t$cores, t$OMP_NUM_THREADS, t$MKL_NUM_THREADS
  ))
  line("OpenMP wait policy", if (is.na(x$omp_wait_policy) && is.na(x$gomp_spincount)) {
    "libgomp default (long spin, then sleep); start R with GOMP_SPINCOUNT=10000 as pydlr's scripts do"
  } else {
    paste0(
      "OMP_WAIT_POLICY=", x$omp_wait_policy, ", GOMP_SPINCOUNT=", x$gomp_spincount,
      " (from the environment R started with)"
    )
  })
  line("Allocator", if (is.na(x$allocator)) "glibc defaults (GLIBC_TUNABLES unset)" else x$allocator)
  cache <- x$cpu_cache
  size <- function(bytes) format(structure(as.numeric(bytes), class = "object_size"), units = "auto", standard = "IEC")
  if (!is.null(cache)) {
    line("CPU tensor cache", if (isTRUE(cache$enabled == 1)) {
      sprintf("pydlr's caching allocator: %s kept of %s at most, %s reuses, %s new blocks",
        size(cache$cached_bytes), size(cache$limit_bytes), format(cache$hits, big.mark = ","),
        format(cache$misses, big.mark = ","))
    } else {
      "torch's own (options(pydlr.cpu_cache = FALSE) or PYDLR_CPU_CACHE_MB=0)"
    })
  }
  native <- if (is.null(x$native)) {
    "not available"
  } else {
    paste(names(x$native), vapply(x$native, function(v) paste(format(v), collapse = ","), ""), sep = "=", collapse = ", ")
  }
  line("Native extension", native)
}
