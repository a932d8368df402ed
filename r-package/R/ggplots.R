# The plots as ggplot2 objects, as keras3 returns them: users extend them (`+ theme_minimal()`, `+ labs()`)
# and ggsave() them. ggplot2 is suggested, not imported: without it (or with
# options(pydlr.plot_engine = "base")) the plot functions draw with base graphics (history.R, interpret.R).

utils::globalVariables(c("epoch", "value", "data", "metric", "x", "y", "fill", "map", "predicted", "actual",
  "count", "label", "heat", "lr", "loss"))

# TRUE when the plots are built with ggplot2.
.use_ggplot <- function() {
  engine <- getOption("pydlr.plot_engine", "ggplot2")
  if (!engine %in% c("ggplot2", "base")) .input_error("options(pydlr.plot_engine)", "\"ggplot2\" or \"base\"", engine)
  engine == "ggplot2" && requireNamespace("ggplot2", quietly = TRUE)
}

# Training curves: a facet per metric, training and validation by colour.
.gg_history <- function(history, metrics) {
  long <- as.data.frame(history, format = "long")
  long <- long[long$metric %in% metrics, , drop = FALSE]
  ggplot2::ggplot(long, ggplot2::aes(epoch, value, colour = data)) +
    ggplot2::geom_line() +
    ggplot2::geom_point() +
    ggplot2::facet_wrap(ggplot2::vars(metric), scales = "free_y", ncol = 1L) +
    ggplot2::scale_x_continuous(breaks = unique(long$epoch)) +
    ggplot2::scale_colour_manual(values = c(training = "#1f77b4", validation = "#ff7f0e"), drop = TRUE) +
    ggplot2::labs(x = "epoch", y = NULL, colour = NULL)
}

# The learning-rate finder's curve on a log-scaled rate axis, the suggested rate as a red point.
.gg_lr_find <- function(df, suggestion) {
  p <- ggplot2::ggplot(df, ggplot2::aes(lr, loss)) +
    ggplot2::geom_line() +
    ggplot2::scale_x_log10() +
    ggplot2::labs(x = "learning rate (log scale)", y = "loss (smoothed)")
  if (!is.finite(suggestion)) return(p)
  at <- df[which.min(abs(log(df$lr) - log(suggestion))), , drop = FALSE]
  p + ggplot2::geom_point(data = at, colour = "red", size = 3) +
    ggplot2::labs(subtitle = sprintf("suggested learning rate %.2e", suggestion))
}

# An image array (h x w, h x w x 1 or h x w x 3) as a data.frame of pixels with their colour, row 1 on top.
.image_df <- function(img) {
  img <- unclass(img)
  storage.mode(img) <- "double"
  d <- dim(img)
  if (length(d) == 2L) dim(img) <- d <- c(d, 1L)
  rng <- range(img)
  img <- if (diff(rng) > 0) (img - rng[1]) / diff(rng) else img * 0
  channel <- function(k) as.vector(img[, , k])
  fill <- if (d[3] >= 3L) grDevices::rgb(channel(1), channel(2), channel(3)) else grDevices::grey(channel(1))
  data.frame(x = rep(seq_len(d[2]), each = d[1]), y = rep(d[1]:1, times = d[2]), fill = fill,
    stringsAsFactors = FALSE)
}

.gg_image_theme <- function() {
  list(ggplot2::coord_fixed(expand = FALSE), ggplot2::theme_void(),
    ggplot2::theme(plot.title = ggplot2::element_text(hjust = 0.5)))
}

.gg_filters <- function(grid, title, caption) {
  ggplot2::ggplot(.image_df(grid), ggplot2::aes(x, y, fill = fill)) +
    ggplot2::geom_raster() +
    ggplot2::scale_fill_identity() +
    .gg_image_theme() +
    ggplot2::labs(title = title, caption = caption)
}

# Images (a list of h x w or h x w x 3 arrays, each scaled to its own range) as facets titled `titles`.
.gg_image_panels <- function(images, titles, main) {
  df <- do.call(rbind, lapply(seq_along(images), function(i) cbind(.image_df(images[[i]]), panel = i)))
  df$panel <- factor(df$panel, levels = seq_along(images), labels = make.unique(titles, sep = " "))
  ggplot2::ggplot(df, ggplot2::aes(x, y, fill = fill)) +
    ggplot2::geom_raster() +
    ggplot2::scale_fill_identity() +
    ggplot2::facet_wrap(ggplot2::vars(panel)) +
    .gg_image_theme() +
    ggplot2::labs(title = main)
}

