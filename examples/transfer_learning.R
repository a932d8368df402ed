# Transfer learning with pydlr from R: pretrained ImageNet MobileNetV2, offline, ~1-2 minutes on 2 cores.
#
# 1. ImageNet predictions for two photos (a cat, an espresso).
# 2. Faces vs non-faces (200 grey 25 x 25 images): a logistic regression (glm) on principal components of
#    the pixels, the same on frozen MobileNetV2 embeddings, and fastai-style fine-tuning. Deep learning is
#    not always the answer: compare the accuracies and the seconds.
# 3. Inside the black box: first-layer filters, Grad-CAM on the cat, the confusion matrix, top losses.
#
# Run: Rscript examples/transfer_learning.R [output folder]

library(pydlr)

args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args) > 0) args[1] else file.path(tempdir(), "pydlr-transfer-learning")
dir.create(out, showWarnings = FALSE, recursive = TRUE)
seconds <- function(start) sprintf("%.1f s", (proc.time() - start)[["elapsed"]])

# ---- 1. ImageNet predictions ----------------------------------------------------------------------
info <- pretrained_info("mobilenet_v2")
cat(sprintf("MobileNetV2: %s parameters, %.2f MB, ImageNet top-1 %.1f%%\n",
  format(info$params, big.mark = ","), info$memory_mb, info$imagenet_top1))
model <- application_mobilenet_v2(weights = "imagenet")
cat_img <- example_image("chelsea")
x <- imagenet_preprocess_input(cat_img)
for (name in c("chelsea", "coffee")) {
  top <- imagenet_decode_predictions(predict(model, imagenet_preprocess_input(example_image(name))), top = 3)[[1]]
  cat(sprintf("  %s: %s\n", name, paste(sprintf("%s (%.2f)", top$class_description, top$score), collapse = ", ")))
}
png(file.path(out, "grad_cam_chelsea.png"), width = 480, height = 480)
plot_grad_cam(model, x, class_index = 285, image = imagenet_preprocess_input(cat_img, normalize = FALSE)[1, , , ])
invisible(dev.off())
png(file.path(out, "mobilenet_filters.png"), width = 480, height = 480)
plot_filters(model)
invisible(dev.off())

# ---- 2. Faces vs non-faces --------------------------------------------------------------------------
faces <- dataset_lfw_subset()
set.seed(0)
idx <- sample(200L)
train <- idx[1:120]
test <- idx[121:200]
y <- faces$y # 0 face, 1 not a face
cat(sprintf("\nFaces vs non-faces: %d training, %d held-out images\n", length(train), length(test)))

# A logistic regression on the first principal components of a feature matrix.
glm_accuracy <- function(features, k = 10) {
  pca <- prcomp(features[train, ], rank. = k)
  d_train <- data.frame(predict(pca, features[train, ]), y = y[train])
  fit <- suppressWarnings(glm(y ~ ., family = binomial, data = d_train))
  p <- predict(fit, data.frame(predict(pca, features[test, ])), type = "response")
  mean((p > 0.5) == y[test])
}

start <- proc.time()
pixels <- matrix(faces$x, 200) # one row per image
cat(sprintf("  glm on 10 PCs of the pixels:         accuracy %.3f (%s)\n", glm_accuracy(pixels), seconds(start)))

start <- proc.time()
x64 <- imagenet_preprocess_input(faces$x, size = 64)
base <- application_mobilenet_v2(include_top = FALSE, pooling = "avg", input_shape = c(64, 64, 3))
emb <- embed_images(base, x64)
cat(sprintf("  glm on 10 PCs of the embeddings:     accuracy %.3f (%s)\n", glm_accuracy(emb), seconds(start)))

start <- proc.time()
base <- application_mobilenet_v2(include_top = FALSE, input_shape = c(64, 64, 3))
kind <- factor(y, levels = 0:1, labels = c("face", "non-face"))
tuned <- fine_tune(base, list(x64[train, , , , drop = FALSE], kind[train]),
  epochs = 1, freeze_epochs = 3, base_lr = 3e-3, batch_size = 8, seed = 0)
pred <- predict(tuned, x64[test, , , , drop = FALSE], type = "class") # a factor with kind's levels
cat(sprintf("  fine-tuned MobileNetV2 (3 frozen + 1): accuracy %.3f (%s)\n", mean(pred == kind[test]), seconds(start)))
print(attr(tuned, "fine_tune_history"))

cm <- confusion_matrix(kind[test], pred)
print(cm)
png(file.path(out, "faces_confusion.png"), width = 480, height = 480)
plot_confusion_matrix(cm)
invisible(dev.off())
print(top_losses(tuned, x64[test, , , , drop = FALSE], y[test], k = 3))
cat(sprintf("\nFigures in %s\n", out))
