"""Train pydlr's own zoo and write it to pydlr/pretrained/weights/ (or check the shipped files).

    python scripts/train_zoo.py                 # retrain every entry, write <name>.safetensors + .json
    python scripts/train_zoo.py --check         # retrain, compare with the shipped files bit for bit
    python scripts/train_zoo.py --only seed_cnn_mnist --out /tmp/zoo

Bit-identical on the same torch build and thread count (2, recorded in the JSON); another build or CPU
may round differently, and --check then says which tensors differ.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from safetensors.torch import load_file

from pydlr.pretrained import zoo
from pydlr.pretrained.registry import sha256_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(zoo.ZOO), action="append")
    parser.add_argument("--out", type=Path, default=None, help="folder to write (default: the package's)")
    parser.add_argument("--check", action="store_true", help="compare with the shipped files, write nothing")
    args = parser.parse_args(argv)
    status = 0
    for name in args.only or sorted(zoo.ZOO):
        model, meta = zoo.train(name)
        folder = Path(tempfile.mkdtemp()) if args.check else args.out
        weights, _ = zoo.write(model, meta, folder)
        print(f"{name}: test accuracy {meta['test_accuracy']:.4f}, {meta['params']:,} parameters, "
              f"{weights.stat().st_size:,} bytes")
        if args.check:
            shipped = load_file(str(zoo.weights_dir() / f"{name}.safetensors"))
            fresh = load_file(str(weights))
            differ = [k for k in shipped if k not in fresh or not shipped[k].equal(fresh[k])]
            same_file = sha256_file(weights) == zoo.info(name)["sha256"]
            print(f"  {'identical to' if not differ and same_file else 'DIFFERS from'} the shipped file"
                  + (f" (tensors {', '.join(differ)})" if differ else "" if same_file else " (file bytes)"))
            status |= bool(differ) or not same_file
    return status


if __name__ == "__main__":
    sys.exit(main())
