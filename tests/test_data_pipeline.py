"""Data: offline data sets, batching rules, augmentation (batched, seeded), prefetching workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pydlr.data import Augment, augment_beforehand, load_fashion_mnist, load_mnist
from pydlr.data.batching import ArrayBatches, epoch_batches
from pydlr.errors import InputError
from pydlr.utils import to_categorical

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread


def test_fashion_mnist_and_mnist_have_keras_shapes():
    (x, y), (xt, yt) = load_fashion_mnist()
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
    assert xt.shape == (10000, 28, 28) and sorted(np.unique(y)) == list(range(10))
    assert np.bincount(yt).tolist() == [1000] * 10
    (a, b), (c, d) = load_mnist()
    assert a.shape == (4000, 28, 28) and c.shape == (1000, 28, 28) and a.max() == 255
    assert len(np.unique(d)) == 10 and not (np.diff(b) >= 0).all()  # shuffled, not sorted by label
    (a2, b2), _ = load_mnist()
    assert (a2 == a).all() and (b2 == b).all()  # fixed seed


def test_to_categorical_matches_keras():
    out = to_categorical([0, 2, 1, 2], 4)
    assert out.dtype == np.float32 and out.tolist() == [[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0],
                                                        [0, 0, 1, 0]]
    assert to_categorical(np.array([[1], [0]])).shape == (2, 2)
    with pytest.raises(InputError, match="num_classes"):
        to_categorical([0, 5], 3)
    with pytest.raises(InputError, match="integer"):
        to_categorical([0.5, 1])


def test_epochs_are_permutations_fixed_by_seed_and_epoch():
    a = torch.cat(epoch_batches(50, 8, None, True, seed=1, epoch=0))
    b = torch.cat(epoch_batches(50, 8, None, True, seed=1, epoch=0))
    c = torch.cat(epoch_batches(50, 8, None, True, seed=1, epoch=1))
    assert torch.equal(a, b) and not torch.equal(a, c) and sorted(c.tolist()) == list(range(50))
    assert torch.cat(epoch_batches(50, 8, None, False, 1, 0)).tolist() == list(range(50))


def test_batches_reuse_one_buffer():
    x = torch.arange(40, dtype=torch.float32).reshape(10, 2, 2, 1)
    data = ArrayBatches(x, torch.arange(10), 4, shuffle=False)
    ptrs, sizes = set(), []
    for xb, yb, wb in data.epoch(0):
        ptrs.add(xb.data_ptr())
        sizes.append(len(xb))
        assert torch.equal(xb, x[yb]) and wb is None
    assert ptrs == {data._xbuf.data_ptr()} and sizes == [4, 4, 2]


def images(n=16, h=6, w=6, c=1, seed=0):
    return torch.from_numpy(np.random.RandomState(seed).rand(n, h, w, c).astype(np.float32))


def test_flip_is_exact_and_seeded():
    x = images()
    aug = Augment(flip="horizontal", value_range=(0, 1))
    out = aug(x, torch.Generator().manual_seed(3))
    flipped = x.flip(2)
    for i in range(len(x)):
        assert torch.allclose(out[i], x[i], atol=1e-6) or torch.allclose(out[i], flipped[i], atol=1e-6)
    assert not torch.allclose(out, x) and not torch.allclose(out, flipped)
    assert torch.equal(out, aug(x, torch.Generator().manual_seed(3)))


def test_geometric_and_photometric_augmentation_change_images_within_range():
    x = images(32, 10, 12, 3)
    aug = Augment(flip="horizontal", rotation=0.1, shift=0.1, zoom=0.2, brightness=0.2,
                  contrast=0.2, value_range=(0, 1))
    out = aug(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.is_contiguous()
    assert out.min() >= 0 and out.max() <= 1
    assert (out - x).abs().mean() > 0.05
    identity = Augment(value_range=(0, 1))(x, torch.Generator())
    assert torch.equal(identity, x)


def test_elementwise_affine_grid_matches_torch_affine_grid():
    """Augment's sampling grid (computed elementwise) is torch's affine_grid (align_corners=False): the
    same source coordinates for every output pixel, non-square images and flips included."""
    import torch.nn.functional as F

    from pydlr.data.augment import affine_grid

    aug = Augment(flip="horizontal_and_vertical", rotation=0.2, shift=0.1, zoom=0.2)
    theta = aug.theta(16, 12, 20, torch.Generator().manual_seed(0))
    want = F.affine_grid(theta, [16, 3, 12, 20], align_corners=False)
    got = affine_grid(theta, 12, 20)
    assert got.shape == want.shape == (16, 12, 20, 2)
    torch.testing.assert_close(got, want, atol=2e-6, rtol=0)


def test_augment_arguments_are_checked():
    with pytest.raises(InputError, match="flip"):
        Augment(flip="diagonal")
    with pytest.raises(InputError, match="zoom"):
        Augment(zoom=1.5)
    with pytest.raises(InputError, match="shift"):
        Augment(shift=(0.1, 2))


def test_worker_processes_give_the_same_batches_as_inline():
    x = images(37, 8, 8, 1)
    y = torch.arange(37)
    aug = Augment(rotation=0.05, shift=0.1, flip="horizontal")
    inline = ArrayBatches(x, y, 5, seed=4, augment=aug, workers=0)
    pooled = ArrayBatches(x, y, 5, seed=4, augment=aug, workers=2)
    try:
        for epoch in range(2):
            a = [(xb.clone(), yb.clone()) for xb, yb, _ in inline.epoch(epoch)]
            b = [(xb.clone(), yb.clone()) for xb, yb, _ in pooled.epoch(epoch)]
            assert len(a) == len(b) == 8
            for (xa, ya), (xb, yb) in zip(a, b, strict=True):
                assert torch.equal(ya, yb) and torch.equal(xa, xb)
        # an epoch abandoned half-way leaves the pool usable
        it = pooled.epoch(2)
        next(it)
        it.close()
        assert len(list(pooled.epoch(3))) == 8
    finally:
        pooled.close()
    assert pooled._pool is None


def test_augment_beforehand_materializes_copies():
    x = np.random.RandomState(0).rand(10, 6, 6, 1).astype(np.float32)
    y = np.arange(10)
    xa, ya = augment_beforehand(x, y, Augment(shift=0.2), copies=2, seed=1)
    assert xa.shape == (30, 6, 6, 1) and (ya == np.tile(y, 3)).all()
    assert (xa[:10] == x).all() and not np.allclose(xa[10:20], x)
    xb, _ = augment_beforehand(x, y, Augment(shift=0.2), copies=2, seed=1)
    assert (xa == xb).all()


def test_a_dead_worker_is_reported_not_waited_for():
    import os
    import signal

    from pydlr.errors import TrainingError

    x = images(64, 8, 8, 1)
    data = ArrayBatches(x, torch.arange(64), 4, seed=0, augment=Augment(shift=0.1), workers=1)
    try:
        it = data.epoch(0)
        next(it)
        os.kill(data._pool.procs[0].pid, signal.SIGKILL)
        with pytest.raises(TrainingError, match="worker"):
            for _ in it:
                pass
    finally:
        data.close()
