"""Image datasets streamed from disk (pydlr.data.image_dataset) and keras.datasets (pydlr.datasets)."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import pydlr as keras
from pydlr.data import Augment
from pydlr.data.image_dataset import image_dataset_from_dataframe, image_dataset_from_directory
from pydlr.data.image_workers import BadImageError
from pydlr.errors import InputError, NotSupportedError, TrainingError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from make_image_folder import make_image_folder  # noqa: E402

N = 200


@pytest.fixture(scope="module")
def fm_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("fm")
    make_image_folder(root, limit=N)
    return root


@pytest.fixture(scope="module")
def fm_arrays():
    (x, y), _ = keras.datasets.fashion_mnist.load_data()
    return x[:N], y[:N]


def _source_index(paths):
    return np.array([int(os.path.basename(p)[6:12]) for p in paths])


def _grey(folder, **kw):
    kw = {"image_size": (28, 28), "color_mode": "grayscale", "verbose": False, **kw}
    return image_dataset_from_directory(folder, **kw)


def test_pixels_and_labels_round_trip_exactly(fm_folder, fm_arrays):
    ds = _grey(fm_folder, batch_size=N, shuffle=False, workers=0)
    x, y = next(iter(ds))
    src = _source_index(ds.file_paths)
    assert x.shape == (N, 28, 28, 1) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert np.array_equal(x[..., 0].numpy().astype(np.uint8), fm_arrays[0][src])
    assert np.array_equal(y.numpy(), fm_arrays[1][src])
    assert ds.class_names[0] == "0_t_shirt_top" and len(ds.class_names) == 10
    assert ds.counts() == {name: int((fm_arrays[1] == k).sum()) for k, name in enumerate(ds.class_names)}
    assert "0_t_shirt_top" in repr(ds) and f"{N} files" in repr(ds)


def test_len_batches_and_reshuffle_each_pass(fm_folder):
    ds = _grey(fm_folder, batch_size=32, seed=7, workers=1)
    assert len(ds) == 7  # ceil(200 / 32)
    passes = [[(x.clone(), y.clone()) for x, y in ds] for _ in range(2)]
    assert [len(b[1]) for b in passes[0]] == [32] * 6 + [8]
    y1, y2 = (torch.cat([b[1] for b in p]) for p in passes)
    assert not torch.equal(y1, y2) and torch.equal(y1.sort().values, y2.sort().values)
    again = [y for _, y in _grey(fm_folder, batch_size=32, seed=7, workers=0)]
    assert torch.equal(torch.cat(again), y1)  # same seed, same order, with or without workers


def test_tf_data_shuffle_reshuffles_and_other_tf_data_methods_say_what_to_do(fm_folder):
    # train_ds.shuffle(1000) is common in Keras scripts (the dataset's flag is shuffle_each_pass)
    ds = _grey(fm_folder, batch_size=50, shuffle=False, workers=0)
    fixed = torch.cat([y for _, y in ds])
    shuffled = ds.shuffle(1000, seed=3)
    y1, y2 = (torch.cat([y for _, y in shuffled]) for _ in range(2))
    assert not torch.equal(y1, fixed) and not torch.equal(y1, y2)
    assert torch.equal(y1.sort().values, fixed.sort().values)
    assert torch.equal(torch.cat([y for _, y in ds]), fixed)  # the original keeps its order
    with pytest.raises(InputError, match="buffer_size"):
        ds.shuffle(0)
    with pytest.raises(NotSupportedError, match="shuffle=False"):
        ds.shuffle(100, reshuffle_each_iteration=False)
    with pytest.raises(NotSupportedError, match=r"dataset\.batch\(\).*batch_size"):
        ds.batch(16)
    with pytest.raises(NotSupportedError, match="steps_per_epoch"):
        ds.repeat()
    with pytest.raises(AttributeError, match="no_such_method"):
        ds.no_such_method()
    # the scratch tutorial's .map(fn, num_parallel_calls=tf_data.AUTOTUNE) (AUTOTUNE is -1)
    halved = ds.map(lambda x, y: (x / 2, y), num_parallel_calls=-1, deterministic=False)
    assert torch.equal(next(iter(halved))[0], next(iter(ds))[0] / 2)


def test_validation_split_is_disjoint_and_keras_sized(fm_folder):
    tr, va = _grey(fm_folder, validation_split=0.2, subset="both", seed=3)
    assert (tr.num_files, va.num_files) == (160, 40)
    assert not set(tr.file_paths) & set(va.file_paths)
    assert len(set(tr.file_paths) | set(va.file_paths)) == N
    assert _grey(fm_folder, validation_split=0.2, subset="validation", seed=3).file_paths == va.file_paths
    with pytest.raises(InputError, match="seed"):
        _grey(fm_folder, validation_split=0.2, subset="training")
    with pytest.raises(InputError, match="subset"):
        _grey(fm_folder, validation_split=0.2, seed=1)


def test_label_modes(fm_folder, tmp_path):
    x, y = next(iter(_grey(fm_folder, label_mode="categorical", batch_size=16)))
    assert y.shape == (16, 10) and y.dtype == torch.float32 and torch.equal(y.sum(1), torch.ones(16))
    images = next(iter(_grey(fm_folder, label_mode=None, batch_size=16)))
    assert isinstance(images, torch.Tensor) and images.shape == (16, 28, 28, 1)
    with pytest.raises(InputError, match="binary"):
        _grey(fm_folder, label_mode="binary")
    for k, name in enumerate(("cats", "dogs")):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(np.full((5, 5), 100 * k, np.uint8)).save(tmp_path / name / f"{i}.png")
    _, yb = next(iter(_grey(tmp_path, label_mode="binary", shuffle=False, batch_size=6)))
    assert yb.shape == (6, 1) and yb[:, 0].tolist() == [0, 0, 0, 1, 1, 1]


def test_mixed_sizes_and_channels_are_converted(tmp_path):
    (tmp_path / "a").mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 30), np.uint8), "L").save(tmp_path / "a" / "grey.png")
    Image.fromarray(rng.integers(0, 255, (10, 50, 3), np.uint8), "RGB").save(tmp_path / "a" / "rgb.jpg")
    Image.fromarray(rng.integers(0, 255, (12, 12, 4), np.uint8), "RGBA").save(tmp_path / "a" / "rgba.png")
    Image.fromarray(rng.integers(0, 255, (7, 9), np.uint8), "L").convert("P").save(tmp_path / "a" / "p.gif")
    for mode, c in (("rgb", 3), ("grayscale", 1), ("rgba", 4)):
        x, _ = next(iter(image_dataset_from_directory(tmp_path, image_size=(16, 20), color_mode=mode,
                                                      verbose=False, workers=0)))
        assert x.shape == (4, 16, 20, c)


def _png_zoo(folder):
    """PNGs of every kind, mixed sizes: the first four decoded natively, the last three by Pillow."""
    (folder / "a").mkdir()
    rng = np.random.default_rng(1)
    px = lambda *shape: rng.integers(0, 256, shape, np.uint8)  # noqa: E731
    Image.fromarray(px(9, 13), "L").save(folder / "a" / "1_grey.png")
    Image.fromarray(px(11, 6, 2), "LA").save(folder / "a" / "2_grey_alpha.png")
    Image.fromarray(px(20, 30, 3), "RGB").save(folder / "a" / "3_rgb.png")
    Image.fromarray(px(7, 7, 4), "RGBA").save(folder / "a" / "4_rgba.png")
    Image.fromarray(px(10, 12, 3), "RGB").convert("P").save(folder / "a" / "5_palette.png")
    Image.fromarray(px(8, 8, 3), "RGB").convert("P").save(folder / "a" / "6_palette_tr.png", transparency=3)
    Image.fromarray(rng.integers(0, 65535, (6, 9)).astype(np.uint16)).save(folder / "a" / "7_grey16.png")
    return sorted(str(p) for p in (folder / "a").iterdir())


@pytest.mark.parametrize("color_mode", ["grayscale", "rgb", "rgba"])
def test_native_png_decoder_gives_pillows_pixels(tmp_path, monkeypatch, color_mode):
    from pydlr import ops
    from pydlr.data import decode
    from pydlr.data.decode import check_image_spec, decode_image, decode_pngs

    if not ops.png_decoder_available():
        pytest.skip("built without libpng")
    paths = _png_zoo(tmp_path)
    spec = check_image_spec((16, 20), color_mode, "bilinear", False, "test")
    native = decode_pngs(paths, spec)
    assert [a is None for a in native] == [False] * 4 + [True] * 3
    for p, arr in zip(paths[:4], native[:4], strict=True):
        assert np.array_equal(arr, decode_image(p, spec, resize=False))
    aug = Augment(flip="horizontal", rotation=0.05)
    batches = {}
    for use in (True, False):  # the same batches with the native decoder and with Pillow for every file
        monkeypatch.setattr(decode, "_native_png", lambda use=use: use)
        for name, a in (("plain", None), ("augmented", aug)):
            ds = image_dataset_from_directory(tmp_path, image_size=(16, 20), color_mode=color_mode,
                                              shuffle=False, seed=1, verbose=False, workers=0)
            x, _ = next(iter(ds if a is None else ds.map(a)))
            batches[use, name] = x
    assert batches[True, "plain"].shape == (7, 16, 20, spec.channels)
    assert torch.equal(batches[True, "plain"], batches[False, "plain"])
    assert torch.equal(batches[True, "augmented"], batches[False, "augmented"])
    expected = np.stack([decode_image(p, spec) for p in paths])
    assert np.array_equal(batches[True, "plain"].numpy().astype(np.uint8), expected)


def test_crop_to_aspect_ratio_keeps_the_centre(tmp_path):
    (tmp_path / "a").mkdir()
    img = np.zeros((10, 30), np.uint8)
    img[:, 10:20] = 255  # a white centre square between black sides
    Image.fromarray(img).save(tmp_path / "a" / "wide.png")
    kw = {"image_size": (5, 5), "color_mode": "grayscale", "verbose": False, "workers": 0,
          "interpolation": "nearest"}
    cropped, _ = next(iter(image_dataset_from_directory(tmp_path, crop_to_aspect_ratio=True, **kw)))
    squashed, _ = next(iter(image_dataset_from_directory(tmp_path, **kw)))
    assert float(cropped.min()) == 255.0
    assert float(squashed.min()) == 0.0


def test_augmentation_map_and_determinism_across_workers(fm_folder):
    aug = Augment(flip="horizontal", rotation=0.05, zoom=0.1)
    plain = _grey(fm_folder, batch_size=50, shuffle=False, workers=0, seed=5)
    x0, _ = next(iter(plain))
    a0 = [x for x, _ in plain.map(aug)]
    a2 = [x for x, _ in _grey(fm_folder, batch_size=50, shuffle=False, workers=2, seed=5).map(aug)]
    assert all(torch.equal(p, q) for p, q in zip(a0, a2, strict=True))
    assert not torch.equal(a0[0], x0) and 0 <= float(a0[0].min()) and float(a0[0].max()) <= 255
    scaled = _grey(fm_folder, batch_size=50, shuffle=False, workers=1).map(lambda x, y: (x / 255.0, y))
    xs, _ = next(iter(scaled))
    assert torch.allclose(xs, x0 / 255.0)
    images_only = _grey(fm_folder, batch_size=50, shuffle=False, workers=0).map(lambda x, y: x / 255.0)
    with pytest.raises(TrainingError, match=r"must return \(images, labels\).*map\(lambda x, y: \(f\(x\), y\)\)"):
        next(iter(images_only))


def test_cached_batches_equal_decoded_ones_and_augmentation_stays_random_per_epoch(tmp_path):
    """A cached pass reads whole batches from the cache (one gather): the same images and the same augmented
    batches as decoding the files, and a new draw every epoch (also with a cache that is only partly
    filled, where the batch falls back to file-by-file reading)."""
    from pydlr.data.image_dataset import DatasetBatches

    make_image_folder(tmp_path / "d", limit=40)
    aug = Augment(flip="horizontal", rotation=0.05, zoom=0.1)
    base = _grey(tmp_path / "d", batch_size=8, shuffle=True, seed=3, workers=0)
    epochs = {}
    for name, ds in (("decoded", base.map(aug)), ("cached", base.cache().map(aug))):
        src = DatasetBatches(ds)
        epochs[name] = [torch.cat([x.clone() for x, _, _ in src.epoch(e)]) for e in range(3)]
        src.close()
    for e in range(3):
        assert torch.equal(epochs["decoded"][e], epochs["cached"][e])
    assert not torch.equal(epochs["cached"][1], epochs["cached"][2])  # a new augmentation every epoch
    # a partly filled cache: a batch with cached and uncached images
    ds = base.cache()
    src = DatasetBatches(ds)
    job = src.job
    job.cached[np.arange(0, 40, 2)] = 0
    again = torch.cat([x.clone() for x, _, _ in src.epoch(0)])
    plain = torch.cat([x.clone() for x, _, _ in DatasetBatches(base).epoch(0)])
    src.close()
    assert torch.equal(again, plain) and bool(job.cached.all())


def test_batches_prepared_in_this_process_use_one_torch_thread(fm_folder):
    """workers=0 prepares batches as a worker does, on one torch thread, and gives the threads back."""
    seen = []

    def record(x, y):
        seen.append(torch.get_num_threads())
        return x, y

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        batches = list(_grey(fm_folder, batch_size=50, workers=0).map(record))
        assert len(batches) == N // 50 and seen == [1] * (N // 50)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_augmentation_of_datasets_is_distributed_as_for_arrays(tmp_path):
    """The dataset path applies Augment as the array path does: the same warp for the same draws, so a
    dataset's augmented batch equals Augment applied to the same images as an array."""
    make_image_folder(tmp_path / "d", limit=32)
    aug = Augment(flip="horizontal", rotation=0.1, zoom=0.2)
    ds = _grey(tmp_path / "d", batch_size=32, shuffle=False, workers=0)
    x, _ = next(iter(ds))
    from pydlr.data.image_dataset import DatasetBatches

    src = DatasetBatches(ds.cache().map(aug))
    for epoch in range(2):
        (idx, seed), = src._plan(epoch)
        got = next(iter(src.epoch(epoch)))[0]
        want = src.job.augment(x[torch.from_numpy(idx)], torch.Generator().manual_seed(seed))
        assert torch.equal(got, want)
    src.close()


