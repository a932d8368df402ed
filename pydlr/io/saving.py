"""save_model / load_model / save_weights / load_weights: JSON architecture + safetensors, never pickle.

Formats
-------
* A path ending in ``.safetensors``, ``.pydlr`` or ``.keras``: ONE safetensors file. Model tensors are
  stored as ``model.<state-dict key>``, optimizer tensors as ``optimizer.<key>``; the architecture and the
  optimizer's scalars are JSON strings in the file's metadata (``pydlr_config``, ``pydlr_optimizer``).
  ``pydlr_config`` also holds ``class_names``, the classes the model was trained on (a dataset's class
  names, R's factor levels), when they are known: ``load_model`` restores them as ``trained_class_names``;
  and ``input_scale``, the training images' scale (`pydlr.data.scale`), restored as ``input_scale``.
  A ``.keras`` path holds pydlr's format, not Keras' zip archive (loading a real Keras archive raises
  NotSupportedError saying so).
* Any other path: a directory with ``config.json``, ``model.safetensors`` and, with an optimizer,
  ``optimizer.safetensors`` + ``optimizer.json``.
* Keras' HDF5 names (``m.h5``, ``w.weights.h5``, ``.hdf5``) are refused with an InputError that gives the
  safetensors name to use: pydlr never writes or reads HDF5, and safetensors under an ``.h5`` name would mislead.

Writes are atomic: everything is serialized in memory first, written to a temporary sibling, then moved
into place with ``os.replace``; on error nothing half-written is left and an old save stays intact.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load

from pydlr.atomic_files import atomic_write_bytes, atomic_write_dir
from pydlr.errors import InputError, NotSupportedError
from pydlr.models.base import BaseModel, class_key, resolve_model_class
from pydlr.weights_format import (
    CHECKSUM_KEY,
    FORMAT_NAME,
    FORMAT_VERSION,
    tensors_sha256,
    weights_bytes,
    weights_metadata,
)

SINGLE_FILE_SUFFIXES = (".safetensors", ".pydlr", ".keras")
CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"
OPTIMIZER_TENSORS, OPTIMIZER_JSON = "optimizer.safetensors", "optimizer.json"


# ---- optimizer state: tensors to safetensors, the rest to JSON ------------------------------------------
def flatten_optimizer_state(
    state_dict: dict[str, Any],
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split a torch optimizer ``state_dict()`` into tensors (``state.<param>.<name>``) and JSON scalars."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, entries in state_dict.get("state", {}).items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{param_id}.{name}"] = value
            else:
                scalars.setdefault(str(param_id), {})[name] = value
    info = {
        "iterations": state_dict.get("iterations"),
        "param_groups": state_dict.get("param_groups", []),
        "state_scalars": scalars,
        "state_ids": [str(k) for k in state_dict.get("state", {})],
    }
    try:
        json.dumps(info)
    except TypeError as err:
        raise InputError(
            "optimizer state", "JSON-serializable scalars and tensors", str(err), "save_model"
        ) from err
    return tensors, info


def unflatten_optimizer_state(
    tensors: dict[str, torch.Tensor], info: dict[str, Any]
) -> dict[str, Any]:
    """Rebuild the ``state_dict()`` that ``flatten_optimizer_state`` split."""
    state: dict[Any, dict[str, Any]] = {}
    for key in info.get("state_ids", []):
        state[int(key) if key.lstrip("-").isdigit() else key] = {}
    for full, tensor in tensors.items():
        _, param_id, name = full.split(".", 2)
        state.setdefault(int(param_id) if param_id.lstrip("-").isdigit() else param_id, {})[
            name
        ] = tensor
    for param_id, entries in info.get("state_scalars", {}).items():
        state.setdefault(int(param_id) if param_id.lstrip("-").isdigit() else param_id, {}).update(
            entries
        )
    out = {"state": state, "param_groups": info.get("param_groups", [])}
    if info.get("iterations") is not None:
        out["iterations"] = int(info["iterations"])
    return out


def optimizer_state(optimizer: Any) -> dict[str, Any]:
    """``optimizer.state_dict()`` plus Keras' ``iterations`` (the step count a learning-rate schedule reads,
    kept on pydlr's torch optimizers as an attribute) when it has one."""
    state = optimizer.state_dict()
    if getattr(optimizer, "iterations", None) is not None:
        state = {**state, "iterations": int(optimizer.iterations)}
    return state


def apply_optimizer_state(optimizer: Any, state: dict[str, Any]) -> None:
    """The inverse of `optimizer_state`: torch's ``load_state_dict`` and the step count."""
    state = dict(state)
    iterations = state.pop("iterations", None)
    optimizer.load_state_dict(state)
    if iterations is not None:
        optimizer.iterations = int(iterations)


