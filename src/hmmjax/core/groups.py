"""Independent groups: a batched function run as a few independent computations, each on
a slice of the batch, one after another.

On a CPU, XLA runs one batched step (the ``vmap`` of an ensemble's step) as a sequence of
operations; a large one is split over the cores, a small one runs on one. Independent
computations of one program are not run at the same time: with jax 0.10.2, two independent
loops in one program took 2.00x the time of one, one core busy, and two programs
dispatched together to one device the same; on two XLA host devices 1.00x, two cores busy
(``python benchmarks/concurrency.py``, benchmarks/RESULTS.md). What a split into groups
changes is the working set: each group's weights and inputs are a fraction of the
batch's. On one core that made E = 256 at N = 784 1.17x faster in two groups (1.58M
against 1.35M student-steps/s, an AMD EPYC restricted to one core); on one device with two
cores 0.55x (1.11M against 2.01M in one group; slower than on one core, presumably the
hand-offs of smaller operations between the cores; not profiled), so the cores come from
host devices (``engine.member_parts``: the parts of a large single run, one per device,
3.04M). ``in_groups`` splits the batch axis of a function's arguments into ``groups``
consecutive slices, calls the function on each slice (each call traced separately) and
joins the outputs. The units of a batch do not
interact; what XLA computes for a slice can still be rounded differently from the whole
batch (a batched product over fewer rows), so callers that need the same numbers on every
machine split a fixed number of ways, not one per core: ``cpu_groups`` gives
``CPU_GROUPS`` on a CPU, whatever its cores, and 1 on a GPU or TPU, where the batch axis
is where the parallelism comes from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["CPU_GROUPS", "cpu_groups", "group_bounds", "in_groups"]

# the groups of a CPU: fixed, so that a config's program (and its numbers) do not depend
# on the machine's cores or devices. 2 measured 1.10-1.27x faster than 1 on 2 cores when
# it was chosen (the runtime may then have run the groups at the same time); with jax
# 0.10.2 they run one after another: 1.17x faster on one core, 0.55x on one device of two
# cores (benchmarks/RESULTS.md, "What one XLA CPU device runs at the same time"). Kept: a
# change moves the test-set error's last bit in the CPU runs that use groups
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