def test_cache_serves_images_after_the_files_are_gone(tmp_path):
    make_image_folder(tmp_path / "d", limit=40)
    for cache in (True, str(tmp_path / "cache.bin")):
        ds = _grey(tmp_path / "d", batch_size=8, shuffle=False, workers=1)
        ds = ds.cache() if cache is True else ds.cache(cache)
        from pydlr.data.image_dataset import DatasetBatches

        src = DatasetBatches(ds)
        first = torch.cat([x.clone() for x, _, _ in src.epoch(0)])
        if cache is True:
            hidden = tmp_path / "hidden"
            (tmp_path / "d").rename(hidden)
        second = torch.cat([x.clone() for x, _, _ in src.epoch(1)])
        src.close()
        assert torch.equal(first, second)
        if cache is True:
            hidden.rename(tmp_path / "d")


CACHE_READER = """
import sys, numpy as np
from pydlr.data.image_dataset import DatasetBatches
from pydlr.utils import image_dataset_from_directory
folder, cache, out, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ds = image_dataset_from_directory(folder, image_size=(28, 28), color_mode="grayscale", batch_size=8,
                                  seed=seed, workers=1, verbose=False, cache=cache)
src = DatasetBatches(ds, shuffle=False)  # file_paths order (shuffled once with seed)
x, y = zip(*[(xb.numpy().copy(), yb.numpy().copy()) for xb, yb, _ in src.epoch(0)])
src.close()
np.savez(out, x=np.concatenate(x), y=np.concatenate(y), paths=np.array(ds.file_paths))
"""


