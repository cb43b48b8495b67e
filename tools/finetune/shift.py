"""Domain shifts for the fine-tuning experiment (issue 10): the same images, seen differently.

    rotate25   every image rotated by 25 degrees about its centre (bilinear, scipy.ndimage)
    scanner    a cheap scanner: blurred (Gaussian, sigma 1 pixel of a 28x28 image, half a
               pixel of an 8x8 one), lower contrast and a grey background (x * 0.7 + 0.15),
               clipped to [0, 1]

Images are square (side = sqrt(n_features)); values are the features as edge_lsh.data
loads them (0..1). Nothing here is random: a shift is a fixed function of the image.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

SHIFTS = ("rotate25", "scanner")


def side_of(n_features: int) -> int:
    side = math.isqrt(n_features)
    if side * side != n_features:
        raise ValueError(f"{n_features} features are not a square image")
    return side


def apply(shift: str, x: np.ndarray) -> np.ndarray:
    """The images x (n, side*side) float32 in 0..1, shifted; float32, clipped to 0..1."""
    if shift not in SHIFTS:
        raise ValueError(f"unknown shift {shift!r}: expected one of {', '.join(SHIFTS)}")
    side = side_of(x.shape[1])
    images = x.reshape(-1, side, side).astype(np.float64)
    if shift == "rotate25":
        # axes (1, 2): each image turns in its own plane; reshape=False keeps side x side
        out = ndimage.rotate(images, 25.0, axes=(1, 2), reshape=False, order=1, mode="constant")
    else:
        sigma = max(0.5, side / 28.0)
        blurred = ndimage.gaussian_filter(images, sigma=(0.0, sigma, sigma))
        out = blurred * 0.7 + 0.15
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0).reshape(x.shape[0], -1), dtype=np.float32)
