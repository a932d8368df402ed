"""Keras 3's saving names (``keras.saving``, ``keras.models.load_model``, ``model.save()``, ...) on pydlr's io.

Everything is pydlr's format underneath (`pydlr.io.saving`): JSON architecture, safetensors weights, never
HDF5 or pickle. Keras' HDF5 names (``.h5``, ``.weights.h5``) are refused with the line to write instead; a
``.keras`` name holds pydlr's single safetensors file, not Keras' zip archive.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydlr.errors import InputError, NotSupportedError
from pydlr.io import saving as io
from pydlr.models.base import BaseModel

__all__ = ["load_model", "model_from_json", "save_model", "SavingMethods"]


def _no_custom_objects(custom_objects: Any, where: str) -> None:
    """pydlr files name only pydlr's own classes (nothing is unpickled or imported from a file), so there is
    nothing for ``custom_objects`` to map."""
    if custom_objects:
        raise NotSupportedError(
            f"{where}(custom_objects=...): pydlr files hold only pydlr's own layers and models, rebuilt "
            "from JSON; drop custom_objects")


def save_model(model: BaseModel, filepath: str | os.PathLike, overwrite: bool = True,
               zipped: bool | None = None, include_optimizer: bool = True) -> Path:
    """Keras' ``keras.saving.save_model``: architecture, weights and optimizer state in one file
    (``.keras``/``.safetensors``/``.pydlr``) or a directory (any other name). ``zipped`` is accepted for
    Keras' signature; pydlr's file is one safetensors file either way."""
    io.refuse_hdf5(filepath, "keras.models.save_model", "filepath")
    return io.save_model(model, filepath, include_optimizer=include_optimizer, overwrite=overwrite)


def load_model(filepath: str | os.PathLike, custom_objects: dict | None = None, compile: bool = True,
               safe_mode: bool = True) -> BaseModel:
    """Keras' ``keras.models.load_model``: the model ``save_model``/``model.save`` wrote, compiled as it was
    saved (``compile=False``: not compiled). ``safe_mode`` is accepted: pydlr files never hold code."""
    _no_custom_objects(custom_objects, "load_model")
    io.refuse_hdf5(filepath, "keras.models.load_model", "filepath")
    return io.load_model(filepath, compile=compile)


def model_from_json(json_string: str, custom_objects: dict | None = None) -> BaseModel:
    """Keras' ``keras.models.model_from_json``: a new, uncompiled model with fresh weights from the text
    ``model.to_json()`` returned."""
    _no_custom_objects(custom_objects, "model_from_json")
    if not isinstance(json_string, str):
        raise InputError("json_string", "the text model.to_json() returned", json_string, "model_from_json")
    try:
        config = json.loads(json_string)
    except json.JSONDecodeError as err:
        raise InputError("json_string", "JSON text from model.to_json()", str(err), "model_from_json") from err
    return io.model_from_config(config, where="model_from_json")


def _saved_weights(path: Path) -> dict:
    """The model tensors of a weights file, or of a whole-model save (a single file or a directory), as Keras'
    ``load_weights`` reads both ``.weights.h5`` and ``.keras`` files."""
    if path.is_dir():
        path = path / io.WEIGHTS_FILE
    if not path.is_file():
        raise InputError("filepath", "an existing weights file or model save", str(path),
                         "model.load_weights")
    tensors, meta = io._read_safetensors(path, "model.load_weights")
    if "pydlr_config" in meta:
        return {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    return tensors


class SavingMethods:
    """Keras' model methods for saving: ``save``, ``save_weights``, ``load_weights``, ``to_json``."""

    def save(self, filepath: str | os.PathLike, overwrite: bool = True, zipped: bool | None = None,
             include_optimizer: bool = True) -> Path:
        """Keras' ``model.save``: the same as ``keras.saving.save_model(model, filepath)``."""
        io.refuse_hdf5(filepath, "model.save", "filepath")
        return io.save_model(self, filepath, include_optimizer=include_optimizer, overwrite=overwrite)

    def save_weights(self, filepath: str | os.PathLike, overwrite: bool = True) -> Path:
        """Keras' ``model.save_weights``: one safetensors file (Keras' ``w.weights.h5`` is refused with
        ``model.save_weights("w.weights.safetensors")`` as the line to write)."""
        io.refuse_hdf5(filepath, "model.save_weights", "filepath")
        if not overwrite and os.path.exists(filepath):
            raise InputError("filepath", "a path that does not exist yet (or overwrite=True)", str(filepath),
                             "model.save_weights")
        return io.save_weights(self, filepath)

    def load_weights(self, filepath: str | os.PathLike, skip_mismatch: bool = False) -> None:
        """Keras' ``model.load_weights``: from ``save_weights``' file or a whole-model save. With
        ``skip_mismatch=True`` weights whose name or shape differ are left as they are."""
        io.refuse_hdf5(filepath, "model.load_weights", "filepath")
        if not isinstance(filepath, (str, os.PathLike)) or not str(filepath):
            raise InputError("filepath", "a file or directory path", filepath, "model.load_weights")
        tensors = _saved_weights(Path(filepath))
        if skip_mismatch:
            own = self.state_dict()
            tensors = {k: v for k, v in tensors.items() if k in own and own[k].shape == v.shape}
        io._load_state(self, tensors, "model.load_weights", strict=not skip_mismatch)

    def to_json(self, **kwargs: Any) -> str:
        """Keras' ``model.to_json``: the architecture (no weights, no compile settings) as JSON text;
        ``keras.models.model_from_json`` rebuilds it. ``kwargs`` go to ``json.dumps`` as in Keras."""
        config = io.model_config(self)
        config.pop("compile_config", None)
        return json.dumps(config, **kwargs)

