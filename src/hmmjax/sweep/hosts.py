"""Several hosts (``jax.distributed``): each process runs an equal share of a grid's lanes
(``hmmjax.sweep.lanes``: the points sharing a data stream stay together, so a lane
computes as in a one-process run; a process beyond the last lane runs a copy; a grid of
one lane, e.g. a learning-rate sweep, runs on one process) on its local devices; process
0 gathers the shares (``process_allgather``).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

__all__ = ["process_share", "share_of", "gather_shares"]


def share_of(lanes: np.ndarray, index: int, count: int) -> np.ndarray:
    """The point indices of process ``index`` of ``count``: the points, each once and in
    order, of an equal share of the lanes (rows of a layout's (L, Q) point indices); a
    process beyond the last lane runs (and then drops) a copy of the last lane."""
    L = lanes.shape[0]
    share = -(-L // count)
    rows = np.minimum(np.arange(index * share, (index + 1) * share), L - 1)
    return np.unique(lanes[rows])


def process_share(lanes: np.ndarray) -> np.ndarray:
    """The point indices this process runs (``share_of`` for this process)."""
    return share_of(lanes, jax.process_index(), jax.process_count())


def gather_shares(tree: Any, P: int, lanes: np.ndarray) -> Any:
    """Every process's share (``share_of`` of ``lanes``) of a pytree of (share, ...)
    arrays, put together in the points' order (``multihost_utils.process_allgather``;
    the shares are padded to one length to travel). 0-d leaves are per-process scalars
    (e.g. the ODE's number of points): process 0's is kept."""
    n = jax.process_count()
    shares = [share_of(lanes, i, n) for i in range(n)]
    size = max(len(s) for s in shares)
    mine = shares[jax.process_index()]
    leaves, treedef = jax.tree.flatten(tree)

    def padded(a):
        a = np.asarray(a)
        if a.ndim == 0:
            return a
        return np.concatenate([a, np.repeat(a[-1:], size - len(mine), 0)])

    with jax.enable_x64(True):  # float64 ODE results travel as float64
        gathered = [np.asarray(multihost_utils.process_allgather(padded(a))) for a in leaves]
    where = np.concatenate([np.pad(s, (0, size - len(s)), mode="edge") for s in shares])
    return jax.tree.unflatten(treedef, [_placed(a, where, P) for a in gathered])


def _placed(a: np.ndarray, where: np.ndarray, P: int) -> np.ndarray:
    if a.ndim < 2:  # a per-process scalar: process 0's
        return a[0]
    flat = a.reshape(-1, *a.shape[2:])
    _, first = np.unique(where, return_index=True)  # a point computed twice: the first value
    return flat[first][:P]
