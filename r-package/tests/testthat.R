# R CMD check runs the testthat suite through this file (scripts/test.sh runs it directly instead).
library(testthat)
library(pydlr)

test_check("pydlr")
