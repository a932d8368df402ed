"""Augment's affine matrices and sampling grid, value by value: the matrices from given draws against ones
worked out by hand, and the warp against flips and quarter turns."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pydlr.data.augment import Augment, affine_grid
from pydlr.errors import InputError


def _u(*rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_theta_from_draws_matches_the_matrices_worked_by_hand():
    # rotation factor 0.25 (a quarter turn at u = 1), zoom 0.5, shift 0.1 / 0.2, horizontal flip
    aug = Augment(flip="horizontal", rotation=0.25, zoom=0.5, shift=(0.1, 0.2))
    u = _u([1.0, 1.0, 0.5, -0.5, -0.3, 0.9],   # +90 degrees, scale 1.5, flipped
           [0.0, -1.0, 0.0, 0.0, 0.7, -0.9],   # no turn, scale 0.5, not flipped
           [-0.5, 0.0, 1.0, 1.0, 0.1, 0.1])    # -45 degrees, scale 1
    theta = aug.theta_from(u, 10, 20).numpy()  # h = 10, w = 20: the off-diagonal terms scale by h/w, w/h
    c, s = math.cos(-math.pi / 4), math.sin(-math.pi / 4)
    want = np.array([
        [[0.0 * -1, -1.5 * 0.5, 0.5 * 0.4], [1.5 * 2 * -1, 0.0, -0.5 * 0.2]],
        [[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]],
        [[c, -s * 0.5, 0.4], [s * 2, c, 0.2]],
    ], np.float32)
    np.testing.assert_allclose(theta, want, atol=1e-6)
    assert theta.dtype == np.float32 and theta.shape == (3, 2, 3)


def test_theta_from_ranges_vertical_flip_and_width_zoom():
    aug = Augment(flip="vertical", rotation=(0.0, 0.0), zoom=(-0.3, -0.1), zoom_width=(0.2, 0.2))
    u = _u([0.3, 1.0, 0.0, 0.0, 0.5, -0.2, 0.0], [0.3, -1.0, 0.0, 0.0, -0.5, 0.2, 0.0])
    theta = aug.theta_from(u, 8, 8).numpy()
    # zoom -0.1 and -0.3 on the height, the width always 1.2; a vertical flip where u[5] < 0
    want = np.array([[[1.2, 0, 0], [0, -0.9, 0]], [[1.2, 0, 0], [0, 0.7, 0]]], np.float32)
    np.testing.assert_allclose(theta, want, atol=1e-6)


def test_grid_matches_torch_affine_grid_and_warps_flips_and_quarter_turns():
    aug = Augment(flip="horizontal_and_vertical", rotation=0.2, shift=0.1, zoom=0.2)
    theta = aug.theta(8, 7, 11, torch.Generator().manual_seed(3))
    torch.testing.assert_close(affine_grid(theta, 7, 11), F.affine_grid(theta, [8, 1, 7, 11], align_corners=False),
                               atol=2e-6, rtol=0)
    x = torch.rand(4, 6, 6, 2) * 255
    flip = Augment(flip="horizontal", value_range=(0, 255))
    u = _u(*[[0, 0, 0, 0, -1.0 if k % 2 else 1.0, 0] for k in range(4)])
    out = flip.apply(x, flip.theta_from(u, 6, 6), None)
    # bilinear weights of 1 and 0 at the pixel centres, up to float rounding
    torch.testing.assert_close(out[1::2], x[1::2].flip(2), atol=1e-3, rtol=0)
    torch.testing.assert_close(out[0::2], x[0::2], atol=1e-3, rtol=0)
    quarter = Augment(rotation=(0.25, 0.25), value_range=(0, 255))
    turned = quarter.apply(x, quarter.theta_from(torch.zeros(4, 6), 6, 6), None)
    torch.testing.assert_close(turned, torch.rot90(x, 1, (1, 2)), atol=1e-3, rtol=0)


def test_a_value_range_that_is_no_range_is_refused():
    # (255, 0) clipped every image to one value under brightness, all zeros, without a word
    for bad in ((255, 0), (1, 1), (0, float("inf")), (0, 1, 2), "0-255"):
        with pytest.raises(InputError, match="argument `value_range` must be \\(low, high\\) with low < high"):
            Augment(brightness=0.5, value_range=bad)
    assert Augment(brightness=0.5, value_range=[0, 255]).value_range == (0.0, 255.0)
