"""Pytree helpers: stack trees of equal structure along a new leading axis, take entries
of that axis.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["stack", "take"]


def stack(trees: list[Any]) -> Any:
    """Stack pytrees of equal structure along a new leading axis."""
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def take(tree: Any, index: np.ndarray) -> Any:
    """The points ``index`` of a stacked pytree."""
    return jax.tree.map(lambda a: a[index], tree)
