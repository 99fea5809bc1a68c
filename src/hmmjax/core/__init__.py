"""Foundations: counter-based random numbers, the activation table with its Gaussian
constants, the Gaussian integrals of the ODEs, pytree helpers and atomic file writes.
"""

from __future__ import annotations

from hmmjax.core.activations import (
    NAMES,
    Activation,
    GaussianConstants,
    activation,
    gaussian_constants,
    gaussian_expectation,
)
from hmmjax.core.files import atomic_target, atomic_write_bytes
from hmmjax.core.integrals import G_NAMES, covariance, eg, eg_from_covariance, i2, i3, i4, j2
from hmmjax.core.rng import (
    key_words,
    normal,
    normal_counter,
    normal_from_bits,
    subkey_words,
    threefry2x32,
)
from hmmjax.core.trees import stack, take

__all__ = [
    "Activation",
    "G_NAMES",
    "GaussianConstants",
    "NAMES",
    "activation",
    "atomic_target",
    "atomic_write_bytes",
    "covariance",
    "eg",
    "eg_from_covariance",
    "gaussian_constants",
    "gaussian_expectation",
    "i2",
    "i3",
    "i4",
    "j2",
    "key_words",
    "normal",
    "normal_counter",
    "normal_from_bits",
    "stack",
    "subkey_words",
    "take",
    "threefry2x32",
]