def _optimizer_of(model: BaseModel) -> Any:
    optimizer = getattr(model, "optimizer", None)
    return optimizer if callable(getattr(optimizer, "state_dict", None)) else None


def _write_dir_atomic(path: Path, files: dict[str, bytes]) -> None:
    if path.exists() and not path.is_dir():
        raise InputError(
            "path",
            "a directory path (or a file ending in .safetensors/.pydlr/.keras)",
            str(path),
            "save_model",
        )
    if path.is_dir() and any(path.iterdir()) and not (path / CONFIG_FILE).exists():
        raise InputError(
            "path",
            "a new or empty directory, or an earlier pydlr save to overwrite",
            str(path),
            "save_model",
        )
    atomic_write_dir(path, files)


def _check_model(model: Any, where: str) -> None:
    if not isinstance(model, BaseModel):
        raise InputError("model", "a pydlr model (pydlr.models.*)", model, where)


HDF5_SUFFIXES = (".h5", ".hdf5")
# The call to write instead, per function, for the advice in refuse_hdf5's message.
_INSTEAD = {
    "save_model": 'save_model(model, "{}")',
    "load_model": 'load_model("{}")',
    "save_weights": 'save_weights(model, "{}")',
    "load_weights": 'load_weights(model, "{}")',
    "ModelCheckpoint": 'ModelCheckpoint("{}")',
    "model.save": 'model.save("{}")',
    "model.save_weights": 'model.save_weights("{}")',
    "model.load_weights": 'model.load_weights("{}")',
    "keras.models.save_model": 'keras.models.save_model(model, "{}")',
    "keras.models.load_model": 'keras.models.load_model("{}")',
}


def safetensors_name(path: str | os.PathLike) -> str:
    """``path`` with an HDF5 suffix replaced by ``.safetensors``: ``w.weights.h5`` -> ``w.weights.safetensors``."""
    text = str(path)
    suffix = Path(text).suffix
    return text[: -len(suffix)] + ".safetensors" if suffix.lower() in HDF5_SUFFIXES else text


def refuse_hdf5(path: str | os.PathLike, where: str, argument: str = "path") -> None:
    """InputError for Keras' HDF5 names (``.h5``, ``.weights.h5``, ``.hdf5``).

    pydlr writes and reads safetensors only; writing safetensors under an HDF5 name would mislead every tool
    (and Keras) that trusts the suffix, and a real HDF5 file cannot be read. The message gives the line to
    write instead.
    """
    if Path(str(path)).suffix.lower() not in HDF5_SUFFIXES:
        return
    fixed = safetensors_name(path)
    line = _INSTEAD.get(where, "{}").format(Path(fixed).name if where != "ModelCheckpoint" else fixed)
    verb = "rename the file to" if "load" in where else "name it"
    raise InputError(
        argument,
        "a safetensors file name (or a directory): pydlr writes and reads safetensors, never HDF5 "
        f"(.h5); {verb} {Path(fixed).name!r} and write {line}",
        str(path),
        where,
    )


def _path(path: Any, where: str) -> Path:
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise InputError("path", "a file or directory path", path, where)
    refuse_hdf5(path, where)
    path = Path(path)
    if not path.parent.exists():
        raise InputError("path", "a path in an existing directory", str(path), where)
    return path


# ---- public API -------------------------------------------------------------------------------------------
def model_config(model: BaseModel) -> dict[str, Any]:
    """The JSON document describing a model: format, class, architecture, compile settings, dtype."""
    dtypes = {
        str(t.dtype).replace("torch.", "")
        for t in model.state_dict().values()
        if t.is_floating_point()
    }
    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "class_name": class_key(type(model)),
        "config": model.get_config(),
        "dtype": dtypes.pop() if len(dtypes) == 1 else None,
    }
    get_compile = getattr(model, "get_compile_config", None)
    if callable(get_compile):
        config["compile_config"] = get_compile()
    return config


