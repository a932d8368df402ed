"""The Python side of pydlr's R bridge: Arrow C Data Interface structs in and out, and views of them.

R's C code (r-package/src) fills `ArrowSchema`/`ArrowArray` structs whose buffers point at R's memory;
:func:`import_from_c` takes them over with pyarrow, :func:`as_numpy` and :func:`as_tensor` view them
without a copy where the layout allows. :func:`export_to_c` is the reverse: any supported Python object
into structs that R's C code copies once into R vectors. ``pydlr.r`` (:mod:`pydlr.bridge.rpy2`) uses the
same path for Python users driving R through rpy2.
"""

from pydlr.bridge.arrow import export_to_c, export_to_c_for_r, import_from_c, to_arrow
from pydlr.bridge.from_r import arrow_from_r, arrow_to_tensor, numpy_from_r, tensor_from_r
from pydlr.bridge.views import as_numpy, as_tensor

__all__ = [
    "arrow_from_r",
    "arrow_to_tensor",
    "as_numpy",
    "as_tensor",
    "export_to_c",
    "export_to_c_for_r",
    "import_from_c",
    "numpy_from_r",
    "tensor_from_r",
    "to_arrow",
]
