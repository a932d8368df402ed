# One Fashion-MNIST epoch of the seed CNN, on one process or under torchrun (docs/scaling-out.md):
#   Rscript examples/ddp_fashion_mnist.R 64 result.txt
#   torchrun --standalone --nproc-per-node=2 --no-python Rscript examples/ddp_fashion_mnist.R 32 result.txt
# Arguments: the batch size per process, and the file rank 0 writes its timing and test accuracy to.
library(pydlr)
args <- commandArgs(TRUE)
batch <- as.integer(args[1])
out <- args[2]
rank <- as.integer(Sys.getenv("RANK", "0"))
d <- dataset_fashion_mnist()
set_random_seed(1L)
model <- seed_cnn()
model |> compile(optimizer = optimizer_adam(learning_rate = 1e-3), loss = "sparse_categorical_crossentropy",
  metrics = "accuracy")
start <- proc.time()[["elapsed"]]
fit(model, d$train$x / 255, d$train$y, batch_size = batch, epochs = 1L, seed = 1L, verbose = 0L)
seconds <- proc.time()[["elapsed"]] - start
accuracy <- evaluate(model, d$test$x / 255, d$test$y, batch_size = 500L)$accuracy
if (rank == 0L) {
  writeLines(sprintf("fit_seconds=%.1f test_accuracy=%.4f omp_threads=%s world_size=%s", seconds, accuracy,
    Sys.getenv("OMP_NUM_THREADS", "unset"), Sys.getenv("WORLD_SIZE", "1")), out)
}