def save_model(
    model: BaseModel,
    path: str | os.PathLike,
    include_optimizer: bool = True,
    overwrite: bool = True,
) -> Path:
    """Save architecture (JSON), weights and optionally the optimizer state (safetensors).

    Parameters
    ----------
    model : BaseModel
        Any pydlr model.
    path : str or PathLike
        A ``.safetensors``/``.pydlr``/``.keras`` file for the single-file format, else a directory. Keras'
        HDF5 names (``.h5``, ``.weights.h5``, ``.hdf5``) are refused: pydlr never writes HDF5.
    include_optimizer : bool
        Save ``model.optimizer.state_dict()`` when the model has one (tensors to safetensors, the rest JSON).
    overwrite : bool
        Replace an existing save (atomically); False raises InputError if ``path`` exists.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    _check_model(model, "save_model")
    path = _path(path, "save_model")
    if path.exists() and not overwrite:
        raise InputError(
            "path", "a path that does not exist yet (or overwrite=True)", str(path), "save_model"
        )
    config = model_config(model)
    _check_reloadable(model, config, "save_model")
    # what label k meant in training, so evaluate() can still refuse a dataset with other classes
    class_names = getattr(model, "trained_class_names", None)
    if class_names is not None:
        config["class_names"] = [str(c) for c in class_names]
    # the table columns it was trained on, in order (R matches a data.frame's columns by these names)
    column_names = getattr(model, "trained_column_names", None)
    if column_names is not None:
        config["column_names"] = [str(c) for c in column_names]
    # the training images' scale, so predict() on the loaded model still warns on 0-255 pixels
    input_scale = getattr(model, "input_scale", None)
    if input_scale is not None:
        config["input_scale"] = float(input_scale)
    optimizer = _optimizer_of(model) if include_optimizer else None
    opt_tensors, opt_info = (
        flatten_optimizer_state(optimizer_state(optimizer)) if optimizer else ({}, None)
    )
    meta = {"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION)}
    if path.suffix.lower() in SINGLE_FILE_SUFFIXES:
        tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
        tensors.update({f"optimizer.{k}": v for k, v in opt_tensors.items()})
        meta["pydlr_config"] = json.dumps(config)
        if opt_info is not None:
            meta["pydlr_optimizer"] = json.dumps(opt_info)
        atomic_write_bytes(path, weights_bytes(tensors, meta))
    else:
        files = {
            CONFIG_FILE: json.dumps(config, indent=2).encode(),
            WEIGHTS_FILE: weights_bytes(model.state_dict(), meta),
        }
        if opt_info is not None:
            files[OPTIMIZER_TENSORS] = weights_bytes(opt_tensors, meta)
            files[OPTIMIZER_JSON] = json.dumps(opt_info, indent=2).encode()
        _write_dir_atomic(path, files)
    return path


def _check_reloadable(model: BaseModel, config: dict[str, Any], where: str) -> None:
    """InputError, before anything is written, when ``load_model`` could not read the file of an unbuilt model.

    Its config records no input shape, so ``load_model`` recreates its layers unbuilt, without weights: the
    weights some of them already hold (layers built in another model, as in ``Sequential(other.layers[:3])``)
    would have nowhere to go. The unbuilt model is recreated here (no weights, so cheap) and its state's keys
    and shapes compared. Built models record their input shape and are not recreated (a save would pay for
    fresh weights)."""
    if getattr(model, "built", True):
        return
    own = {k: tuple(t.shape) for k, t in model.state_dict().items()}
    fresh = {k: tuple(t.shape) for k, t in model_from_config(config, where=where).state_dict().items()}
    if own != fresh:
        raise InputError(
            "model", "a built model (some of its layers hold weights, but it records no input shape, so the "
            "file could not be loaded): build it first with model.build((None, *input_shape)) or one call "
            "on data, then save", f"the unbuilt {model.where}", where)


def _read_safetensors(path: Path, where: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file; other formats are refused (never unpickled)."""
    data = path.read_bytes()
    if data[:2] == b"PK":
        raise NotSupportedError(
            f"{where}: {path} is a zip archive (a Keras .keras file or a torch checkpoint); pydlr reads only its "
            "own safetensors format and never unpickles. Convert weights to safetensors and use load_weights()."
        )
    try:
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
    except (SafetensorError, ValueError, UnicodeDecodeError) as err:
        raise InputError(
            "path", "a safetensors file written by pydlr", f"{path}: {err}", where
        ) from err
    metadata = header.get("__metadata__", {}) or {}
    recorded = metadata.get(CHECKSUM_KEY)
    if recorded is not None and recorded != tensors_sha256(tensors):
        raise InputError("path", "an intact pydlr file (its tensors match the checksum recorded in it)",
                         f"{path}, whose tensors were changed or corrupted after it was written", where)
    return tensors, metadata


def _read_saved(
    path: Path,
) -> tuple[dict, dict[str, torch.Tensor], dict[str, torch.Tensor], dict | None]:
    if path.is_dir():
        if not (path / CONFIG_FILE).exists():
            raise InputError(
                "path", f"a pydlr save directory containing {CONFIG_FILE}", str(path), "load_model"
            )
        config = json.loads((path / CONFIG_FILE).read_text())
        weights, _ = _read_safetensors(path / WEIGHTS_FILE, "load_model")
        opt_tensors, opt_info = {}, None
        if (path / OPTIMIZER_JSON).exists():
            opt_info = json.loads((path / OPTIMIZER_JSON).read_text())
            opt_tensors, _ = _read_safetensors(path / OPTIMIZER_TENSORS, "load_model")
        return config, weights, opt_tensors, opt_info
    if not path.is_file():
        raise InputError(
            "path", "an existing pydlr save (file or directory)", str(path), "load_model"
        )
    tensors, meta = _read_safetensors(path, "load_model")
    if "pydlr_config" not in meta:
        raise InputError(
            "path",
            "a pydlr model file (use load_weights for a bare weights file)",
            str(path),
            "load_model",
        )
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    opt_tensors = {
        k[len("optimizer.") :]: v for k, v in tensors.items() if k.startswith("optimizer.")
    }
    opt_info = json.loads(meta["pydlr_optimizer"]) if "pydlr_optimizer" in meta else None
    return json.loads(meta["pydlr_config"]), weights, opt_tensors, opt_info