def _read_in_new_process(tmp_path, folder, cache, seed, name):
    import subprocess

    script = tmp_path / "reader.py"
    script.write_text(CACHE_READER)
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, str(script), str(folder), str(cache), str(tmp_path / name),
                           str(seed)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(tmp_path / name, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def test_cache_file_is_written_once_and_read_by_later_processes(tmp_path):
    """tf.data's cache file: the first process decodes and writes it; a later process (another shuffle
    seed too) reads the images from it without the image files; a changed file list rebuilds it."""
    folder, cache = tmp_path / "d", tmp_path / "images.cache"
    make_image_folder(folder, limit=40)
    first = _read_in_new_process(tmp_path, folder, cache, 1, "a.npz")
    raw = cache.read_bytes()
    assert raw.startswith(b"PYDLR-IMGCACHE")  # the header, then raw flags and pixels
    flags = np.frombuffer(raw[4096:4096 + 40], np.uint8)
    assert flags.sum() == 40  # every image written during the first pass
    # The second process cannot decode (the files are emptied, names, sizes and times kept): the cache serves
    stats = {p: os.stat(p) for p in folder.rglob("*.png")}
    for p, st in stats.items():
        p.write_bytes(b"\0" * st.st_size)
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    second = _read_in_new_process(tmp_path, folder, cache, 2, "b.npz")
    by_path = {p: (x, y) for p, x, y in zip(first["paths"], first["x"], first["y"], strict=True)}
    assert list(first["paths"]) != list(second["paths"])  # another order: another seed
    for p, x, y in zip(second["paths"], second["x"], second["y"], strict=True):
        assert np.array_equal(x, by_path[p][0]) and y == by_path[p][1] and x.max() > 0
    # One file more: the fingerprint differs, the old cache is not read (the emptied files fail to decode)
    (folder / "0_t_shirt_top" / "extra.png").write_bytes((folder / "1_trouser").iterdir().__next__().read_bytes())
    with pytest.raises(BadImageError):
        list(_grey(folder, batch_size=8, workers=0, cache=str(cache)))
    with pytest.raises(InputError, match="cache"):
        _grey(folder, cache=str(tmp_path / "no" / "such" / "folder" / "c.bin"))
    make_image_folder(tmp_path / "e", limit=40)
    ds = _grey(tmp_path / "e", batch_size=8, workers=0, cache=str(tmp_path / "e.cache"))
    gone = Path(ds.file_paths[5])
    gone.unlink()  # a file gone since the listing: named when read, as without a cache
    with pytest.raises(BadImageError, match=gone.name):
        list(ds)


def test_augmentation_resizes_in_its_own_resampling(tmp_path):
    """With a geometric augmentation, 28x28 files go to 32x32 in the augmentation's one bilinear sampling:
    the same draws as Pillow's resize followed by the augmentation (which a cache forces), images within
    interpolation differences of them; a batch of mixed sizes takes the two-step path exactly."""
    make_image_folder(tmp_path / "d", limit=32)
    aug = Augment(flip="horizontal", rotation=0.05, zoom=0.1)
    kw = {"image_size": (32, 32), "batch_size": 16, "shuffle": False, "workers": 0, "seed": 3}

    def both(augment):
        fused = torch.cat([x for x, _ in _grey(tmp_path / "d", **kw).map(augment)])
        two_step = torch.cat([x for x, _ in _grey(tmp_path / "d", **kw).cache().map(augment)])
        assert fused.shape == two_step.shape == (32, 32, 32, 1)
        corr = np.corrcoef(fused.flatten().numpy(), two_step.flatten().numpy())[0, 1]
        return float((fused - two_step).abs().mean()), corr

    flip_diff, _ = both(Augment(flip="horizontal"))
    assert 0 < flip_diff < 0.5  # the same flips (a different one costs ~20 an image); resize vs sampling
    diff, corr = both(aug)
    assert 0 < diff < 6 and corr > 0.99  # one interpolation of the rotation instead of two
    # a batch of mixed sizes: each image resampled from its own size onto 32 x 32 by its own warp
    from pydlr.data.decode import decode_image
    from pydlr.data.image_dataset import DatasetBatches

    odd = tmp_path / "d" / "0_t_shirt_top" / "zz_wide.png"
    Image.fromarray(np.full((28, 40), 200, np.uint8)).save(odd)
    kw["batch_size"] = 40
    ds = _grey(tmp_path / "d", **kw).map(aug)
    mixed = next(iter(ds))[0]
    idx, seed = DatasetBatches(ds)._plan(0)[0]
    gen = torch.Generator().manual_seed(seed)
    job_aug = DatasetBatches(ds).job.augment
    theta = job_aug.theta_from(job_aug.draw(40, gen)[0], 32, 32)
    for k, i in enumerate(idx):
        own = torch.tensor(decode_image(ds.file_paths[i], ds.spec, resize=False), dtype=torch.float32)
        want = job_aug.apply(own[None], theta[k:k + 1], None, (32, 32))[0]
        torch.testing.assert_close(mixed[k], want, atol=2e-4, rtol=0)
    assert float(mixed[[k for k, i in enumerate(idx) if ds.file_paths[i] == str(odd)][0]].mean()) > 150


@pytest.mark.parametrize("color_mode", ["grayscale", "rgb"])
def test_fused_decode_and_warp_gives_the_batches_of_decoding_then_augmenting(tmp_path, monkeypatch, color_mode):
    """Batches decoded and warped in one native pass equal those of the separate steps (decoded batch, then
    Augment with grid_sample, photometric part, labels and maps), for the same draws: with and without a
    resize in the warp, every fill and interpolation the pass takes, a bad file (the pass gives the batch
    back: the file is still named), and on one torch thread as on two."""
    from pydlr.data import image_workers

    make_image_folder(tmp_path / "d", limit=48)
    augs = [Augment(flip="horizontal", rotation=0.05, zoom=0.1, brightness=0.2, contrast=0.3),
            Augment(rotation=0.2, shift=0.1, fill_mode="constant", fill_value=20.0, interpolation="nearest"),
            Augment(zoom=(-0.4, 0.5), fill_mode="nearest")]
    calls = []
    real = image_workers._decoded_and_warped

    def counted(*args):
        kept = real(*args)
        calls.append(kept)
        return kept

    monkeypatch.setattr(image_workers, "_decoded_and_warped", counted)
    for aug in augs:
        for size in ((28, 28), (32, 30)):
            def batches(threads=2, aug=aug, size=size):
                before = torch.get_num_threads()
                torch.set_num_threads(threads)
                try:
                    ds = image_dataset_from_directory(tmp_path / "d", image_size=size, color_mode=color_mode,
                                                      batch_size=16, seed=4, workers=0, verbose=False)
                    return [(x.clone(), y.clone()) for x, y in ds.map(aug).map(lambda x, y: (x / 255.0, y))]
                finally:
                    torch.set_num_threads(before)

            calls.clear()
            fused, one = batches(), batches(threads=1)
            # every batch took the fused pass, except a nearest warp onto another size (the resize is
            # Pillow's then, before the warp)
            takes = size == (28, 28) or aug.interpolation == "bilinear"
            assert calls and all(k == (16 if takes else None) for k in calls)
            monkeypatch.setattr(image_workers, "_decoded_and_warped", lambda *a: None)
            steps = batches()
            monkeypatch.setattr(image_workers, "_decoded_and_warped", counted)
            for (xf, yf), (x1, _), (xs, ys) in zip(fused, one, steps, strict=True):
                assert torch.equal(yf, ys) and torch.equal(xf, x1)
                torch.testing.assert_close(xf, xs, atol=2e-6, rtol=0)
    bad = _folder_with_corrupt_file(tmp_path / "bad")
    ds = image_dataset_from_directory(tmp_path / "bad", image_size=(28, 28), batch_size=8, workers=0,
                                      verbose=False).map(augs[0])
    with pytest.raises(BadImageError, match="zz_broken.png") as info:
        for _ in ds:
            pass
    assert info.value.path == str(bad)


def test_take_and_prefetch(fm_folder):
    ds = _grey(fm_folder, batch_size=10).take(3).prefetch(1)
    assert len(ds) == 3 and len([b for b in ds]) == 3
    with pytest.raises(InputError, match="buffer_size"):
        ds.prefetch(0)


def test_dataframe_of_files(fm_folder, fm_arrays):
    import pandas as pd

    ds_dir = _grey(fm_folder, shuffle=False)
    rel = [os.path.relpath(p, fm_folder) for p in ds_dir.file_paths]
    names = ["odd" if int(Path(p).parts[0][0]) % 2 else "even" for p in rel]
    df = pd.DataFrame({"file": rel, "kind": names})
    ds = image_dataset_from_dataframe(df, directory=fm_folder, x_col="file", y_col="kind",
                                      image_size=(28, 28), color_mode="grayscale", shuffle=False,
                                      batch_size=N, verbose=False, class_names=["odd", "even"])
    x, y = next(iter(ds))
    assert ds.class_names == ["odd", "even"]
    assert np.array_equal(y.numpy(), (fm_arrays[1][_source_index(ds.file_paths)] % 2 == 0).astype(int))
    with pytest.raises(InputError, match="missing file"):
        image_dataset_from_dataframe(pd.DataFrame({"filename": ["nope.png"], "class": ["a"]}), verbose=False)
    with pytest.raises(InputError, match="y_col"):
        image_dataset_from_dataframe(df, directory=fm_folder, x_col="file", verbose=False)


def test_relative_paths_are_read_after_the_working_directory_changes(fm_folder, tmp_path, monkeypatch):
    import pandas as pd

    monkeypatch.chdir(fm_folder.parent)
    ds = _grey(fm_folder.name, shuffle=False, batch_size=N)
    rel = [os.path.relpath(p, fm_folder.parent) for p in ds.file_paths]
    table = image_dataset_from_dataframe(pd.DataFrame({"filename": rel, "class": ds.labels}), image_size=(28, 28),
                                         color_mode="grayscale", shuffle=False, batch_size=N, verbose=False)
    monkeypatch.chdir(tmp_path)  # as R's setwd() between making the dataset and fitting on it
    for d in (ds, table):
        assert all(os.path.isabs(p) for p in d.file_paths)
        x, y = next(iter(d))
        assert x.shape == (N, 28, 28, 1) and np.array_equal(y.numpy(), ds.labels)


def test_dataframe_classes_follow_the_labels_own_order(fm_folder):
    # numbers in numeric order (sorting their text put 10 before 2), a Categorical in its categories' order
    import pandas as pd

    files = [str(p) for p in _grey(fm_folder, shuffle=False).file_paths[:6]]
    number = [2, 10, 2, 10, 9, 9]
    kw = {"image_size": (8, 8), "shuffle": False, "verbose": False, "batch_size": 6}
    ds = image_dataset_from_dataframe(pd.DataFrame({"filename": files, "class": number}), **kw)
    assert ds.class_names == ["2", "9", "10"] and ds.labels.tolist() == [0, 2, 0, 2, 1, 1]
    kind = pd.Categorical(["b", "a", "c", "a", "b", "c"], categories=["c", "a", "b", "unused"])
    ds = image_dataset_from_dataframe(pd.DataFrame({"filename": files, "class": kind}), **kw)
    assert ds.class_names == ["c", "a", "b"] and ds.labels.tolist() == [2, 1, 0, 1, 2, 0]
    ds = image_dataset_from_dataframe({"filename": files, "class": ["b", "a", "c", "a", "b", "c"]}, **kw)
    assert ds.class_names == ["a", "b", "c"]


# ----- bad input ----------------------------------------------------------------------------------
def test_bad_folders_are_reported_before_any_work(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        image_dataset_from_directory(tmp_path / "nope", verbose=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="it is empty"):
        image_dataset_from_directory(tmp_path / "empty", verbose=False)
    (tmp_path / "c" / "a").mkdir(parents=True)
    (tmp_path / "c" / "b").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "c" / "a" / "x.png")
    (tmp_path / "c" / "b" / "notes.txt").write_text("not an image")
    with pytest.raises(InputError, match=r"no images in .*b.*notes\.txt"):
        image_dataset_from_directory(tmp_path / "c", verbose=False)
    with pytest.raises(InputError, match="class_names"):
        image_dataset_from_directory(tmp_path / "c", class_names=["a", "z"], verbose=False)


def test_non_image_files_are_ignored_and_counted(tmp_path):
    (tmp_path / "a").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a" / "x.png")
    (tmp_path / "a" / "readme.txt").write_text("hello")
    ds = image_dataset_from_directory(tmp_path, verbose=False, image_size=(4, 4))
    assert ds.num_files == 1 and "1 non-image file(s) ignored" in repr(ds)
    assert ": 1 file, batch_size 32 (1 batch)," in repr(ds)  # singular where it is one


@pytest.mark.parametrize("argument, value", [
    ("label_mode", "sparse"), ("image_size", (0, 5)), ("color_mode", "cmyk"), ("interpolation", "cubic"),
    ("batch_size", 0), ("subset", "test"), ("on_bad_file", "ignore"), ("workers", -1)])
def test_bad_arguments_name_the_argument(fm_folder, argument, value):
    with pytest.raises(InputError, match=argument):
        image_dataset_from_directory(fm_folder, verbose=False, **{argument: value})


def _folder_with_corrupt_file(root, corrupt_name="zz_broken.png", truncated=False):
    make_image_folder(root, limit=60)
    target = root / "3_dress" / corrupt_name
    if truncated:
        data = (root / "3_dress").glob("train_*.png").__next__().read_bytes()
        target.write_bytes(data[: len(data) // 2])
    else:
        target.write_bytes(b"this is not a png")
    return target


@pytest.mark.parametrize("workers", [0, 2])
def test_corrupt_file_stops_with_its_name(tmp_path, workers):
    bad = _folder_with_corrupt_file(tmp_path, truncated=workers == 2)
    ds = _grey(tmp_path, batch_size=8, shuffle=False, workers=workers)
    with pytest.raises(BadImageError, match="zz_broken.png") as info:
        for _ in ds:
            pass
    assert info.value.path == str(bad)
    # the message from a worker is the same as from the training process: the reason and the advice once
    assert str(info.value).count("on_bad_file") == 1
    assert len([b for b in ds.take(2)]) == 2  # the dataset is usable again: workers did not hang


def test_on_bad_file_skip_warns_and_counts(tmp_path):
    _folder_with_corrupt_file(tmp_path)
    ds = _grey(tmp_path, batch_size=61, shuffle=False, workers=1, on_bad_file="skip")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sizes = [len(y) for _, y in ds]
    assert sizes == [60] and len(ds.bad_files) == 1 and "zz_broken.png" in ds.bad_files[0][0]
    assert any("zz_broken.png" in str(w.message) for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert [len(y) for _, y in ds] == [60]  # a second pass skips the file again: still one file
    assert len(ds.bad_files) == 2 and "(1 unreadable file(s) skipped)" in repr(ds)


@pytest.mark.parametrize("workers", [0, 1])
def test_predict_keeps_a_row_per_file_when_one_is_skipped(tmp_path, workers):
    # the corrupt file sits among 3_dress's images: every row after it would belong to the next file
    _folder_with_corrupt_file(tmp_path, corrupt_name="train_000000_bad.png")
    ds = _grey(tmp_path, batch_size=7, shuffle=False, workers=workers, on_bad_file="skip")
    model = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = model.predict(ds)
        classes = model.predict_classes(ds)
    bad = ds.file_paths.index(ds.bad_files[0][0])
    assert 0 < bad < ds.num_files - 1 and out.shape == (ds.num_files, 10)
    assert np.isnan(out[bad]).all() and not np.isnan(np.delete(out, bad, axis=0)).any()
    assert classes[bad] == -1 and (np.delete(classes, bad) >= 0).all()
    os.remove(ds.bad_files[0][0])  # the same files without the corrupt one: the same outputs, row for row
    good = _grey(tmp_path, batch_size=7, shuffle=False, workers=workers)
    np.testing.assert_allclose(np.delete(out, bad, axis=0), model.predict(good), rtol=1e-4, atol=1e-4)


# ----- keras.datasets -----------------------------------------------------------------------------
def test_keras_datasets_shapes_and_dtypes():
    (x, y), (xt, yt) = keras.datasets.fashion_mnist.load_data()
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    assert x.dtype == np.uint8 and y.dtype == np.uint8 and set(np.unique(y)) == set(range(10))
    (x, y), (xt, yt) = keras.datasets.mnist.load_data()
    assert x.shape == (4000, 28, 28) and xt.shape == (1000, 28, 28) and y.dtype == np.uint8
    with pytest.raises(NotSupportedError, match="never downloads"):
        keras.datasets.cifar10  # noqa: B018
    assert keras.utils.image_dataset_from_directory is image_dataset_from_directory


# ----- fit / evaluate / predict on datasets -------------------------------------------------------
def _model():
    from pydlr import engine
    from pydlr.models import seed_cnn
    from pydlr.train import losses

    torch.manual_seed(0)
    model = seed_cnn(model_class=engine.Sequential)
    model.compile(optimizer="adam", loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def _scaled(ds):
    return ds.map(lambda x, y: (x / 255.0, y))


def test_fit_steps_per_epoch_cycles_and_validation_freq(fm_folder):
    from pydlr.train.events import Callback

    class Count(Callback):
        def __init__(self):
            self.seen: list[int] = []

        def before_epoch(self):
            self.seen.append(0)

        def after_batch(self):
            if self.learn.training:
                self.seen[-1] += int(self.learn.xb.shape[0])

    tr, va = _grey(fm_folder, batch_size=20, validation_split=0.2, subset="both", seed=2)
    model, count = _model(), Count()
    hist = model.fit(_scaled(tr), epochs=3, steps_per_epoch=100, validation_data=_scaled(va),
                     validation_steps=1, validation_freq=2, verbose=0, seed=1, callbacks=[count])
    assert count.seen == [2000, 2000, 2000]  # 100 steps x 20 images, cycling over 160 files
    assert len(hist.history["loss"]) == 3 and len(hist.history["val_loss"]) == 1
    assert hist.history["accuracy"][-1] > 0.6
    ev = model.evaluate(_scaled(va), return_dict=True)
    pred = model.predict(_scaled(va))
    assert pred.shape == (40, 10)
    assert abs(float((pred.argmax(1) == va.labels).mean()) - ev["accuracy"]) < 1e-6


def test_fit_is_reproducible_with_workers_and_augmentation(fm_folder):
    weights = []
    for workers in (0, 2):
        ds = _grey(fm_folder, batch_size=25, seed=4, workers=workers)
        model = _model()
        model.fit(_scaled(ds), epochs=1, verbose=0, seed=3, augment=Augment(flip="horizontal", zoom=0.1))
        weights.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights, strict=True))


def test_fit_refuses_mismatches_before_training(fm_folder, tmp_path):
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(InputError, match="image_size"):
        model.fit(_grey(fm_folder, image_size=(32, 32)), verbose=0)
    with pytest.raises(InputError, match="label_mode"):
        model.fit(_grey(fm_folder, label_mode="categorical"), verbose=0)
    (tmp_path / "other").mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "other" / "x.png")
    with pytest.raises(InputError, match="only in validation: \\['other'\\]"):
        model.fit(_grey(fm_folder), validation_data=_grey(tmp_path), verbose=0)
    with pytest.raises(InputError, match="`y`"):
        model.fit(_grey(fm_folder), np.zeros(N), verbose=0)
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))


