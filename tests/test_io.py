"""Saving and loading: bit-exact round trips, optimizer state, atomic writes, never unpickling."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from pydlr import io, layers, models
from pydlr.errors import InputError, NotSupportedError
from pydlr.models import summary


@pytest.fixture(autouse=True)
def _fresh_names() -> None:
    layers.clear_session()


def _bits_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return list(a) == list(b) and all(
        x.dtype == y.dtype
        and x.shape == y.shape
        and torch.equal(x.reshape(-1).view(torch.uint8), y.reshape(-1).view(torch.uint8))
        for x, y in zip(a.values(), b.values(), strict=True)
    )


def _trained_seed_model() -> models.Sequential:
    torch.manual_seed(0)
    model = models.Sequential(
        [
            layers.Input((12, 12, 1)),
            layers.Conv2D(4, 3, activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(3),
        ]
    )
    model.optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):
        model.optimizer.zero_grad()
        model(torch.rand(4, 12, 12, 1)).square().mean().backward()
        model.optimizer.step()
    return model


@pytest.mark.parametrize("name", ["model.keras", "model.safetensors", "saved_dir"])
def test_save_load_round_trip_is_bit_exact(tmp_path: Path, name: str) -> None:
    model = _trained_seed_model()
    path = io.save_model(model, tmp_path / name)
    loaded = io.load_model(path)
    assert type(loaded) is models.Sequential
    assert _bits_equal(model.state_dict(), loaded.state_dict())
    assert loaded.get_config() == model.get_config()
    x = torch.rand(3, 12, 12, 1)
    assert torch.equal(model.eval()(x), loaded.eval()(x))
    # the optimizer state comes back too: tensors bit for bit, scalars as they were
    saved, restored = model.optimizer.state_dict(), loaded.pending_optimizer_state
    assert restored["param_groups"][0]["lr"] == 1e-3
    for pid, entries in saved["state"].items():
        for key, value in entries.items():
            assert torch.equal(value, restored["state"][pid][key])
    fresh = torch.optim.Adam(loaded.parameters(), lr=1e-3)
    fresh.load_state_dict(restored)
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], saved["state"][0]["exp_avg"])


@pytest.mark.parametrize("name", ["model.keras", "saved_dir", "w.weights.safetensors"])
def test_saved_files_get_ordinary_permissions(tmp_path: Path, name: str) -> None:
    """Atomic writes go through private temporary files; the result must still be readable as a file
    written with open() would be (0666 / 0777 less the umask), not owner-only."""
    old = os.umask(0o022)
    try:
        model = models.seed_cnn()
        path = tmp_path / name
        if name.startswith("w."):
            io.save_weights(model, path)
        else:
            io.save_model(model, path)
    finally:
        os.umask(old)
    expected = 0o755 if path.is_dir() else 0o644
    assert path.stat().st_mode & 0o777 == expected
    for inner in path.iterdir() if path.is_dir() else []:
        assert inner.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("name", ["model.keras", "w.weights.safetensors", "ckpt.safetensors"])
def test_the_same_model_saves_to_the_same_bytes(tmp_path: Path, name: str) -> None:
    """Saving twice gives byte-identical files (safetensors orders its header differently call to call),
    so a file's checksum identifies what it holds."""
    from pydlr.train.checkpoint import save_training_state

    model = _trained_seed_model()
    blobs = []
    for i in range(3):
        path = tmp_path / f"{i}{name}"
        if name.startswith("w."):
            io.save_weights(model, path)
        elif name.startswith("ckpt"):
            torch.manual_seed(0)  # the checkpoint holds the RNG state
            save_training_state(path, model, model.optimizer, {"epoch": 1})
        else:
            io.save_model(model, path)
        blobs.append(path.read_bytes())
    assert blobs[0] == blobs[1] == blobs[2]
    header_len = int.from_bytes(blobs[0][:8], "little")
    assert header_len % 8 == 0  # safetensors' alignment of the data that follows


def test_without_optimizer_and_summary_file_size(tmp_path: Path) -> None:
    model = models.seed_cnn()
    path = io.save_weights(model, tmp_path / "w.safetensors")
    assert os.path.getsize(path) == summary.saved_weights_size(model)
    io.save_model(model, tmp_path / "m", include_optimizer=False)
    assert sorted(os.listdir(tmp_path / "m")) == ["config.json", "model.safetensors"]


def test_functional_and_architecture_round_trip(tmp_path: Path) -> None:
    inputs = layers.Input((8, 8, 3))
    x = layers.Conv2D(3, 3, padding="same")(inputs)
    model = models.Model(inputs, layers.Add()([inputs, x]))
    loaded = io.load_model(io.save_model(model, tmp_path / "f.pydlr"))
    assert type(loaded) is models.Model and _bits_equal(model.state_dict(), loaded.state_dict())
    data = torch.rand(2, 8, 8, 3)
    assert torch.equal(model(data), loaded(data))


def test_float64_model_keeps_its_dtype(tmp_path: Path) -> None:
    model = models.seed_cnn(head=False).double()
    loaded = io.load_model(io.save_model(model, tmp_path / "d"))
    assert loaded.layers[0].weight.dtype == torch.float64
    assert _bits_equal(model.state_dict(), loaded.state_dict())


def test_model_class_argument(tmp_path: Path) -> None:
    class MySequential(models.Sequential):
        pass

    path = io.save_model(models.seed_cnn(), tmp_path / "m.keras")
    assert type(io.load_model(path, model_class=MySequential)) is MySequential
    with pytest.raises(InputError, match="model_class"):
        io.load_model(path, model_class=dict)


