# Pretrained MobileNetV2 (real ImageNet weights, offline) from R: predictions on photos, preprocessing,
# embeddings, and transfer learning on faces vs non-faces. Small inputs keep the file short.

# A fresh weights cache for these tests, set in Python's environment (Python may already be running).
pt_cache <- withr::local_tempdir(.local_envir = globalenv())
pydlr:::.pydlr_py()
pt_environ <- reticulate::import("os", convert = FALSE)$environ
pt_old_cache <- reticulate::py_to_r(pt_environ$get("PYDLR_CACHE"))
reticulate::py_set_item(pt_environ, "PYDLR_CACHE", pt_cache)

test_that("application_mobilenet_v2() predicts ImageNet classes for the cat and the espresso", {
  model <- application_mobilenet_v2()
  expect_s3_class(model, "pydlr_model")
  x <- imagenet_preprocess_input(example_image("chelsea"))
  expect_equal(dim(x), c(1L, 224L, 224L, 3L))
  coffee <- imagenet_preprocess_input(example_image("coffee"))
  both <- array(0, c(2L, 224L, 224L, 3L))
  both[1, , , ] <- x[1, , , ]
  both[2, , , ] <- coffee[1, , , ]
  probs <- predict(model, both)
  expect_equal(dim(probs), c(2L, 1000L))
  expect_equal(rowSums(probs), c(1, 1), tolerance = 1e-5)
  top <- imagenet_decode_predictions(probs, top = 3)
  expect_length(top, 2L)
  expect_named(top[[1]], c("class_index", "class_description", "score"))
  expect_true(top[[1]]$class_index[1] %in% c(285L, 281L, 282L))
  expect_setequal(top[[1]]$class_index, c(285L, 282L, 281L)) # Egyptian cat, tiger cat, tabby
  expect_equal(top[[1]]$class_description[1], "Egyptian cat")
  expect_equal(top[[2]]$class_index[1], 967L)
  expect_equal(top[[2]]$class_description[1], "espresso")
  expect_no_warning(predict(model, x))
  # The crop left at 0-255 was read as a confident "torch" (class 862), silently.
  raw <- imagenet_preprocess_input(example_image("chelsea"), normalize = FALSE) * 255
  expect_warning(predict(model, raw),
    "`x` reaches 2.+ but the training data reached 2.64: preprocess it with application_preprocess_inputs\\(model, x\\)",
    class = "pydlr_warning")
  expect_gt(top[[2]]$score[1], 0.9)
  expect_true(file.exists(file.path(pt_cache, "mobilenet_v2-b0353104.safetensors"))) # converted once
})

test_that("pretrained_info() reports the weights' origin, checksum, parameters and size", {
  info <- pretrained_info("mobilenet_v2")
  expect_equal(info$params, 3504872L)
  expect_equal(info$sha256, "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889")
  expect_gt(info$memory_mb, 14)
  expect_lt(info$memory_mb, 14.3)
  expect_gte(info$disk_mb, info$memory_mb)
  expect_error(pretrained_info("resnet_9000"), class = "pydlr_input_error")
  expect_error(pretrained_info("resnet_9000"), "\"efficientnet_lite0\", .*\"mobilenet_v2\"")
  random <- application_mobilenet_v2(weights = NULL, classes = 10, input_shape = c(32, 32, 3))
  probs <- predict(random, array(0.5, c(2L, 32L, 32L, 3L)))
  expect_equal(dim(probs), c(2L, 10L))
  expect_equal(rowSums(probs), c(1, 1), tolerance = 1e-5)
  expect_equal(count_params(random), count_params(application_mobilenet_v2()) - 1281 * 1000 + 1281 * 10) # new 10-class head
})

test_that("imagenet_preprocess_input() crops, scales and normalizes like torchvision", {
  img <- example_image("coffee")
  expect_equal(dim(img), c(400L, 600L, 3L))
  raw <- imagenet_preprocess_input(img, size = 64, normalize = FALSE)
  expect_equal(dim(raw), c(1L, 64L, 64L, 3L))
  expect_gte(min(raw), 0)
  expect_lte(max(raw), 1)
  norm <- imagenet_preprocess_input(img / 255, size = 64) # [0, 1] input gives the same result
  expect_equal(norm[1, , , 2], (raw[1, , , 2] - 0.456) / 0.224, tolerance = 1e-5)
  grey <- imagenet_preprocess_input(dataset_lfw_subset()$x[1:3, , ], size = 32)
  expect_equal(dim(grey), c(3L, 32L, 32L, 3L))
  expect_error(imagenet_preprocess_input("cat"), class = "pydlr_input_error")
  # Preprocessing twice gave confident wrong classes, silently; R names the argument `x`.
  expect_error(imagenet_preprocess_input(norm), "imagenet_preprocess_input\\(\\): argument `x` must be raw pixels \\(0-255, or 0-1\\), not images preprocessed already; received values down to -",
               class = "pydlr_input_error")
  mob <- application_mobilenet_v2(input_shape = c(32, 32, 3), weights = NULL)
  expect_error(application_preprocess_inputs(mob, application_preprocess_inputs(mob, img)),
               "^application_preprocess_inputs\\(\\): argument `x` must be raw pixels", class = "pydlr_input_error")
  expect_error(imagenet_decode_predictions(matrix(0, 2, 10)), "^imagenet_decode_predictions\\(\\): argument `preds`",
               class = "pydlr_input_error")
  expect_error(application_mobilenet_v2(classes = 10), "classes")
  expect_error(application_mobilenet_v2(alpha = 0.5), class = "pydlr_not_supported_error")
})