def test_evaluate_refuses_a_dataset_whose_classes_differ_from_training(fm_folder, tmp_path):
    # a test folder lacking a class numbers the rest from 0 again: its labels would be shifted silently
    for name in ("0_t_shirt_top", "1_trouser"):
        (tmp_path / name).symlink_to(fm_folder / name)
    model = _model()
    model.fit(_scaled(_grey(fm_folder)), epochs=1, verbose=0)
    assert model.trained_class_names == _grey(fm_folder).class_names
    with pytest.raises(InputError, match="only in training: .*'2_pullover'"):
        model.evaluate(_scaled(_grey(tmp_path, follow_links=True)))
    assert model.predict(_scaled(_grey(tmp_path, follow_links=True))).shape[1] == 10  # no labels used
    model.fit(_scaled(_grey(tmp_path, follow_links=True)), epochs=1, verbose=0)  # a new task: new classes
    assert set(model.evaluate(_scaled(_grey(tmp_path, follow_links=True)), return_dict=True)) == {
        "loss", "accuracy"}


def test_training_classes_survive_save_and_load(fm_folder, tmp_path):
    from pydlr import io

    two = tmp_path / "two_classes"
    two.mkdir()
    for name in ("0_t_shirt_top", "1_trouser"):
        (two / name).symlink_to(fm_folder / name)
    model = _model()
    model.fit(_scaled(_grey(fm_folder)), epochs=1, verbose=0)
    for path in (tmp_path / "m.safetensors", tmp_path / "m_dir"):
        io.save_model(model, path)
        loaded = io.load_model(path)
        assert loaded.trained_class_names == _grey(fm_folder).class_names
        with pytest.raises(InputError, match="only in training: .*'2_pullover'"):
            loaded.evaluate(_scaled(_grey(two, follow_links=True)))
    model.trained_class_names = None  # a model fitted on arrays, as files saved before classes were kept
    io.save_model(model, tmp_path / "plain.safetensors")
    assert io.load_model(tmp_path / "plain.safetensors").trained_class_names is None


