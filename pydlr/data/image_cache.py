"""The on-disk cache of decoded images (``cache="path"`` / ``dataset.cache("path")``), kept across processes.

tf.data's meaning: the first pass decodes and writes every image into the file, later passes (and later
processes: another epoch, another ``fit``, another R session) read it instead of the image files. The file
belongs to one file list and one decoding: a header records a fingerprint of the dataset's paths (with each
file's size and modification time) and of its image spec; a file whose fingerprint differs (files added,
removed, renamed, edited, or another image_size / color_mode) is replaced by a fresh one, never read.

Format (no pickle: a fixed header and raw bytes, read with NumPy views of a memory map):

    bytes 0-15            MAGIC
    bytes 16-23           little-endian uint64: length of the JSON that follows
    then                  JSON: {"version", "fingerprint", "shape": [n, h, w, c], "flags_offset",
                          "pixels_offset"}, padded with spaces to HEADER_BYTES
    flags_offset ...      n uint8 flags: 1 once image i's pixels are in the file
    pixels_offset ...     n * h * w * c uint8 pixels (NHWC), image i at i * h * w * c

Worker processes map the file shared (writes of one are seen by all) and set an image's flag after its
pixels, so a reader that sees the flag sees the image; an image whose writer died before the flag is simply
decoded again. A new file is created under a temporary name and renamed into place, so a reader never sees a
half-written header.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import numpy as np

from pydlr.errors import InputError

__all__ = ["CacheFile", "check_cache_path", "fingerprint"]

MAGIC = b"PYDLR-IMGCACHE\x00\x01"
HEADER_BYTES = 4096
VERSION = 1


def fingerprint(paths: np.ndarray, spec_key: tuple) -> str:
    """sha256 of the files (path, size, modification time, in the given order) and the decoding: one stat
    a file (about 1 s for 60,000 files on a loaded 2-core machine), once a dataset."""
    h = hashlib.sha256(json.dumps([list(spec_key)], default=str).encode())
    for p in paths:
        try:
            st = os.stat(p)
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:  # gone or unreadable: decoding names the file (or skips it) as without a cache
            size = mtime = -1
        h.update(p)
        h.update(struct.pack("<qq", size, mtime))
    return h.hexdigest()


def check_cache_path(path: str, where: str) -> None:
    """A cache file path must be a file (not a folder) in an existing folder: checked before any work."""
    p = Path(path)
    if p.is_dir():
        raise InputError("cache", "a file path (not an existing folder)", path, where=where)
    if not p.parent.is_dir():
        raise InputError("cache", f"a file path in an existing folder ({str(p.parent)!r} does not exist)",
                         path, where=where)


class CacheFile:
    """The cache file at ``path`` for ``n`` images of ``shape`` with fingerprint ``key``: opened when it
    matches, created (replacing any other file there) when it does not. ``flags`` and ``pixels`` are
    writable NumPy views of the shared memory map."""

    def __init__(self, path: str, n: int, shape: tuple[int, int, int], key: str):
        self.path = path
        self.shape = (int(n),) + tuple(int(s) for s in shape)
        self.key = key
        self.reused = self._matches()
        if not self.reused:
            self._create()
        flags_at, pixels_at = self._offsets()
        self.flags = np.memmap(path, dtype=np.uint8, mode="r+", offset=flags_at, shape=(self.shape[0],))
        self.pixels = np.memmap(path, dtype=np.uint8, mode="r+", offset=pixels_at, shape=self.shape)

    def _offsets(self) -> tuple[int, int]:
        flags_at = HEADER_BYTES
        pixels_at = -(-(flags_at + self.shape[0]) // 4096) * 4096  # page-aligned pixels
        return flags_at, pixels_at

    def _header(self) -> dict:
        flags_at, pixels_at = self._offsets()
        return {"version": VERSION, "fingerprint": self.key, "shape": list(self.shape),
                "flags_offset": flags_at, "pixels_offset": pixels_at}

    def _size(self) -> int:
        return self._offsets()[1] + int(np.prod(self.shape))

    def _matches(self) -> bool:
        """True when the file at ``path`` is a complete cache of this dataset (header and size)."""
        try:
            with open(self.path, "rb") as f:
                head = f.read(HEADER_BYTES)
            if len(head) < 24 or head[:16] != MAGIC:
                return False
            (length,) = struct.unpack_from("<Q", head, 16)
            if length > HEADER_BYTES - 24:
                return False
            header = json.loads(head[24:24 + length])
            return header == self._header() and os.path.getsize(self.path) == self._size()
        except (OSError, ValueError):
            return False

    def _create(self) -> None:
        text = json.dumps(self._header()).encode()
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(MAGIC + struct.pack("<Q", len(text)) + text.ljust(HEADER_BYTES - 24))
            f.truncate(self._size())  # sparse: flags read as 0 (nothing cached yet)
        os.replace(tmp, self.path)
