"""Arrow C Data Interface structs that break the specification, for the bridge's importers' tests.

``case(name)`` returns ``[schema address, array address]`` (floats, as R's importer takes them) of structs
built with ctypes; they stay alive in ``_KEEP`` until ``clear()``. Their release callbacks only mark them
released, so an importer that calls them frees nothing it does not own. Shared by testthat (through reticulate) and
pytest (tests/test_bridge_malformed.py).
"""

from __future__ import annotations

import ctypes
import struct

CASES: tuple[str, ...] = (
    "negative_length", "negative_offset", "null_count_above_length", "missing_data_buffer",
    "missing_validity", "missing_buffers_pointer", "too_few_buffers", "too_many_buffers",
    "string_offsets_backwards", "string_offset_negative", "string_data_missing", "view_bad_buffer",
    "view_past_end", "view_negative_size", "child_shorter_than_parent", "child_count_mismatch",
    "null_child", "children_pointer_missing", "dictionary_schema_only", "dictionary_array_only",
    "dictionary_index_out_of_range", "dictionary_of_doubles", "format_missing", "format_list",
    "format_binary", "format_float16", "format_decimal", "format_fixed_list", "format_empty",
    "format_ts_no_colon", "released_array", "released_schema",
)

_KEEP: list = []


class ArrowSchema(ctypes.Structure):
    pass


class ArrowArray(ctypes.Structure):
    pass


_SCHEMA_RELEASE = ctypes.CFUNCTYPE(None, ctypes.POINTER(ArrowSchema))
_ARRAY_RELEASE = ctypes.CFUNCTYPE(None, ctypes.POINTER(ArrowArray))
ArrowSchema._fields_ = [
    ("format", ctypes.c_char_p), ("name", ctypes.c_char_p), ("metadata", ctypes.c_char_p),
    ("flags", ctypes.c_int64), ("n_children", ctypes.c_int64),
    ("children", ctypes.POINTER(ctypes.POINTER(ArrowSchema))), ("dictionary", ctypes.POINTER(ArrowSchema)),
    ("release", _SCHEMA_RELEASE), ("private_data", ctypes.c_void_p),
]
ArrowArray._fields_ = [
    ("length", ctypes.c_int64), ("null_count", ctypes.c_int64), ("offset", ctypes.c_int64),
    ("n_buffers", ctypes.c_int64), ("n_children", ctypes.c_int64), ("buffers", ctypes.POINTER(ctypes.c_void_p)),
    ("children", ctypes.POINTER(ctypes.POINTER(ArrowArray))), ("dictionary", ctypes.POINTER(ArrowArray)),
    ("release", _ARRAY_RELEASE), ("private_data", ctypes.c_void_p),
]
# The specification's release: mark the struct released (set release to NULL); the memory is _KEEP's.
_NO_SCHEMA_RELEASE = _SCHEMA_RELEASE(lambda s: setattr(s.contents, "release", _SCHEMA_RELEASE()))
_NO_ARRAY_RELEASE = _ARRAY_RELEASE(lambda a: setattr(a.contents, "release", _ARRAY_RELEASE()))


def _buf(data: bytes | None) -> int | None:
    if data is None:
        return None
    b = ctypes.create_string_buffer(data, len(data) or 1)
    _KEEP.append(b)
    return ctypes.addressof(b)


def _pair(fmt: bytes | None, length: int, buffers: list, *, null_count: int = 0, offset: int = 0,
          n_buffers: int | None = None, children: list | None = None, s_children: list | None = None,
          s_dict=None, a_dict=None, name: bytes = b"col"):
    s, a = ArrowSchema(), ArrowArray()
    s.format, s.name, s.release = fmt, name, _NO_SCHEMA_RELEASE
    a.length, a.null_count, a.offset, a.release = length, null_count, offset, _NO_ARRAY_RELEASE
    if buffers is not None:
        arr = (ctypes.c_void_p * max(1, len(buffers)))(*[_buf(b) for b in buffers])
        _KEEP.append(arr)
        a.buffers = ctypes.cast(arr, ctypes.POINTER(ctypes.c_void_p))
    a.n_buffers = len(buffers or []) if n_buffers is None else n_buffers
    children = children or []
    s_children = children if s_children is None else s_children
    if children:
        ac = (ctypes.POINTER(ArrowArray) * len(children))(*[ctypes.pointer(c[1]) if c else None for c in children])
        a.children = ctypes.cast(ac, ctypes.POINTER(ctypes.POINTER(ArrowArray)))
        _KEEP.append(ac)
    if s_children:
        sc = (ctypes.POINTER(ArrowSchema) * len(s_children))(*[ctypes.pointer(c[0]) if c else None for c in s_children])
        s.children = ctypes.cast(sc, ctypes.POINTER(ctypes.POINTER(ArrowSchema)))
        _KEEP.append(sc)
    a.n_children, s.n_children = len(children), len(s_children)
    if s_dict is not None:
        s.dictionary = ctypes.pointer(s_dict)
    if a_dict is not None:
        a.dictionary = ctypes.pointer(a_dict)
    _KEEP.append((s, a))
    return s, a


def _doubles(*v: float) -> bytes:
    return struct.pack(f"<{len(v)}d", *v)


