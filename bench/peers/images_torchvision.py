"""Peer: torchvision reading an image folder: ``datasets.ImageFolder`` with a ``transforms.Compose`` (grayscale,
resize, random horizontal flip, random affine rotation + zoom, to a float tensor) and a ``DataLoader`` with
the given workers, shuffled, one pass; the code its tutorials show.

Run in the peers' environment (.venv-peers, scripts/setup_peers.sh), where torchvision is installed:
    python bench/peers/images_torchvision.py FOLDER --size 32 --batch 64 --workers 2
Prints one JSON line: {"images": n, "seconds": s, "cpu": CPU seconds (this process and its workers),
"versions": {...}}.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torchvision_cpu import import_torchvision  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("folder")
ap.add_argument("--size", type=int, default=32)
ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--workers", type=int, default=2)
ap.add_argument("--rotation", type=float, default=18.0, help="degrees either way (keras' factor 0.05)")
ap.add_argument("--zoom", type=float, default=0.1)
args = ap.parse_args()

torchvision = import_torchvision()
import PIL  # noqa: E402
import torch  # noqa: E402
from torchvision import datasets, transforms  # noqa: E402

torch.set_num_threads(1)  # the work is in the workers; the main process only collects batches
transform = transforms.Compose([
    transforms.Grayscale(num_output_channels=1),
    transforms.Resize((args.size, args.size), interpolation=transforms.InterpolationMode.BILINEAR),
    transforms.RandomHorizontalFlip(),
    transforms.RandomAffine(args.rotation, scale=(1 - args.zoom, 1 + args.zoom),
                            interpolation=transforms.InterpolationMode.BILINEAR),
    transforms.PILToTensor(),
    transforms.ConvertImageDtype(torch.float32),
])
loader = torch.utils.data.DataLoader(datasets.ImageFolder(args.folder, transform=transform),
                                     batch_size=args.batch, shuffle=True, num_workers=args.workers)


def cpu_s() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


t, c = time.perf_counter(), cpu_s()
n = 0
for x, _ in loader:
    n += int(x.shape[0])
seconds = time.perf_counter() - t
del loader  # joins the workers, so their CPU time is counted
print(json.dumps({"images": n, "seconds": seconds, "cpu": cpu_s() - c,
                  "versions": {"torchvision": torchvision.__version__, "torch": torch.__version__,
                               "pillow": PIL.__version__}}))