lfw_split <- function(size = 64L) {
  d <- dataset_lfw_subset()
  set.seed(1)
  idx <- sample(200L)
  x <- imagenet_preprocess_input(d$x, size = size)
  list(x_train = x[idx[1:120], , , , drop = FALSE], y_train = d$y[idx[1:120]],
    x_test = x[idx[121:200], , , , drop = FALSE], y_test = d$y[idx[121:200]])
}

test_that("frozen embeddings separate faces from non-faces with a nearest-centroid rule", {
  d <- lfw_split()
  expect_equal(sum(d$y_train) + sum(d$y_test), 100L)
  base <- application_mobilenet_v2(include_top = FALSE, pooling = "avg", input_shape = c(64, 64, 3))
  e_train <- embed_images(base, d$x_train)
  e_test <- embed_images(base, d$x_test)
  expect_equal(dim(e_train), c(120L, 1280L))
  expect_equal(e_test[1:2, ], predict(base, d$x_test[1:2, , , , drop = FALSE]), tolerance = 1e-5)
  centroids <- rbind(colMeans(e_train[d$y_train == 0, ]), colMeans(e_train[d$y_train == 1, ]))
  dist <- as.matrix(stats::dist(rbind(centroids, e_test)))[-(1:2), 1:2]
  accuracy <- mean(max.col(-dist) - 1L == d$y_test)
  expect_gte(accuracy, 0.9)
})

# The arguments of Python's pydlr.pretrained.fine_tune, in order, without `base` and `**fit_args`.
fine_tune_py_args <- function() {
  params <- reticulate::py_eval(paste0(
    "list(__import__('inspect').signature(__import__('pydlr.pretrained', fromlist=['fine_tune'])",
    ".fine_tune).parameters)"
  ))
  setdiff(unlist(params), "fit_args")
}

test_that("fine_tune() replaces the head, trains it frozen, then all with discriminative rates", {
  d <- lfw_split()
  net <- application_mobilenet_v2(input_shape = c(64, 64, 3)) # with its ImageNet top: replaced
  y <- factor(c("face", "other")[d$y_train[1:64] + 1L])
  model <- fine_tune(net, list(d$x_train[1:64, , , , drop = FALSE], y), 1, 3, 3e-3, # Python's order
    batch_size = 8, seed = 0)
  hist <- attr(model, "fine_tune_history")
  expect_equal(hist$phase, c(rep("frozen", 3), "unfrozen"))
  expect_named(hist, c("phase", "epoch", "loss", "accuracy"))
  expect_lt(hist$loss[3], hist$loss[1])
  lrs <- unlist(reticulate::py_to_r(reticulate::py_get_attr(model$py, "fine_tune_lrs")))
  expect_equal(lrs, c(1.5e-5, 1.5e-4, 1.5e-3)) # base_lr / 2 / lr_mult ... base_lr / 2
  pred <- predict(model, d$x_test, type = "class")
  expect_identical(levels(pred), c("face", "other")) # the factor's levels come back
  # The fine-tuned network and its saved copy still want preprocessed photos: 0-255 pixels are said.
  saved <- withr::local_tempfile(fileext = ".safetensors")
  save_model(model, saved)
  pixels <- d$x_test[1:2, , , , drop = FALSE] * 0 + 200
  for (m in list(model, load_model(saved))) {
    expect_warning(predict(m, pixels), "preprocess it with application_preprocess_inputs", class = "pydlr_warning")
  }
  expect_gte(mean(as.integer(pred) - 1L == d$y_test), 0.9)
  expect_identical(names(formals(fine_tune))[1:5], c("model", "data", "epochs", "freeze_epochs", "base_lr"))
  expect_identical(names(formals(fine_tune)), fine_tune_py_args()) # same arguments, same order
  expect_error(fine_tune(net, d$x_train, y = d$y_train[1:3]), class = "pydlr_input_error")
  expect_error(fine_tune(net, d$x_train), "labels", class = "pydlr_input_error")
  # 1-based labels (1 face, 2 other) made a 3-class head whose class 0 never appears, silently; the warning
  # comes before any work (here the bad `epochs` stops it).
  expect_error(expect_warning(fine_tune(net, list(d$x_train, d$y_train + 1L), epochs = -1),
    "`y` has no 0: they are 0-based class indices, so class 0 gets no sample and there are 3 classes; for 1-based labels pass y - 1",
    class = "pydlr_warning"), "epochs", class = "pydlr_input_error")
  expect_error(fine_tune(application_mobilenet_v2(include_top = FALSE, pooling = "avg"), list(d$x_train, d$y_train)),
    "pooling", class = "pydlr_input_error")
})

