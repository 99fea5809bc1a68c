"""Pytree helpers: stack trees of equal structure along a new leading axis, take entries
of that axis, the Euclidean norm of all leaves together, the bytes of all leaves.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["stack", "take", "tree_norm", "tree_bytes"]


def stack(trees: list[Any]) -> Any:
    """Stack pytrees of equal structure along a new leading axis."""
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def take(tree: Any, index: np.ndarray) -> Any:
    """The points ``index`` of a stacked pytree."""
    return jax.tree.map(lambda a: a[index], tree)


def tree_norm(tree: Any) -> jax.Array:
    """sqrt of the sum of squares of every entry of every leaf."""
    return jnp.sqrt(sum(jnp.sum(t**2) for t in jax.tree.leaves(tree)))


def tree_bytes(tree: Any) -> int:
    """Bytes of the array leaves of ``tree`` (arrays or ``ShapeDtypeStruct``s)."""
    return sum(int(np.prod(a.shape)) * np.dtype(a.dtype).itemsize for a in jax.tree.leaves(tree))