def test_a_checkpoint_written_during_fit_keeps_the_training_classes(fm_folder, tmp_path):
    from pydlr import io
    from pydlr.train.callbacks import ModelCheckpoint

    model = _model()
    model.fit(_scaled(_grey(fm_folder)), epochs=1, verbose=0,
              callbacks=[ModelCheckpoint(tmp_path / "ckpt.safetensors", monitor="loss")])
    assert io.load_model(tmp_path / "ckpt.safetensors").trained_class_names == _grey(fm_folder).class_names


def test_bad_file_mid_training_stops_cleanly_with_checkpoint_intact(tmp_path):
    from pydlr.train.checkpoint import load_training_state
    from pydlr.train.events import Callback

    make_image_folder(tmp_path / "d", limit=60)
    victim = sorted((tmp_path / "d" / "0_t_shirt_top").glob("*.png"))[0]

    class Corrupt(Callback):
        def after_epoch(self):
            if self.learn.epoch == 0:
                victim.write_bytes(b"broken")

    model = _model()
    ds = _grey(tmp_path / "d", batch_size=10, seed=1, workers=2)
    with pytest.raises(BadImageError, match=victim.name):
        model.fit(_scaled(ds), epochs=3, verbose=0, seed=1, resume=tmp_path / "ckpt",
                  callbacks=[Corrupt()])
    meta = load_training_state(tmp_path / "ckpt", _model(), None)
    assert meta["epoch"] == 1  # readable, written after the one complete epoch (resumes at epoch 1)