def test_failed_save_leaves_old_save_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = models.seed_cnn()
    for name in ("m.keras", "m_dir"):
        target = tmp_path / name
        io.save_model(model, target)
        before = sorted(p.name for p in tmp_path.iterdir())
        original = {p: p.read_bytes() for p in ([target] if target.is_file() else target.iterdir())}

        def boom(*args: object, **kwargs: object) -> None:
            raise OSError("disk full")

        with monkeypatch.context() as patch:
            patch.setattr(os, "replace", boom)
            with pytest.raises(OSError, match="disk full"):
                io.save_model(models.seed_cnn(), target)
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary left behind
        assert all(p.read_bytes() == data for p, data in original.items())


class _Exploit:
    def __reduce__(self) -> tuple:
        return (os.system, ("touch pwned_marker",))


def test_load_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    pickled = tmp_path / "evil.safetensors"
    pickled.write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(InputError, match="safetensors"):
        io.load_model(pickled)
    with pytest.raises(InputError, match="safetensors"):
        io.load_weights(models.seed_cnn(), pickled)
    torch_file = tmp_path / "evil.keras"
    torch.save({"x": _Exploit()}, torch_file)  # a zip archive with a pickle inside
    with pytest.raises(NotSupportedError, match="never unpickles"):
        io.load_model(torch_file)
    with zipfile.ZipFile(tmp_path / "real.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(NotSupportedError, match="zip archive"):
        io.load_model(tmp_path / "real.keras")
    assert not (tmp_path / "pwned_marker").exists()


def test_weights_round_trip_and_mismatch_errors(tmp_path: Path) -> None:
    model = models.seed_cnn()
    path = io.save_weights(model, tmp_path / "w.safetensors")
    other = io.load_weights(models.seed_cnn(), path)
    assert _bits_equal(model.state_dict(), other.state_dict())
    headless = io.save_weights(models.seed_cnn(head=False), tmp_path / "h.safetensors")
    with pytest.raises(InputError, match="missing.*layers.6.weight"):
        io.load_weights(models.seed_cnn(), headless)
    with pytest.raises(InputError, match=r"layers.0.weight of shape \(32, 3, 3, 3\)"):
        io.load_weights(models.seed_cnn(input_shape=(28, 28, 3)), path)


def test_bad_paths(tmp_path: Path) -> None:
    model = models.seed_cnn()
    with pytest.raises(InputError, match="existing directory"):
        io.save_model(model, tmp_path / "missing" / "m.keras")
    io.save_model(model, tmp_path / "m.keras")
    with pytest.raises(InputError, match="overwrite"):
        io.save_model(model, tmp_path / "m.keras", overwrite=False)
    (tmp_path / "user_dir").mkdir()
    (tmp_path / "user_dir" / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="empty directory"):
        io.save_model(model, tmp_path / "user_dir")
    with pytest.raises(InputError, match="existing pydlr save"):
        io.load_model(tmp_path / "nothing_here")
    with pytest.raises(InputError, match="model"):
        io.save_model(torch.nn.Linear(2, 2), tmp_path / "x.keras")


@pytest.mark.parametrize(
    "make",
    [
        lambda p: torch.optim.SGD(p, lr=0.1),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
        lambda p: torch.optim.RMSprop(p, lr=1e-3, momentum=0.5, centered=True),
        lambda p: torch.optim.AdamW(p, lr=1e-3, amsgrad=True),
    ],
)
def test_training_resumes_bit_identically_after_load(tmp_path: Path, make) -> None:
    torch.manual_seed(0)
    model = models.Sequential(
        [layers.Input((6,)), layers.Dense(4, activation="relu"), layers.Dense(2)]
    )
    model.optimizer = make(model.parameters())
    x = torch.randn(8, 6)

    def step(m: models.Sequential) -> None:
        m.optimizer.zero_grad()
        m(x).square().mean().backward()
        m.optimizer.step()

    step(model)
    loaded = io.load_model(io.save_model(model, tmp_path / "opt.keras"))
    loaded.optimizer = make(loaded.parameters())
    loaded.optimizer.load_state_dict(loaded.pending_optimizer_state)
    step(model)
    step(loaded)
    assert _bits_equal(model.state_dict(), loaded.state_dict())


@pytest.mark.parametrize(
    ("function", "name", "advice"),
    [
        ("save_model", "m.h5", 'save_model(model, "m.safetensors")'),
        ("save_weights", "w.weights.h5", 'save_weights(model, "w.weights.safetensors")'),
        ("save_model", "m.HDF5", 'save_model(model, "m.safetensors")'),
    ],
)
def test_hdf5_names_are_refused_when_saving(tmp_path: Path, function: str, name: str, advice: str):
    """pydlr never writes HDF5: safetensors under an .h5 name would mislead; the error gives the line to write."""
    model = models.Sequential([layers.Input((3,)), layers.Dense(2)])
    with pytest.raises(InputError, match="never HDF5") as info:
        getattr(io, function)(model, tmp_path / name)
    assert advice in str(info.value) and info.value.argument == "path"
    assert list(tmp_path.iterdir()) == []  # refused before anything is written


def test_hdf5_names_are_refused_when_loading(tmp_path: Path):
    model = models.Sequential([layers.Input((3,)), layers.Dense(2)])
    target = tmp_path / "w.weights.h5"
    io.save_weights(model, tmp_path / "w.weights.safetensors")
    os.replace(tmp_path / "w.weights.safetensors", target)  # a pydlr file under an HDF5 name
    with pytest.raises(InputError, match=r"rename the file to 'w\.weights\.safetensors'"):
        io.load_weights(model, target)
    with pytest.raises(InputError, match=r'load_model\("m\.safetensors"\)'):
        io.load_model(tmp_path / "m.h5")
