"""Keras' History: ``history.history`` (dict of per-epoch lists) and ``history.epoch``."""

from __future__ import annotations

__all__ = ["History"]


class History:
    """Per-epoch logs of a fit, as ``keras.callbacks.History``.

    Attributes
    ----------
    history : dict[str, list[float]]
        ``{"loss": [...], "accuracy": [...], "val_loss": [...], ...}``, one value per epoch.
    epoch : list[int]
        The (0-based) epoch numbers, as Keras.
    params : dict
        ``{"epochs", "steps", "verbose"}`` of the last fit.
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.params: dict = {}

    def append(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(int(epoch))
        for k, v in logs.items():
            self.history.setdefault(k, []).append(float(v))

    def to_dict(self) -> dict:
        """JSON-safe form (used by checkpoints and the R package)."""
        return {"history": self.history, "epoch": self.epoch, "params": self.params}

    @classmethod
    def from_dict(cls, d: dict) -> History:
        h = cls()
        h.history = {k: [float(x) for x in v] for k, v in d.get("history", {}).items()}
        h.epoch = [int(e) for e in d.get("epoch", [])]
        h.params = dict(d.get("params", {}))
        return h

    def __repr__(self) -> str:
        keys = ", ".join(self.history)
        return f"<History: {len(self.epoch)} epochs; {keys}>"