test_that("keras_model_sequential(layers = ) stacks a head on a pretrained base", {
  base <- application_mobilenet_v2(include_top = FALSE, input_shape = c(32, 32, 3), trainable = FALSE)
  model <- keras_model_sequential(layers = list(base, layer_global_average_pooling_2d(),
    layer_dense(units = 2, activation = "softmax")))
  expect_equal(count_params(model), count_params(base) + 1280 * 2 + 2)
  x <- array(runif(2 * 32 * 32 * 3), c(2, 32, 32, 3))
  expect_equal(rowSums(predict(model, x)), c(1, 1), tolerance = 1e-5)
})

test_that("fine_tune() refuses grey images for a colour network, with their shape and how to preprocess", {
  faces <- dataset_lfw_subset()
  base <- application_mobilenet_v2(include_top = FALSE, input_shape = c(32, 32, 3))
  # The message gave "(1, 25, 25)" (one image of the 40x25x25 input) and named the network, not fine_tune().
  err <- expect_error(fine_tune(base, list(faces$x[1:40, , ], faces$y[1:40])), class = "pydlr_input_error")
  msg <- conditionMessage(err)
  expect_match(msg, "^fine_tune\\(\\): argument `data` must be colour images \\(n, height, width, 3\\)")
  expect_match(msg, "received a double array of dim c(40, 25, 25).", fixed = TRUE)
  expect_match(msg, "for grey images preprocess them as its weights expect", fixed = TRUE)
  expect_match(msg, "application_preprocess_inputs(model, x)", fixed = TRUE)
  expect_no_match(msg, "in Python|preprocess_inputs\\(model, x\\) in R|\\(1, 25, 25\\)")
  expect_identical(err$argument, "data")
  x1 <- array(faces$x[1:40, , ], c(40, 25, 25, 1)) # n x h x w x 1 is grey too
  expect_error(fine_tune(base, list(x1, faces$y[1:40])), "dim c(40, 25, 25, 1)", fixed = TRUE,
    class = "pydlr_input_error")
  # The advice works: the grey channel repeated to 3, resized to the model's 32 x 32, scaled
  idx <- c(1:8, 101:108)
  x <- application_preprocess_inputs(base, faces$x[idx, , ])
  expect_equal(dim(x), c(16L, 32L, 32L, 3L))
  model <- fine_tune(base, list(x, faces$y[idx]), epochs = 0, freeze_epochs = 1, batch_size = 8)
  expect_equal(attr(model, "fine_tune_history")$phase, "frozen")
})

test_that("fine_tune() refuses a classifier as the base, naming `model`, and takes grey images as fit() does", {
  x <- array(runif(16 * 28 * 28), c(16, 28, 28))
  y <- rep(0:1, 8)
  zoo <- pretrained_model("seed_cnn_fashion_mnist")
  # The error named GlobalAveragePooling2D, a layer of the head fine_tune() adds, not the user's.
  err <- expect_error(fine_tune(zoo, list(x, y)), class = "pydlr_input_error")
  msg <- conditionMessage(err)
  expect_identical(err$argument, "model")
  expect_match(msg, paste0("fine_tune(): argument `model` must be a convolutional base whose output is a ",
    "feature map (batch, h, w, channels): pass its body: a base built without its head"), fixed = TRUE)
  expect_match(msg, "application_mobilenet_v2(include_top = FALSE)", fixed = TRUE)
  expect_match(msg, "received a model whose output is (None, 10).", fixed = TRUE)
  expect_no_match(msg, "Sequential\\(list|global_average_pooling|layer_global")
  # n x 28 x 28 is one channel for a base taking c(28, 28, 1), as fit() and predict() take it
  set.seed(1)
  base <- keras_model_sequential(input_shape = c(28, 28, 1)) |>
    layer_conv_2d(filters = 4, kernel_size = 3, activation = "relu")
  model <- fine_tune(base, list(x, y), epochs = 1, freeze_epochs = 1, batch_size = 8)
  expect_equal(attr(model, "fine_tune_history")$phase, c("frozen", "unfrozen"))
  expect_equal(predict(model, x[1:3, , ]), predict(model, array(x[1:3, , ], c(3, 28, 28, 1))))
})

# Restore the cache setting for later test files.
if (is.null(pt_old_cache)) pt_environ$pop("PYDLR_CACHE") else reticulate::py_set_item(pt_environ, "PYDLR_CACHE", pt_old_cache)
