# Ready-made architectures of pydlr's core beyond the pretrained MobileNetV2 (pretrained.R): the seed CNN
# and ResNet-18 (torchvision's module names, random weights).

#' ResNet-18
#'
#' ResNet-18 (He et al. 2016) with torchvision's layer names (`conv1`, `layer1` ... `layer4`, `fc`), in
#' keras3's `application_*()` form. pydlr ships no ResNet weights, so `weights` must be `NULL` (random
#' initial weights, to train from scratch); for transfer learning use [application_mobilenet_v2()].
#'
#' @param input_shape `c(height, width, 3)` (height and width at least 32); `NULL`: `c(224, 224, 3)`.
#' @param include_top Keep the classifier (`classes` outputs); without it the model returns the feature
#'   map, or pooled features with `pooling`.
#' @param weights Only `NULL`.
#' @param pooling `NULL`, `"avg"` or `"max"` when `include_top = FALSE`.
#' @param classes Number of classes of the classifier.
#' @param classifier_activation `"softmax"` (probabilities) or `NULL` (logits).
#' @param ... Other keras3 arguments are not supported.
#' @return A `pydlr_model` (compile, fit, predict as any other).
#' @family models
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- application_resnet18(input_shape = c(32, 32, 3), classes = 5)
#'   count_params(model) # 11,188,677
#'   dim(predict(model, array(runif(2 * 32 * 32 * 3), c(2, 32, 32, 3))))
#' }
#' @export
#' @md
application_resnet18 <- function(input_shape = NULL, include_top = TRUE, weights = NULL, pooling = NULL,
                                 classes = 1000L, classifier_activation = "softmax", ...) {
  .check_no_dots(list(...), "application_resnet18()",
    "pydlr's application_resnet18() takes input_shape, include_top, weights, pooling, classes, classifier_activation.")
  if (!is.null(weights)) {
    .not_supported(sprintf("application_resnet18(weights = \"%s\")", format(weights)),
      "pydlr ships no ResNet weights: use weights = NULL, or application_mobilenet_v2() for ImageNet weights.")
  }
  input_shape <- .check_shape(input_shape, "input_shape")
  if (!is.null(input_shape) && (length(input_shape) != 3L || input_shape[[3]] != 3L)) {
    .input_error("input_shape", "c(height, width, 3)", unlist(input_shape))
  }
  .new_model(.py_call("api_r.functional.ResNet18",
    num_classes = .check_count(classes, "classes"), include_top = .check_flag(include_top, "include_top"),
    pooling = .check_string(pooling, "pooling", c("avg", "max"), null_ok = TRUE), input_shape = input_shape,
    classifier_activation = .check_string(classifier_activation, "classifier_activation", "softmax", null_ok = TRUE),
    .convert = FALSE))
}

#' The seed CNN
#'
#' pydlr's reference network (the Keras example it started from): `Conv2D(32, 3, relu)`, `MaxPooling2D(2)`,
#' `Conv2D(64, 3, relu)`, `MaxPooling2D(2)`, `Conv2D(64, 3, relu)`, and with `head`: `Flatten`,
#' `Dense(64, relu)`, `Dense(num_classes)` and a softmax (`classifier_activation`). 93,322 parameters on
#' `c(28, 28, 1)` with the head.
#'
#' @param padding `"valid"` or `"same"` for the three convolutions.
#' @param head Add the classifier head.
#' @param input_shape One sample's shape, channels last.
#' @param num_classes Units of the last dense layer.
#' @param name Name of the model.
#' @param classifier_activation `"softmax"` (the outputs are probabilities, for the losses by name) or
#'   `NULL` (logits).
#' @return A sequential `pydlr_model` (more layers can be piped onto it).
#' @family models
#' @examples
#' if (pydlr:::.python_ready()) {
#'   model <- seed_cnn(padding = "same")
#'   summary(model)
#' }
#' @export
#' @md
seed_cnn <- function(padding = "valid", head = TRUE, input_shape = c(28L, 28L, 1L), num_classes = 10L,
                     name = NULL, classifier_activation = "softmax") {
  .new_model(.py_call("api_r.functional.seed_cnn",
    padding = .check_padding(padding), head = .check_flag(head, "head"),
    input_shape = .check_shape(input_shape, "input_shape"), num_classes = .check_count(num_classes, "num_classes"),
    name = .check_string(name, "name", null_ok = TRUE),
    classifier_activation = .check_string(classifier_activation, "classifier_activation", "softmax", null_ok = TRUE),
    .convert = FALSE))
}