# Feature maps h x w x k: a facet per map, one shared colour scale.
.gg_activations <- function(maps, layer) {
  d <- dim(maps)
  df <- data.frame(
    x = rep(rep(seq_len(d[2]), each = d[1]), d[3]), y = rep(rep(d[1]:1, d[2]), d[3]),
    value = as.vector(maps), map = factor(rep(seq_len(d[3]), each = d[1] * d[2]))
  )
  ggplot2::ggplot(df, ggplot2::aes(x, y, fill = value)) +
    ggplot2::geom_raster() +
    ggplot2::facet_wrap(ggplot2::vars(map)) +
    ggplot2::scale_fill_viridis_c() +
    .gg_image_theme() +
    ggplot2::labs(title = sprintf("Feature maps of %s", layer), fill = "activation")
}

# The image with the Grad-CAM heatmap over it (transparent where there is no evidence).
.gg_grad_cam <- function(image, heat, alpha, title) {
  d <- dim(heat)
  df <- data.frame(x = rep(seq_len(d[2]), each = d[1]), y = rep(d[1]:1, times = d[2]), heat = as.vector(heat))
  img <- unclass(image)
  rng <- range(img)
  img <- if (diff(rng) > 0) (img - rng[1]) / diff(rng) else img * 0
  ggplot2::ggplot(df, ggplot2::aes(x, y, fill = heat)) +
    ggplot2::annotation_raster(grDevices::as.raster(img), 0.5, d[2] + 0.5, 0.5, d[1] + 0.5) +
    ggplot2::geom_raster(alpha = alpha) +
    ggplot2::scale_fill_distiller(palette = "YlOrRd", direction = 1, limits = c(0, 1)) +
    .gg_image_theme() +
    ggplot2::labs(title = title, fill = "evidence\nfor the class")
}

.gg_confusion <- function(cm, normalize) {
  df <- as.data.frame(cm, responseName = "count", stringsAsFactors = FALSE)
  labels <- rownames(cm)
  df$actual <- factor(df$actual, levels = rev(labels))
  df$predicted <- factor(df$predicted, levels = labels)
  totals <- rowSums(cm)[as.character(df$actual)]
  df$value <- if (normalize) df$count / pmax(totals, 1) else df$count
  df$label <- if (normalize) sprintf("%.2f", df$value) else as.character(df$count)
  wrap <- function(n) vapply(n, function(s) paste(strwrap(s, 20), collapse = "\n"), "")
  ggplot2::ggplot(df, ggplot2::aes(predicted, actual, fill = value)) +
    ggplot2::geom_tile() +
    ggplot2::geom_text(ggplot2::aes(label = label, colour = value > max(value) / 2), show.legend = FALSE) +
    ggplot2::scale_colour_manual(values = c(`FALSE` = "black", `TRUE` = "white")) +
    ggplot2::scale_fill_distiller(palette = "Blues", direction = 1) +
    ggplot2::scale_x_discrete(labels = wrap) +
    ggplot2::scale_y_discrete(labels = wrap) +
    ggplot2::coord_fixed() +
    ggplot2::theme(axis.text.x = ggplot2::element_text(angle = 90, hjust = 1, vjust = 0.5)) +
    ggplot2::labs(title = "Confusion matrix", fill = if (normalize) "share" else "count")
}

# compare_models(): accuracy and ARI per method, a facet per score.
.gg_comparison <- function(x) {
  long <- data.frame(method = factor(rep(x$method, 2L), levels = x$method),
    metric = factor(rep(c("accuracy", "ARI"), each = nrow(x)), levels = c("accuracy", "ARI")),
    value = c(x$accuracy, x$ARI))
  ggplot2::ggplot(long, ggplot2::aes(method, value, fill = method)) +
    ggplot2::geom_col(show.legend = FALSE) +
    ggplot2::geom_text(ggplot2::aes(label = sprintf("%.2f", value)), vjust = -0.3) +
    ggplot2::facet_wrap(ggplot2::vars(metric)) +
    ggplot2::scale_y_continuous(limits = c(min(0, long$value, na.rm = TRUE), 1.05)) +
    ggplot2::labs(x = NULL, y = NULL, title = "Methods compared with the true classes")
}
