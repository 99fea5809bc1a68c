"""Random draws shared by every model: the same samples whatever the working precision.

Gaussians are always drawn in float32 and then cast, so a float64 run sees exactly the
samples of the float32 run with the same keys: precision is a numerical setting, not a
change of sample.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["normal"]


def normal(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
    """Standard normal draws of ``shape`` in ``dtype`` (drawn in float32, then cast)."""
    return jax.random.normal(key, shape, jnp.float32).astype(dtype)