def _ints(*v: int) -> bytes:
    return struct.pack(f"<{len(v)}i", *v)


def _view(size: int, data: bytes = b"", buffer: int = 0, offset: int = 0) -> bytes:
    if size <= 12:
        return struct.pack("<i", size) + data.ljust(12, b"\0")
    return struct.pack("<i4sii", size, data[:4], buffer, offset)


def _strings(offsets: list[int], data: bytes | None, length: int | None = None):
    return _pair(b"u", len(offsets) - 1 if length is None else length, [None, _ints(*offsets), data])


def _levels():
    return _strings([0, 1, 2], b"ab")


def _build(name: str):
    d3 = _doubles(1.0, 2.0, 3.0)
    table = {
        "negative_length": lambda: _pair(b"g", -5, [None, d3]),
        "negative_offset": lambda: _pair(b"g", 3, [None, d3], offset=-1_000_000),
        "null_count_above_length": lambda: _pair(b"g", 3, [b"\x00", d3], null_count=7),
        "missing_data_buffer": lambda: _pair(b"g", 3, [None, None]),
        "missing_validity": lambda: _pair(b"i", 3, [None, _ints(1, 2, 3)], null_count=1),
        "missing_buffers_pointer": lambda: _pair(b"g", 3, None, n_buffers=2),
        "too_few_buffers": lambda: _pair(b"u", 2, [None, _ints(0, 1, 2)]),
        "too_many_buffers": lambda: _pair(b"g", 3, [None, d3, d3, d3]),
        "string_offsets_backwards": lambda: _strings([0, 5, 2], b"hello"),
        "string_offset_negative": lambda: _strings([-100_000, 0], b"x"),
        "string_data_missing": lambda: _strings([0, 3, 6], None),
        "view_bad_buffer": lambda: _pair(b"vu", 1, [None, _view(20, b"abcd", buffer=3), b"x" * 20,
                                                    struct.pack("<q", 20)]),
        "view_past_end": lambda: _pair(b"vu", 1, [None, _view(20, b"abcd", buffer=0, offset=10), b"x" * 20,
                                                  struct.pack("<q", 20)]),
        "view_negative_size": lambda: _pair(b"vu", 1, [None, _view(-4), struct.pack("<q", 0)]),
        "child_shorter_than_parent": lambda: _pair(b"+s", 5, [None], children=[_pair(b"g", 2, [None, d3])]),
        "child_count_mismatch": lambda: _pair(b"+s", 3, [None], children=[_pair(b"g", 3, [None, d3])],
                                              s_children=[]),
        "null_child": lambda: _pair(b"+s", 3, [None], children=[None]),
        "children_pointer_missing": lambda: _missing_children(),
        "dictionary_schema_only": lambda: _pair(b"i", 2, [None, _ints(0, 1)], s_dict=_levels()[0]),
        "dictionary_array_only": lambda: _pair(b"i", 2, [None, _ints(0, 1)], a_dict=_levels()[1]),
        "dictionary_index_out_of_range": lambda: _dict(_ints(0, 1_000_000)),
        "dictionary_of_doubles": lambda: _dict(_ints(0, 1), values=_pair(b"g", 3, [None, d3])),
        "format_missing": lambda: _pair(None, 3, [None, d3]),
        "format_list": lambda: _pair(b"+l", 1, [None, _ints(0, 3)], children=[_pair(b"g", 3, [None, d3])]),
        "format_binary": lambda: _pair(b"z", 1, [None, _ints(0, 3), b"abc"]),
        "format_float16": lambda: _pair(b"e", 1, [None, b"\x00\x3c"]),
        "format_decimal": lambda: _pair(b"d:10,2", 1, [None, b"\x00" * 16]),
        "format_fixed_list": lambda: _pair(b"+w:3", 1, [None], children=[_pair(b"g", 3, [None, d3])]),
        "format_empty": lambda: _pair(b"", 3, [None, d3]),
        "format_ts_no_colon": lambda: _pair(b"tsu", 1, [None, struct.pack("<q", 0)]),
        "released_array": lambda: _released(array=True),
        "released_schema": lambda: _released(array=False),
    }
    return table[name]()


def _dict(indices: bytes, values=None):
    values = values or _levels()
    return _pair(b"i", len(indices) // 4, [None, indices], s_dict=values[0], a_dict=values[1])


def _missing_children():
    s, a = _pair(b"+s", 3, [None])
    s.n_children = a.n_children = 1  # counts say one child, the pointers are NULL
    return s, a


def _released(array: bool):
    s, a = _pair(b"g", 3, [None, _doubles(1.0, 2.0, 3.0)])
    if array:
        a.release = _ARRAY_RELEASE()
    else:
        s.release = _SCHEMA_RELEASE()
    return s, a


def case(name: str) -> list[float]:
    """The addresses of the malformed structs ``name`` (one of CASES)."""
    s, a = _build(name)
    return [float(ctypes.addressof(s)), float(ctypes.addressof(a))]


def released(addresses: list[float]) -> bool:
    """Whether both structs at ``addresses`` were released (their release callbacks set to NULL)."""
    s = ArrowSchema.from_address(int(addresses[0]))
    a = ArrowArray.from_address(int(addresses[1]))
    return not s.release and not a.release


def clear() -> None:
    _KEEP.clear()
