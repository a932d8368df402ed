"""Writing files and folders so that readers never see half of one and a failed write replaces nothing.

Every writer of pydlr (models, weights, checkpoints, the pretrained cache) goes through here: the new
content is written to a temporary name in the target's own folder (so the final rename stays on one file
system and is atomic), flushed to disk, then renamed over the target. On any error, Ctrl-C included, the
temporary is removed and the previous file is left as it was; an OSError (full disk, read-only folder)
comes back as `pydlr.errors.write_failed`, naming the file.

Temporary names are made by `tempfile` (never guessed), and the result gets the permissions an ordinary
``open(path, "w")`` would give (0666 or 0777 less the umask), not the owner-only mode of `tempfile`'s
files: a saved model must stay readable by whoever could read the folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from pydlr.errors import write_failed

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_dir"]


def _umask() -> int:
    """The process's umask (reading it means setting it: set it back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (a crash right after it keeps the new name)."""
    with contextlib.suppress(OSError):  # some file systems refuse to open folders for fsync
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)`` to fill a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError):
            raise write_failed(path, exc) from exc
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """`atomic_write` of bytes already in memory."""
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_dir(path: str | os.PathLike, files: Mapping[str, bytes]) -> None:
    """Replace the folder ``path`` by one holding ``files`` (name -> bytes), as one rename.

    The old folder is moved aside first and put back if the rename fails, so ``path`` always holds either
    the old save or the new one.
    """
    path = Path(path)
    tmp = backup = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        os.chmod(tmp, 0o777 & ~_umask())
        for name, data in files.items():
            with open(tmp / name, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        if path.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, backup / "old")
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if backup is not None and (backup / "old").exists() and not path.exists():
            os.replace(backup / "old", path)
        if isinstance(exc, OSError):
            raise write_failed(path, exc) from exc
        raise
    finally:
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    _fsync_dir(path.parent)
