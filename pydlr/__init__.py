"""pydlr: deep learning for R users, with a Python core."""

__version__ = "0.1.0"