def model_from_config(
    config: dict[str, Any], model_class: type[BaseModel] | None = None, where: str = "load_model"
) -> BaseModel:
    """A new model (fresh weights, not compiled) from the document ``model_config`` wrote."""
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        got = config.get("format") if isinstance(config, dict) else config
        raise InputError("config", "a pydlr model document", f"format {got!r}", where)
    if model_class is None:
        cls = resolve_model_class(config["class_name"])
    elif isinstance(model_class, type) and issubclass(model_class, BaseModel):
        cls = model_class
    else:
        raise InputError("model_class", "a pydlr model class or None", model_class, where)
    model = cls.from_config(config["config"])
    if config.get("dtype") and config["dtype"] != str(torch.get_default_dtype()).replace(
        "torch.", ""
    ):
        model.to(getattr(torch, config["dtype"]))
    return model


def load_model(
    path: str | os.PathLike, model_class: type[BaseModel] | None = None, compile: bool = True
) -> BaseModel:
    """Load a model saved by ``save_model``: rebuild from JSON, then copy the weights in bit for bit.

    Parameters
    ----------
    path : str or PathLike
        The file or directory ``save_model`` wrote.
    model_class : type, optional
        The class to rebuild (e.g. ``pydlr.engine.Sequential``); by default the class recorded in the file,
        looked up among pydlr's own classes only.
    compile : bool
        If the file has compile settings and the class offers ``compile_from_config``, re-compile and
        restore the optimizer state. Otherwise the optimizer state is left in
        ``model.pending_optimizer_state`` for the training code to apply.
    """
    path = _path(path, "load_model")
    config, weights, opt_tensors, opt_info = _read_saved(path)
    model = model_from_config(config, model_class, "load_model")
    _load_state(model, weights, "load_model")
    model.trained_class_names = config.get("class_names")  # absent in files saved without classes
    model.trained_column_names = config.get("column_names")
    model.input_scale = config.get("input_scale")
    model.pending_optimizer_state = (
        unflatten_optimizer_state(opt_tensors, opt_info) if opt_info is not None else None
    )
    compile_from = getattr(model, "compile_from_config", None)
    if compile and config.get("compile_config") and callable(compile_from):
        compile_from(config["compile_config"])
        optimizer = _optimizer_of(model)
        if optimizer is not None and model.pending_optimizer_state is not None:
            apply_optimizer_state(optimizer, model.pending_optimizer_state)
            model.pending_optimizer_state = None
    return model


def _load_state(
    model: BaseModel, tensors: dict[str, torch.Tensor], where: str, strict: bool = True
) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in tensors]
    unexpected = [k for k in tensors if k not in own]
    if strict and (missing or unexpected):
        raise InputError(
            "weights",
            f"the keys of {model.where}",
            f"missing {missing[:3]}, unexpected {unexpected[:3]}",
            where,
        )
    for key, tensor in tensors.items():
        if key in own and tuple(own[key].shape) != tuple(tensor.shape):
            raise InputError(
                "weights", f"{key} of shape {tuple(own[key].shape)}", tuple(tensor.shape), where
            )
    model.load_state_dict({k: v for k, v in tensors.items() if k in own}, strict=strict)


def save_weights(model: BaseModel, path: str | os.PathLike) -> Path:
    """Write the model's state dict (torch layouts and key names) to one safetensors file, atomically."""
    _check_model(model, "save_weights")
    path = _path(path, "save_weights")
    meta = weights_metadata(class_key(type(model)))
    atomic_write_bytes(path, weights_bytes(model.state_dict(), meta))
    return path


def load_weights(model: BaseModel, path: str | os.PathLike, strict: bool = True) -> BaseModel:
    """Load a safetensors state dict (pydlr's or any with the same keys, e.g. torchvision's) into ``model``."""
    _check_model(model, "load_weights")
    path = _path(path, "load_weights")
    if not path.is_file():
        raise InputError("path", "an existing safetensors file", str(path), "load_weights")
    tensors, _ = _read_safetensors(path, "load_weights")
    _load_state(model, tensors, "load_weights", strict)
    return model


__all__ = [
    "refuse_hdf5",
    "safetensors_name",
    "load_model",
    "load_weights",
    "model_config",
    "model_from_config",
    "save_model",
    "save_weights",
]
