"""The Arrow C Data Interface structs as ctypes types, for Python-allocated structs (rpy2 path, tests)."""

from __future__ import annotations

import ctypes


class ArrowSchema(ctypes.Structure):
    """``struct ArrowSchema`` of the Arrow C Data Interface."""

    _fields_ = [
        ("format", ctypes.c_char_p), ("name", ctypes.c_char_p), ("metadata", ctypes.c_char_p),
        ("flags", ctypes.c_int64), ("n_children", ctypes.c_int64), ("children", ctypes.c_void_p),
        ("dictionary", ctypes.c_void_p), ("release", ctypes.c_void_p), ("private_data", ctypes.c_void_p),
    ]


class ArrowArray(ctypes.Structure):
    """``struct ArrowArray`` of the Arrow C Data Interface."""

    _fields_ = [
        ("length", ctypes.c_int64), ("null_count", ctypes.c_int64), ("offset", ctypes.c_int64),
        ("n_buffers", ctypes.c_int64), ("n_children", ctypes.c_int64), ("buffers", ctypes.c_void_p),
        ("children", ctypes.c_void_p), ("dictionary", ctypes.c_void_p), ("release", ctypes.c_void_p),
        ("private_data", ctypes.c_void_p),
    ]


def release_if_held(schema: ArrowSchema, array: ArrowArray) -> None:
    """Call the structs' release callbacks if they still own data (the producer's cleanup)."""
    for struct, kind in ((array, ArrowArray), (schema, ArrowSchema)):
        if struct.release:
            release = ctypes.CFUNCTYPE(None, ctypes.POINTER(kind))(struct.release)
            release(ctypes.byref(struct))
