#!/usr/bin/env bash
# Create (once) and cache the SEPARATE virtual environment that bench/bench_peers.py runs the peers in:
# Keras 3 on TensorFlow, Keras 3 on torch, Lightning, the hand-written torch loop, and torchvision (models,
# ImageFolder and transforms for bench/bench_pretrained.py and bench/bench_images.py).
#
# Why separate: keras and tensorflow pull NumPy 2, while the project's .venv must keep numpy<2 (reticulate 1.28).
# Nothing here touches the project's .venv.
#
# Idempotent: a stamp holds a hash of this script; a second run with nothing changed takes well under a second.
#
#   bash scripts/setup_peers.sh            # default location: .venv-peers/ next to .venv/
#   PYDLR_PEERS_VENV=/some/dir bash scripts/setup_peers.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PYDLR_PEERS_VENV:-$ROOT/.venv-peers}"
PY="$VENV/bin/python"
STAMP="$VENV/.pydlr-peers-stamp"

log() { printf '[setup-peers %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# The pins, in install order. torch first and alone: an unpinned torch resolves to a multi-GB CUDA build,
# and once torch==2.13.0 (CPU) is there, lightning's bare `torch` requirement is already satisfied.
TORCH_PIN="torch==2.13.0"
# pillow: torchvision's ImageFolder and transforms decode with it; safetensors: the peers read pydlr's weights.
PEERS=(tensorflow-cpu keras lightning pillow safetensors)
# torchvision with --no-deps, after everything else: its requirement `torch==2.13.0` is met, but pip must never
# get the chance to swap the CPU torch for the CUDA build the torchvision wheel was made with. That wheel's C++
# operators (_C.so) then cannot load (they need libc10_cuda.so), and a plain `import torchvision` fails;
# bench/peers/torchvision_cpu.py imports the pure-Python parts anyway (it explains how). Anything in this venv
# that imports torchvision, even indirectly (lightning -> torchmetrics), must call it first.
TORCHVISION_PIN="torchvision==0.28.0"

want=$(printf '%s\n' "$TORCH_PIN" "${PEERS[@]}" "$TORCHVISION_PIN" "$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-32)" | sha256sum | cut -c1-32)
if [ -x "$PY" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  log "peers venv up to date: $VENV"
  exit 0
fi

[ -x "$PY" ] || { log "creating $VENV"; python3 -m venv "$VENV"; }
log "installing $TORCH_PIN"
"$PY" -m pip install -q --disable-pip-version-check "$TORCH_PIN"
log "installing ${PEERS[*]} (keeps $TORCH_PIN)"
"$PY" -m pip install -q --disable-pip-version-check "$TORCH_PIN" "${PEERS[@]}"
log "installing $TORCHVISION_PIN (--no-deps)"
"$PY" -m pip install -q --disable-pip-version-check --no-deps "$TORCHVISION_PIN"

# Check that each peer imports and that torch is still the CPU build we pinned.
"$PY" - "$ROOT/bench/peers" <<'EOF'
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, sys.argv[1])
from torchvision_cpu import import_torchvision
tv = import_torchvision()  # first: lightning imports torchmetrics, which imports torchvision
import numpy, torch, tensorflow as tf, keras, lightning
assert torch.__version__.startswith("2.13.0"), torch.__version__
assert tv.models.mobilenet_v2()(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)
print(f"numpy {numpy.__version__}, torch {torch.__version__}, tensorflow {tf.__version__}, "
      f"keras {keras.__version__}, lightning {lightning.__version__}, torchvision {tv.__version__}")
EOF
printf '%s' "$want" > "$STAMP"
log "done: $VENV"
