"""Independent groups: a batched function run as a few independent computations, so that
XLA's CPU runtime can run them at the same time on different cores.

On a CPU, XLA runs one batched step (the ``vmap`` of an ensemble's step) as a sequence of
operations, most of which run on one core (the matrix products use the others).
Independent computations of one program, on the other hand, are run concurrently by the
runtime, each on its own core. ``in_groups`` splits the batch axis of a function's
arguments into ``groups`` consecutive slices, calls the function on each slice (each call
traced separately: independent loops in the program) and joins the outputs. The units of
a batch do not interact; what XLA computes for a slice can still be rounded differently
from the whole batch (a batched product over fewer rows), so callers that need the same
numbers on every machine split a fixed number of ways, not one per core:
``cpu_groups`` gives ``CPU_GROUPS`` on a CPU, whatever its cores, and 1 on a GPU or TPU,
where the batch axis is where the parallelism comes from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["CPU_GROUPS", "cpu_groups", "group_bounds", "in_groups"]

# the groups of a CPU: fixed, so that a config's program (and its numbers) do not depend
# on the machine's cores; 2 measured 1.10-1.27x faster than 1 on 2 cores, no slower on one
# (benchmarks/RESULTS.md, online SGD, E = 256)
CPU_GROUPS = 2


def cpu_groups(devices: Sequence[jax.Device]) -> int:
    """The groups a batch on ``devices`` is split into: ``CPU_GROUPS`` on a CPU, 1 on an
    accelerator."""
    return CPU_GROUPS if devices[0].platform == "cpu" else 1


def group_bounds(size: int, groups: int) -> list[tuple[int, int]]:
    """``groups`` consecutive slices (start, stop) of ``range(size)``, of sizes differing
    by at most one (fewer when ``size < groups``, one when ``groups < 1``; none empty)."""
    edges = np.linspace(0, size, max(1, min(groups, size)) + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def in_groups(fn: Callable, groups: int, in_axes: Sequence[int | None], out_axis: int) -> Callable:
    """``fn`` called on ``groups`` consecutive slices of its batch axis, outputs joined.

    ``in_axes``: for each positional argument (a pytree), the batch axis of all its
    leaves, or None for an argument every group gets whole; the batch axes must have one
    length. ``out_axis``: the batch axis of every output leaf. With one group ``fn``
    itself is returned; a batch of one is not split."""
    if groups <= 1:
        return fn

    def sliced(tree: Any, axis: int | None, lo: int, hi: int) -> Any:
        if axis is None:
            return tree
        return jax.tree.map(lambda a: jax.lax.slice_in_dim(a, lo, hi, axis=axis), tree)

    def grouped(*args: Any) -> Any:
        if len(args) != len(in_axes):
            raise TypeError(f"{len(args)} arguments for {len(in_axes)} in_axes")
        sizes = {a.shape[ax] for t, ax in zip(args, in_axes, strict=True) if ax is not None
                 for a in jax.tree.leaves(t)}  # fmt: skip
        if len(sizes) != 1:
            raise ValueError(f"batch axes of lengths {sorted(sizes)}, expected one length")
        bounds = group_bounds(sizes.pop(), groups)
        if len(bounds) == 1:
            return fn(*args)
        outs = [fn(*(sliced(a, ax, lo, hi) for a, ax in zip(args, in_axes, strict=True)))
                for lo, hi in bounds]  # fmt: skip
        return jax.tree.map(lambda *parts: jnp.concatenate(parts, out_axis), *outs)

    return grouped
