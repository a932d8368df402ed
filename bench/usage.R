# Shared by the R benchmarks: `--help` prints the script's leading comment block and exits.
print_usage_if_asked <- function() {
  if (!"--help" %in% commandArgs(trailingOnly = TRUE)) return(invisible())
  self <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])
  header <- readLines(self)
  header <- header[!grepl("^#!", header)]
  header <- header[seq_len(match(FALSE, grepl("^#", header)) - 1L)]
  cat(sub("^# ?", "", header), sep = "\n")
  quit(status = 0)
}
