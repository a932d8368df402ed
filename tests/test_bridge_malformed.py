"""pydlr.bridge's Python importer against Arrow C structs that break the specification.

The structs come from r-package/tests/testthat/malformed_arrow.py (shared with R's tests of the C importer).
Each must end in an InputError, never in a crash or in a pyarrow array that reads out of bounds; types that
are valid Arrow but that R's importer does not convert import fine here (Python can read them).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pyarrow as pa
import pytest

from pydlr.bridge import import_from_c
from pydlr.bridge.cabi import ArrowArray, ArrowSchema
from pydlr.errors import InputError

_PATH = Path(__file__).resolve().parents[1] / "r-package" / "tests" / "testthat" / "malformed_arrow.py"
_spec = importlib.util.spec_from_file_location("malformed_arrow", _PATH)
malformed = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(malformed)

# Valid Arrow that R's importer refuses by type: pyarrow reads them.
VALID_ARROW = {"format_list", "format_binary", "format_float16", "format_decimal", "format_fixed_list",
               "dictionary_of_doubles"}


@pytest.fixture(autouse=True)
def _free_structs():
    yield
    malformed.clear()


@pytest.mark.parametrize("name", [c for c in malformed.CASES if c not in VALID_ARROW])
def test_malformed_structs_raise_input_error(name):
    schema, array = malformed.case(name)
    with pytest.raises(InputError, match="Arrow C Data Interface structs that follow the specification"):
        import_from_c(schema, array)


@pytest.mark.parametrize("name", sorted(VALID_ARROW))
def test_valid_arrow_of_types_r_refuses_imports_in_python(name):
    schema, array = malformed.case(name)
    data = import_from_c(schema, array)
    assert isinstance(data, pa.Array) and len(data) == 1 + (name == "dictionary_of_doubles")


def test_out_of_bounds_reads_are_refused_with_what_was_wrong():
    with pytest.raises(InputError, match="Offset invariant failure"):
        import_from_c(*malformed.case("string_offsets_backwards"))
    with pytest.raises(InputError, match="View at slot 0"):
        import_from_c(*malformed.case("view_past_end"))
    with pytest.raises(InputError, match="Dictionary indices invalid"):
        import_from_c(*malformed.case("dictionary_index_out_of_range"))
    with pytest.raises(InputError, match="negative length, offset"):
        import_from_c(*malformed.case("negative_offset"))


@pytest.mark.parametrize("addr", [0, -16, 1.5, float("nan"), "0x10", None, True])
def test_addresses_that_are_not_pointers_are_refused(addr):
    s, a = ArrowSchema(), ArrowArray()
    with pytest.raises(InputError, match="address of an Arrow C struct"):
        import_from_c(addr, 16)
    with pytest.raises(InputError, match="released"):  # zeroed structs: release is NULL
        import_from_c(_address(s), _address(a))


def test_well_formed_structs_still_import_zero_copy():
    import ctypes

    import numpy as np

    from pydlr.bridge import export_to_c

    x = np.arange(5.0)
    s, a = ArrowSchema(), ArrowArray()
    export_to_c(x, ctypes.addressof(s), ctypes.addressof(a))
    data = import_from_c(ctypes.addressof(s), ctypes.addressof(a))
    assert data.buffers()[1].address == x.ctypes.data
    assert data.to_pylist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    batch = pa.record_batch({"s": pa.array(["a", None, "\u00e9"]),
                             "f": pa.array(["u", "v", "u"]).dictionary_encode()})
    s, a = ArrowSchema(), ArrowArray()
    export_to_c(batch, ctypes.addressof(s), ctypes.addressof(a))
    assert import_from_c(ctypes.addressof(s), ctypes.addressof(a), batch=True).equals(batch)


def _address(struct) -> int:
    import ctypes

    return ctypes.addressof(struct)
