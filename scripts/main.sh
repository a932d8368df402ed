#!/usr/bin/env bash
# README command 1: set everything up, then run the main job from R (seed CNN vs k-means on Fashion-MNIST).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
source scripts/env.sh
Rscript examples/main_job.R "$@"
