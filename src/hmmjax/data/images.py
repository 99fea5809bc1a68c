"""Image data for the alpha-trick experiments with a convolutional network (docs/theory.md
section 7.1): a real data set of ``hmmjax.data.real`` (the 8x8 digits shipped with
scikit-learn, or MNIST from IDX files), even vs odd, standardised over the whole set by
one affine map for every pixel (``load(..., scale="global")``).

``ImageTask`` names the set for the hinge-loss trainer (a static description: the data
itself is host memory, cut into lanes by ``hmmjax.sweep.invariant``). ``nested_split``
draws a seed's training and test parts: one seeded permutation of the set, the test part
its last ``n_test`` samples, the training part its first ``p`` samples, so that the
training sets of a seed are nested in p and its test set does not depend on p.
"""

from __future__ import annotations

import math

import equinox as eqx
import numpy as np

from hmmjax.data.real import RealData

__all__ = ["ImageTask", "image_side", "nested_split"]


def image_side(n_inputs: int) -> int:
    """The side s of square images of s^2 pixels; ``ValueError`` if n_inputs is not a square."""
    side = math.isqrt(n_inputs)
    if side * side != n_inputs:
        raise ValueError(f"{n_inputs} inputs are not a square image (s^2 pixels)")
    return side


class ImageTask(eqx.Module):
    """A binary image task: the data set's name, its path (MNIST) and its pixel count d.
    It has no informative directions (``d_par = 0``: no compression is measured)."""

    name: str = eqx.field(static=True, default="digits")
    path: str = eqx.field(static=True, default="")
    d: int = eqx.field(static=True, default=64)

    @property
    def d_par(self) -> int:
        return 0

    @property
    def side(self) -> int:
        return image_side(self.d)


def nested_split(
    data: RealData, p: int, n_test: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train (p, d), y_train, x_test (n_test, d), y_test) of a seed: the first p and
    the last n_test samples of ``np.random.default_rng(seed).permutation`` (module
    docstring)."""
    n = data.x.shape[0]
    if p < 1 or n_test < 1 or p + n_test > n:
        raise ValueError(
            f"nested_split needs p >= 1, n_test >= 1 and p + n_test <= {n} (the samples of "
            f"{data.name}), got p = {p}, n_test = {n_test}"
        )
    perm = np.random.default_rng(seed).permutation(n)
    train, test = perm[:p], perm[n - n_test :]
    return data.x[train], data.y[train], data.x[test], data.y[test]
