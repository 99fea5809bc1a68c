"""Several hosts (``jax.distributed``): each process runs an equal share of a grid's points
on its local devices; process 0 gathers the shares (``process_allgather``).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

__all__ = ["process_share", "gather_shares"]


def process_share(P: int) -> np.ndarray:
    """The point indices this process runs: an equal share of the P points per process
    (the last process's share padded with copies of the last point)."""
    n, i = jax.process_count(), jax.process_index()
    share = -(-P // n)
    return np.minimum(np.arange(i * share, (i + 1) * share), P - 1)


def gather_shares(tree: Any, P: int) -> Any:
    """Every process's share of a pytree of (share, ...) arrays, concatenated in process
    order and cut to the P points (``multihost_utils.process_allgather``)."""
    leaves, treedef = jax.tree.flatten(tree)
    with jax.enable_x64(True):  # float64 ODE results travel as float64
        gathered = [np.asarray(multihost_utils.process_allgather(np.asarray(a))) for a in leaves]
    return jax.tree.unflatten(treedef, [_first_points(a, P) for a in gathered])


def _first_points(a: np.ndarray, P: int) -> np.ndarray:
    if a.ndim < 2:  # a per-process scalar (e.g. the ODE's number of points): process 0's
        return a[0]
    return a.reshape(-1, *a.shape[2:])[:P]
