"""``pydlr.r``: call R on pydlr data through rpy2, with the bridge's Arrow path (see pydlr.bridge.rpy2)."""

from pydlr.bridge.rpy2 import (
    RFunction,
    call,
    data_address,
    from_r,
    kmeans,
    live_count,
    r,
    robjects,
    to_r,
)

__all__ = ["RFunction", "call", "data_address", "from_r", "kmeans", "live_count", "r", "robjects", "to_r"]
