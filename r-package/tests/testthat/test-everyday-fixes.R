# Regression tests for defects a new user meets in the first hour (one block per defect).

test_that("keras' HDF5 names are refused with the safetensors name to write instead", {
  model <- keras_model_sequential(input_shape = 3) |> layer_dense(units = 2)
  dir <- withr::local_tempdir()
  err <- expect_error(save_model(model, file.path(dir, "m.h5")), class = "pydlr_input_error")
  expect_match(conditionMessage(err), "never HDF5", fixed = TRUE)
  expect_match(conditionMessage(err), "save_model(model, \"m.safetensors\")", fixed = TRUE)
  err <- expect_error(save_model_weights(model, file.path(dir, "w.weights.h5")), class = "pydlr_input_error")
  expect_match(conditionMessage(err), "save_model_weights(model, \"w.weights.safetensors\")", fixed = TRUE)
  expect_length(list.files(dir, all.files = TRUE, no.. = TRUE), 0)
  expect_error(load_model(file.path(dir, "m.h5")), "load_model\\(\"m.safetensors\"\\)", class = "pydlr_input_error")
  expect_error(load_model_weights(model, file.path(dir, "w.weights.h5")), "never HDF5", class = "pydlr_input_error")
})
