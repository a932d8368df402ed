# Help pages as R users read them: rendered markdown, whole sentences, R's own advice.

help_text <- function(topic) {
  db <- tools::Rd_db("pydlr")
  rd <- db[[paste0(topic, ".Rd")]]
  text <- paste(utils::capture.output(tools::Rd2txt(rd, options = list(underline_titles = FALSE))), collapse = "\n")
  sub("\nExamples:.*", "", text) # code in examples may hold backticks
}

test_that("no help page shows raw markdown", {
  topics <- sub("\\.Rd$", "", names(tools::Rd_db("pydlr")))
  raw <- Filter(function(topic) grepl("`", help_text(topic), fixed = TRUE), topics)
  expect_identical(raw, character())
  expect_false(grepl("`", help_text("compare_models"), fixed = TRUE))
  expect_false(grepl("`", help_text("pydlr_kmeans"), fixed = TRUE))
  expect_false(grepl("`", help_text("to_torch"), fixed = TRUE))
})

test_that("?pydlr_config keeps its sentence about R's own %*%", {
  text <- gsub("\\s+", " ", help_text("pydlr_config"))
  expect_match(text, "R's own .%\\*%. are unaffected")
})

test_that("?save_model speaks R and says when the result is a folder", {
  text <- gsub("\\s+", " ", help_text("save_model"))
  expect_false(grepl("Python's documentation", text, fixed = TRUE))
  expect_match(text, "a folder holding .config.json.")
  expect_match(text, "saveRDS")
})
