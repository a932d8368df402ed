#!/usr/bin/env bash
# Renders r-package/vignettes/*.Rmd to HTML with the installed pydlr (rmarkdown + Debian's pandoc), each in
# a fresh R process, into ${PYDLR_VIGNETTE_OUT:-out/vignettes}. Fails when one fails to render. Prints the
# seconds each took.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${PYDLR_VIGNETTE_OUT:-$ROOT/out/vignettes}"
mkdir -p "$OUT"
status=0
for rmd in "$ROOT"/r-package/vignettes/*.Rmd; do
  name=$(basename "$rmd" .Rmd)
  work=$(mktemp -d "${TMPDIR:-/tmp}/pydlr-vignette.XXXXXX")
  cp "$rmd" "$work/"
  start=$(date +%s)
  if Rscript -e "rmarkdown::render('$work/$name.Rmd', output_dir = '$OUT', intermediates_dir = '$work', quiet = TRUE)" \
      >"$work/render.log" 2>&1 && [ -s "$OUT/$name.html" ]; then
    echo "vignette $name: rendered in $(( $(date +%s) - start )) s -> $OUT/$name.html"
  else
    echo "vignette $name: FAILED"; tail -30 "$work/render.log"; status=1
  fi
  rm -rf "$work"
done
exit $status
