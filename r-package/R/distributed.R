# Training on several processes and machines. An R script that calls fit() runs unchanged under torchrun
# (`torchrun --no-python ... Rscript train.R`): fit() notices torchrun's environment through pydlr's core
# (pydlr.train.distributed), joins the process group and trains on its shard. pydlr_torchrun() writes the
# command.

#' The torchrun command that trains an R script on several processes or machines
#'
#' Prints (and returns) the command that runs `script` with `nproc_per_node` processes on each of `nnodes`
#' machines. Run the same command on every machine; they meet at `rdzv_endpoint` (`"host:port"` of any one
#' of them, reachable from all: torch's c10d rendezvous). In the script, `fit()` needs no change: each
#' process joins the group (gloo on CPUs, nccl with one GPU per process), trains on its shard of every epoch
#' with gradients averaged across processes, and only rank 0 prints progress and writes checkpoints
#' (`fit(resume = )`, [callback_model_checkpoint()]). `batch_size` is per process. On one machine
#' (`nnodes = 1`) the command uses `--standalone` (a free local port).
#'
#' torchrun comes with the Python environment pydlr uses (its `bin/` folder); `PYDLR_DDP_TIMEOUT`
#' (seconds, default 300) bounds how long a process waits for the others, so a process that dies ends the
#' run with an error instead of a hang. From an interactive session, `fit(..., distributed =
#' list(nproc_per_node = 2))` launches the processes on this machine itself.
#'
#' @param script Path of the R script.
#' @param nproc_per_node Processes per machine (e.g. the number of GPUs), or `"gpu"`.
#' @param nnodes Number of machines.
#' @param rdzv_endpoint `"host:port"` of the rendezvous (required with several machines).
#' @param script_args Arguments passed to the script (read them with `commandArgs(TRUE)`).
#' @param program The interpreter: `"Rscript"`.
#' @return The command, a string, invisibly.
#' @family training
#' @examples
#' pydlr_torchrun("train.R", nproc_per_node = 4, nnodes = 2, rdzv_endpoint = "10.0.0.1:29500")
#' @export
#' @md
pydlr_torchrun <- function(script, nproc_per_node = 2L, nnodes = 1L, rdzv_endpoint = NULL, script_args = character(),
                           program = "Rscript") {
  script <- .check_string(script, "script")
  nproc <- if (identical(nproc_per_node, "gpu")) "gpu" else .check_count(nproc_per_node, "nproc_per_node")
  if (!is.character(script_args)) .input_error("script_args", "a character vector", script_args)
  cmd <- .py_call("api_r.distributed.torchrun_command", script, nproc_per_node = nproc,
    nnodes = .check_count(nnodes, "nnodes"), rdzv_endpoint = .check_string(rdzv_endpoint, "rdzv_endpoint", null_ok = TRUE),
    program = .check_string(program, "program"), script_args = as.list(script_args))
  cmd <- paste(vapply(unlist(cmd), shQuote, character(1), type = "sh"), collapse = " ")
  cmd <- gsub("'([A-Za-z0-9_./:=-]+)'", "\\1", cmd) # quote only what needs it
  cat(cmd, "\n", sep = "")
  invisible(cmd)
}