def test_ddp_ranks_read_disjoint_shards(fm_folder):
    from pydlr.data.image_dataset import DatasetBatches

    ds = _grey(fm_folder, batch_size=16, seed=9, workers=0)
    seen = []
    for rank in (0, 1):
        src = DatasetBatches(ds, seed=9, rank=rank, world_size=2)
        assert src.steps == 7  # ceil(ceil(200 / 2) / 16)
        seen.append([int(i) for idx, _ in src._plan(0) for i in idx])
    assert len(seen[0]) == len(seen[1]) == 100 and not set(seen[0]) & set(seen[1])
    assert set(seen[0]) | set(seen[1]) == set(range(N))
    model = _model()
    with pytest.raises(InputError, match="map"):  # a function cannot go to the processes: said before any starts
        model.fit(_scaled(ds), distributed=True, verbose=0)
    with pytest.raises(InputError, match="shape"):  # nor can images the model does not take
        model.fit(_grey(fm_folder, image_size=(20, 20)), distributed=True, verbose=0)


def test_fit_distributed_true_on_a_folder_trains_each_rank_on_its_shard(tmp_path):
    """fit(dataset, distributed=True): two CPU processes (gloo) rebuild the dataset from its description,
    each reads its half of the files (2 steps of 10 a rank for 30 files, where one process takes 3), the
    validation dataset comes along, and the trained weights come back into this model."""
    from pydlr import engine, layers

    make_image_folder(tmp_path / "d", limit=60)
    train, val = _grey(tmp_path / "d", batch_size=10, seed=1, workers=1, validation_split=0.5, subset="both")
    torch.manual_seed(0)
    model = engine.Sequential([layers.Input((28, 28, 1)), layers.Rescaling(1 / 255), layers.Flatten(),
                               layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    h = model.fit(train, epochs=2, seed=1, verbose=0, validation_data=val, distributed=True,
                  nproc_per_node=2)
    assert h.params["steps"] == 2  # ceil(ceil(30 files / 2 ranks) / 10)
    assert len(h.history["val_loss"]) == 2 and np.all(np.isfinite(h.history["loss"]))
    assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_rgb_folder_into_mobilenet_fine_tuning(tmp_path):
    from pydlr import pretrained
    from pydlr.pretrained import imagenet
    from pydlr.pretrained.transfer import fine_tune

    make_image_folder(tmp_path, limit=200, size=64, rgb=True)
    tr, va = image_dataset_from_directory(tmp_path, image_size=(64, 64), batch_size=20, seed=1,
                                          validation_split=0.2, subset="both", verbose=False)

    def prep(x, y):
        return imagenet.preprocess(x, size=64, resize=64), y  # ImageNet mean/std, in the workers

    base = pretrained.load("mobilenet_v2", include_top=False, input_shape=(64, 64, 3))
    model = fine_tune(base, tr.map(prep), epochs=0, freeze_epochs=3, base_lr=3e-3, num_classes=10,
                      validation_data=va.map(prep), seed=0)
    assert model.evaluate(va.map(prep), return_dict=True)["accuracy"] > 0.3  # chance: 0.1


def test_labels_given_as_a_list_or_none(tmp_path):
    for name in ("b", "a"):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.fromarray(np.full((6, 6), 40 * i, np.uint8)).save(tmp_path / name / f"{i}.png")
    kw = {"image_size": (6, 6), "color_mode": "grayscale", "shuffle": False, "verbose": False, "workers": 0}
    ds = image_dataset_from_directory(tmp_path, labels=[3, 1, 0, 2], **kw)  # files in sorted path order
    _, y = next(iter(ds))
    assert [os.path.relpath(p, tmp_path) for p in ds.file_paths] == ["a/0.png", "a/1.png", "b/0.png", "b/1.png"]
    assert y.tolist() == [3, 1, 0, 2] and ds.class_names == ["0", "1", "2", "3"]
    images = next(iter(image_dataset_from_directory(tmp_path, labels=None, **kw)))
    assert isinstance(images, torch.Tensor) and images.shape == (4, 6, 6, 1)
    with pytest.raises(InputError, match="one label per image file"):
        image_dataset_from_directory(tmp_path, labels=[0, 1], **kw)


def test_one_based_labels_warn_with_the_fix(tmp_path):
    from pydlr.api_r.images import from_directory

    for name in ("b", "a"):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.fromarray(np.full((6, 6), 40 * i, np.uint8)).save(tmp_path / name / f"{i}.png")
    kw = {"image_size": (6, 6), "color_mode": "grayscale", "verbose": False, "workers": 0}
    with pytest.warns(UserWarning, match=r"class 0 gets no image and there are 5 classes; for 1-based "
                                         r"labels pass \[label - 1 for label in labels\]") as caught:
        ds = image_dataset_from_directory(tmp_path, labels=[1, 2, 3, 4], **kw)
    assert ds.class_names == ["0", "1", "2", "3", "4"]  # the labels are still taken as given, as keras does
    assert [w.filename for w in caught] == [__file__]  # points at the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image_dataset_from_directory(tmp_path, labels=[0, 1, 2, 3], **kw)
        image_dataset_from_directory(tmp_path, labels=[1, 1, 2, 2], label_mode=None, **kw)  # no labels
        # R warns in R's syntax before calling Python: one warning, not two
        from_directory(str(tmp_path), labels=[1, 2, 3, 4], label_mode="int", image_size=[6, 6],
                       color_mode="grayscale", verbose=False, workers=0)


def test_large_jpeg_is_decoded_at_reduced_scale_and_resized(tmp_path):
    (tmp_path / "a").mkdir()
    Image.new("RGB", (640, 480), (200, 30, 90)).save(tmp_path / "a" / "big.jpg", quality=95)
    x, _ = next(iter(image_dataset_from_directory(tmp_path, image_size=(24, 32), verbose=False, workers=0)))
    assert x.shape == (1, 24, 32, 3)
    assert torch.allclose(x[0].mean((0, 1)), torch.tensor([200.0, 30.0, 90.0]), atol=4)


def test_image_folder_example_runs(tmp_path):
    import subprocess

    make_image_folder(tmp_path, limit=300)
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "examples" / "image_folder.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=600, cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "100 steps x 20 = 2000 images an epoch" in done.stdout and "Epoch 3/3" in done.stdout


DDP_SCRIPT = '''
import json, os, sys
from safetensors.torch import save_file
from pydlr import engine
from pydlr.models import seed_cnn
from pydlr.train import losses
from pydlr.utils import image_dataset_from_directory, set_random_seed

folder, out, rank = sys.argv[1], sys.argv[2], int(os.environ["RANK"])
set_random_seed(100 + rank)  # different initial weights: DDP must broadcast rank 0's
ds = image_dataset_from_directory(folder, image_size=(28, 28), color_mode="grayscale", batch_size=10,
                                  seed=1, workers=1, verbose=False).map(lambda x, y: (x / 255.0, y))
m = seed_cnn(model_class=engine.Sequential)
m.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"])
h = m.fit(ds, epochs=2, seed=1, verbose=0)
save_file({k: v.contiguous() for k, v in m.state_dict().items()}, f"{out}/rank{rank}.safetensors")
json.dump({"steps": h.params["steps"], "loss": h.history["loss"]}, open(f"{out}/hist{rank}.json", "w"))
'''


def test_torchrun_ranks_train_from_their_shards_of_a_folder(tmp_path):
    import json
    import subprocess

    from safetensors.torch import load_file

    from pydlr.train.distributed import free_port

    make_image_folder(tmp_path / "d", limit=120)
    script = tmp_path / "train.py"
    script.write_text(DDP_SCRIPT)
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "pydlr.train.distributed", "--nproc-per-node", "2", "--master-port",
           str(free_port()), str(script), str(tmp_path / "d"), str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    w0, w1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    h0 = json.loads((tmp_path / "hist0.json").read_text())
    assert h0["steps"] == 6  # 120 files / 2 ranks / batch 10
    assert h0 == json.loads((tmp_path / "hist1.json").read_text())


def test_pad_to_aspect_ratio_keeps_the_whole_image(tmp_path):
    (tmp_path / "a").mkdir()
    Image.fromarray(np.full((10, 30), 255, np.uint8)).save(tmp_path / "a" / "wide.png")
    kw = {"image_size": (5, 5), "color_mode": "grayscale", "verbose": False, "workers": 0}
    x, _ = next(iter(image_dataset_from_directory(tmp_path, pad_to_aspect_ratio=True, **kw)))
    assert x[0, :, :, 0].tolist() == [[0.0] * 5] + [[255.0] * 5] * 2 + [[0.0] * 5] * 2
    with pytest.raises(InputError, match="pad_to_aspect_ratio"):
        image_dataset_from_directory(tmp_path, pad_to_aspect_ratio=True, crop_to_aspect_ratio=True, **kw)
    with pytest.raises(InputError, match="data_format"):
        image_dataset_from_directory(tmp_path, data_format="channels_first", **kw)


def test_memory_is_bounded_by_the_prefetched_batches(fm_folder):
    from pydlr.data.image_dataset import DatasetBatches

    ds = _grey(fm_folder, batch_size=8, workers=2).prefetch(3)
    assert ds._index.paths.dtype.kind == "S"  # one bytes array, no per-file Python objects to copy on write
    src = DatasetBatches(ds)
    n = sum(int(x.shape[0]) for x, _, _ in src.epoch(0))
    slots = len(src._pool.slots)
    src.close()
    assert n == N and slots == 4  # prefetch + 1 batches in shared memory, whatever the number of files


def test_fit_on_a_dataset_refuses_array_only_arguments(fm_folder):
    model = _model()
    for name, value in (("batch_size", 16), ("sample_weight", np.ones(N)), ("class_weight", [2.0])):
        with pytest.raises(InputError, match=name):
            model.fit(_grey(fm_folder), verbose=0, **{name: value})
    with pytest.raises(InputError, match="validation_split"):
        model.fit(_grey(fm_folder), validation_split=0.2, verbose=0)
    with pytest.raises(InputError, match="validation_freq"):
        model.fit(_grey(fm_folder), validation_freq=0, verbose=0)


def test_class_weight_on_a_dataset_weighs_as_on_the_same_arrays(fm_folder):
    # Keras applies class_weight to a dataset's batches, as to arrays
    ds = _grey(fm_folder, batch_size=50, shuffle=False, workers=0)
    x, y = (torch.cat(parts) for parts in zip(*[(xb.clone(), yb.clone()) for xb, yb in ds], strict=True))
    weights = {0: 3.0, 7: 0.0, 9: 0.5}
    losses = []
    for data in ("dataset", "arrays"):
        model = _model()
        kw = {"x": _scaled(ds)} if data == "dataset" else {"x": x / 255.0, "y": y, "batch_size": 50}
        hist = model.fit(**kw, epochs=1, shuffle=False, verbose=0, seed=0, class_weight=weights)
        losses.append(hist.history["loss"][0])
    unweighted = _model().fit(_scaled(ds), epochs=1, shuffle=False, verbose=0, seed=0).history["loss"][0]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5) and losses[0] != pytest.approx(unweighted, rel=1e-3)


def test_load_img_and_img_to_array_give_keras_pixels_for_predict(fm_folder, fm_arrays, tmp_path):
    # the tutorial's last step: load_img -> img_to_array -> expand_dims -> model.predict
    ds = _grey(fm_folder, batch_size=N, shuffle=False, workers=0)
    path, k = ds.file_paths[0], _source_index(ds.file_paths[:1])[0]
    grey = keras.utils.img_to_array(keras.utils.load_img(path, color_mode="grayscale"))
    assert grey.shape == (28, 28, 1) and grey.dtype == np.float32
    assert np.array_equal(grey[..., 0], fm_arrays[0][k])
    rgb = keras.utils.img_to_array(keras.utils.load_img(path, target_size=(14, 7)))
    assert rgb.shape == (14, 7, 3)
    expected = np.asarray(Image.open(path).convert("RGB").resize((7, 14), Image.NEAREST), np.float32)
    assert np.array_equal(rgb, expected)  # Keras' default interpolation is nearest
    batch = np.expand_dims(grey, 0)
    assert np.allclose(_model().predict(batch / 255.0, verbose=0), _model().predict(next(iter(
        _scaled(_grey(fm_folder, batch_size=1, shuffle=False, workers=0))))[0], verbose=0), atol=1e-6)
    (tmp_path / "notes.txt").write_text("not an image")
    for call, argument in ((lambda: keras.utils.load_img(tmp_path / "nope.png"), "path"),
                           (lambda: keras.utils.load_img(tmp_path / "notes.txt"), "path"),
                           (lambda: keras.utils.load_img(path, target_size=28), "target_size"),
                           (lambda: keras.utils.load_img(path, color_mode="grey"), "color_mode"),
                           (lambda: keras.utils.img_to_array(grey), "img")):
        with pytest.raises(InputError, match=f"argument `{argument}`"):
            call()
