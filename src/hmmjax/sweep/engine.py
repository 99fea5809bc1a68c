"""The one engine: every grid point and every ensemble member of any run, trained as one
compiled, batched computation, chunk after chunk of recording intervals.

The engine knows only ``Lanes`` (``hmmjax.sweep.lanes``: the grid's points grouped by data
stream; every lane's data and test set, every point's trainer and members' states, stacked
along a leading lane axis) and the trainer interface (``hmmjax.train.base.AbstractTrainer``:
``advance_many``, ``measure``, ``monitor``). Online SGD, finite training sets and the
hinge-loss lanes of the invariant-manifold experiments run through the same code: one
jit-compiled function advances all lanes, their members and their points through a chunk of
recording intervals (``vmap`` over lanes of a ``vmap`` over members, the lane's points
advanced together on the member's data stream, a ``scan`` over the intervals), and the lane
axis is

- sharded over the local devices (``shard_map`` over a one-axis mesh "grid"), and
- split into equal batches of lanes (the last padded with copies) when the memory plan
  (``hmmjax.sweep.plan``) says the whole grid does not fit, so every batch reuses one
  compilation.

On a CPU, the members of lanes of one point (a single run, a grid whose points do not
share data streams) run as ``core.groups.CPU_GROUPS`` independent groups (of at least
``MIN_GROUP_MEMBERS`` members), one after another: XLA:CPU does not run independent
computations of one program at the same time (``core.groups``), so the groups change the
working set, not the cores used. The training is that of the unsplit batch, bit for bit;
the test-set measurement (eg_mc) may differ in its last bit. A single run's members are
split the same way one level up, into lanes of their own (``member_parts``,
``lanes.split_members``), so that the host devices (one per core under ``hmmjax run``)
run them side by side, or one device as independent groups: the same numbers either way,
and those of the groups (the first measurement, taken lane by lane, may differ in the
test-set error's last bit). The split follows from the config alone, not from the
machine's cores or devices. A device's single lane runs unbatched (no lane axis of one
around the members, which made XLA:CPU's program for a large ensemble 3x slower).

Divergence: a member whose state or monitored value turns non-finite, or whose monitored
value exceeds the bound (``run.diverge_eg``), is frozen at its last state before that
interval (what it computes afterwards is dropped), its measurements from then on are NaN,
and the flag and time are kept. Other members and points are not affected. A trainer may
also stop a member by itself (the hinge-loss trainer at zero training loss).

Checkpoints: after each chunk the state (members' states, flags, the history so far,
finished batches and their final states) is written atomically (``hmmjax.sweep.checkpoint``);
``run_points`` given a checkpoint's validated arrays (``resume``, from
``checkpoint.load_checkpoint``) resumes there. Data streams are counter-based, so the
resumed run gives the uninterrupted numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from hmmjax.config.schema import ConfigError
from hmmjax.core.groups import cpu_groups, in_groups
from hmmjax.core.trees import take, tree_bytes
from hmmjax.sweep.checkpoint import Resume, check_resume, header, pack, save_checkpoint, unpack
from hmmjax.sweep.lanes import Lanes, Layout, lane_shape
from hmmjax.sweep.plan import Plan

__all__ = [
    "compiled_chunk",
    "first_measure",
    "measure_lane",
    "placements",
    "Progress",
    "run_points",
    "check_resume_fits",
    "diverged_at",
    "MIN_GROUP_MEMBERS",
    "member_parts",
]


# the members of a lane an independent group of a chunk has at least: below it, the
# program's copies cost more to compile than the cores give back (a guess; E = 16 is one
# group); a count of the config's, so that the split does not depend on the devices
MIN_GROUP_MEMBERS = 16


def member_parts(lanes: Lanes, layout: Layout, shared: bool, devices: Sequence[jax.Device]) -> int:
    """The parts (``lanes.split_members``) the members of ``lanes`` (arrays or their
    shapes; unsplit, laid out as ``layout``) on ``devices`` (their platform) are split into.

    On a CPU, a run of one lane of one point (a single run) whose data the members share
    is split into ``cpu_groups`` lanes (the count of the groups the lane would run in),
    with at least ``MIN_GROUP_MEMBERS`` members a part, when the shared data model is no
    larger than the members' states: each part reads the whole model every step (F, D N
    numbers), so at N = 10^4, D = 5000, E = 64 two parts were 8% slower. The host devices
    (one per core under ``hmmjax run``) run the parts side by side, one device as
    independent groups; each part computes as that group did (the first measurement aside:
    the test-set error's last bit), on one device or on several (the tests compare them).
    E = 256 at N = 784 ran about 3.5x faster on two host devices than in one program
    (benchmarks/RESULTS.md). 1: no split."""
    L, Q = layout.points.shape
    parts = cpu_groups(devices)
    members = lanes.keys.shape[1]
    if parts == 1 or not shared or (L, Q) != (1, 1) or members % parts:
        return 1
    if tree_bytes(lanes.model) > tree_bytes(lanes.students):
        return 1
    return parts if members // parts >= MIN_GROUP_MEMBERS else 1


def _freeze(dead, old, new):
    return jax.tree.map(lambda a, b: jnp.where(dead, a, b), old, new)


def _member_chunk(states, dead, trainers, model, key, test, starts, stops, bound, *, block):
    """One member of the Q points of a lane through C recording intervals, freezing a
    point's member when it diverges.

    ``trainers`` (any ``AbstractTrainer``, its array fields (Q,)) advance the Q states
    (pytrees, leaves (Q, ...)) on the lane's data stream (``advance_many``: drawn once
    for all of them where the trainer allows) and measure them. A frozen member still
    runs each interval (from its frozen state) and the result is dropped: the loop bounds
    stay the same for every member, so that under ``vmap`` the loops are not turned into
    per-lane predicated loops (2x slower on a CPU). A lane of one point runs the point's
    own program (``advance``, no batch of one: the numbers of a run do not depend on
    whether it is a lane). Returns the states, flags (Q,), and measurements and flags
    (Q, C, ...)."""
    Q = dead.shape[0]
    settle = _over_slots(partial(_settle, bound=bound), Q, (0, 0, 0, 0, None, None))

    def interval(carry, bounds):
        nets, dead = carry
        start, stop = bounds
        if Q == 1:
            one = _squeeze(trainers)
            new = _expand(one.advance(_squeeze(nets), model, key, start, stop, block))
        else:
            new = trainers.advance_many(nets, model, key, start, stop, block)
        nets, dead, m = settle(trainers, nets, new, dead, model, test)
        return (nets, dead), (m, dead)

    (states, dead), (meas, deads) = jax.lax.scan(interval, (states, dead), (starts, stops))
    by_slot = partial(jnp.moveaxis, source=0, destination=1)  # (C, Q, ...) -> (Q, C, ...)
    return states, dead, jax.tree.map(by_slot, meas), by_slot(deads)


def _settle(trainer, old, new, dead, model, test, *, bound):
    """One point's member after an interval: its measurement, and its state frozen (and
    the measurement blanked) if it diverged."""
    m = trainer.measure(new, model, test)
    watched = trainer.monitor(m)
    finite = jnp.isfinite(watched) & _all_finite(new)
    dead = dead | ~finite | (watched > bound)
    m = jax.tree.map(partial(_blank, dead), m)
    return _freeze(dead, old, new), dead, m


def _squeeze(tree):
    return jax.tree.map(lambda a: a[0], tree)


def _expand(tree):
    return jax.tree.map(lambda a: a[None], tree)


def _over_slots(fn: Callable, Q: int, in_axes: tuple) -> Callable:
    """``fn`` mapped over the Q slots of a lane (arguments with axis 0 in ``in_axes``;
    the outputs' axis 0); for Q = 1 called on the one slot, so that a lane of one point
    computes exactly as a point does (a batch of one may be rounded differently). Used
    for the lanes too: a device's one lane (a single run) runs unbatched, as a batch of
    one over the lanes outside a batch over many members made XLA:CPU's program 3x
    slower (E = 256)."""
    if Q > 1:
        return jax.vmap(fn, in_axes=in_axes)

    def one(*args):
        args = [_squeeze(a) if ax == 0 else a for a, ax in zip(args, in_axes, strict=True)]
        return _expand(fn(*args))

    return one


def _all_finite(tree) -> jax.Array:
    leaves = [a for a in jax.tree.leaves(tree) if jnp.issubdtype(a.dtype, jnp.inexact)]
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in leaves]))


def _blank(dead, a):
    """A measurement after a divergence: NaN (floats) or zero (flags, counts)."""
    return jnp.where(dead, jnp.nan if jnp.issubdtype(a.dtype, jnp.inexact) else 0, a)


def _points_chunk(
    states, dead, lanes_rest, starts, stops, bound, *, shared, block, same_steps, groups, parts
):
    """vmap over lanes of a vmap over members (each advancing the lane's Q points).
    ``same_steps``: every lane records at the same steps (no N axis), given once, so the
    loop bounds are not batched. ``groups``: the most independent groups
    (``core.groups``) the members of lanes of one point are split into, each with
    ``MIN_GROUP_MEMBERS`` members or more. ``parts`` > 1: the lanes are member parts of
    one point (``lanes.split_members``), run as independent groups of one lane each, the
    members of a lane unsplit. Outputs: states (L, Q, E, ...), flags (L, Q, E),
    measurements and flags (L, Q, E, C, ...)."""
    trainer, model, keys, test = lanes_rest
    L, E = keys.shape[:2]
    # the members of a lane (fixed by the config, unlike the lanes of this device or batch)
    trainer = trainer.batched(E * parts)
    axis = None if shared else 0
    per_member = jax.vmap(
        partial(_member_chunk, block=block),
        in_axes=(1, 1, None, axis, 0, axis, None, None, None),
        out_axes=1,
    )
    steps_axis = None if same_steps else 0
    lane_axes = (0, 0, 0, 0, 0, 0, steps_axis, steps_axis, None)
    if parts > 1:  # each lane its own program, as on a device of its own
        per_lane = in_groups(_over_slots(per_member, 1, lane_axes), L, lane_axes, 0)
        return per_lane(states, dead, trainer, model, keys, test, starts, stops, bound)
    per_lane = _over_slots(per_member, L, lane_axes)
    # groups of MIN_GROUP_MEMBERS members or more, in lanes of one point (those of many
    # points share their samples already; a split of their members, or of the lanes,
    # changed the training in its last bit, where this one changes only the measurement)
    Q = dead.shape[1]
    groups = min(groups, E // MIN_GROUP_MEMBERS) if Q == 1 else 1
    member = None if shared else 1  # the states, flags, keys, member-wise models and tests
    in_axes = (2, 2, None, member, 1, member, None, None, None)
    per_lane = in_groups(per_lane, groups, in_axes, 2)
    return per_lane(states, dead, trainer, model, keys, test, starts, stops, bound)


@partial(jax.jit, static_argnames="shared")
def measure_lane(lanes, i, *, shared):
    """The measurement of every member of every slot of lane ``i`` (an int32 scalar,
    traced) of ``lanes`` = (states, trainer, model, test), leaves (L, ...): (Q, E, ...).
    One program for every lane of a batch."""
    states, trainer, model, test = jax.tree.map(lambda a: a[i], lanes)
    axis = None if shared else 0

    def per_slot(trainer, states, model, test):
        return jax.vmap(trainer.measure, in_axes=(0, axis, axis))(states, model, test)

    Q = jax.tree.leaves(states)[0].shape[0]  # (Q, E, ...)
    return _over_slots(per_slot, Q, (0, 0, None, None))(trainer, states, model, test)


def first_measure(states, trainer, model, test, *, shared):
    """The measurement of every member of every slot of every lane at its initial state
    (L, Q, E, ...), on the host. Computed lane by lane (``measure_lane``) on the lanes as
    built (not sharded): the number of lanes in a batch follows the device count, and a
    program over all of them (fused, or partitioned over the devices) could round the
    outputs of networks at their initial state (exactly zero for the invariant
    manifolds' centred networks) differently on different device counts. (It ran op by
    op before: 47 of the quickstart's 81 compilations, now 34.)"""
    lanes = (states, trainer, model, test)
    L = jax.tree.leaves(states)[0].shape[0]
    each = [measure_lane(lanes, np.int32(i), shared=shared) for i in range(L)]
    return jax.tree.map(lambda *a: np.stack([np.asarray(x) for x in a]), *each)


_COMPILED: dict[Any, Callable] = {}


def placements(devices: list[jax.Device] | tuple[jax.Device, ...]) -> tuple[Any, Any]:
    """(split along the lane axis, replicated): the shardings of the chunk's arguments
    over ``devices``; (None, None) for one device (arrays stay where they are)."""
    if len(devices) == 1:
        return None, None
    mesh = jax.sharding.Mesh(np.array(devices), ("grid",))
    return NamedSharding(mesh, PartitionSpec("grid")), NamedSharding(mesh, PartitionSpec())


def _place(tree: Any, sharding: Any) -> Any:
    return tree if sharding is None else jax.device_put(tree, sharding)


def compiled_chunk(
    devices: tuple[jax.Device, ...],
    shared: bool,
    block: int,
    same_steps: bool,
    groups: int | None = None,
    parts: int = 1,
) -> Callable:
    """The jitted chunk function, its lane axis sharded over ``devices``, each device's
    share run in at most ``groups`` independent groups (default ``cpu_groups(devices)``;
    cached); ``parts``: the member parts of ``Layout`` (each lane an independent group)."""
    groups = cpu_groups(devices) if groups is None else groups
    key = (devices, shared, block, same_steps, groups, parts)
    if key not in _COMPILED:
        fn = partial(_points_chunk, shared=shared, block=block, same_steps=same_steps,
                     groups=groups, parts=parts)  # fmt: skip
        if len(devices) > 1:
            mesh = jax.sharding.Mesh(np.array(devices), ("grid",))
            g, rep = PartitionSpec("grid"), PartitionSpec()
            s = rep if same_steps else g
            fn = jax.shard_map(fn, mesh=mesh, in_specs=(g, g, g, s, s, rep), out_specs=g)
        _COMPILED[key] = jax.jit(fn)
    return _COMPILED[key]


class Progress(NamedTuple):
    """What ``run_points`` returns: history leaves (P, E, n, ...), flags (P, E, n), and
    the members' final states (the trainer's state pytree, leaves (P, E, ...))."""

    history: dict[str, np.ndarray]
    dead: np.ndarray
    final: Any


def run_points(
    lanes: Lanes,
    steps: np.ndarray,
    plan: Plan,
    devices: list[jax.Device],
    *,
    shared: bool,
    block: int,
    chunk: int,
    bound: float,
    stamp: str,
    config: str = "",
    layout: Layout | None = None,
    progress: bool = True,
    checkpoint: Path | None = None,
    resume: dict[str, np.ndarray] | None = None,
    keep_final: bool = False,
) -> Progress:
    """Train every point of ``lanes`` through the recording steps ``steps`` (P, n, in the
    points' order), batch after batch of lanes and chunk after chunk of ``chunk``
    intervals, checkpointing after each chunk.

    ``layout``: which point is in which slot of which lane (``lanes.Layout``; default:
    one point per lane). ``shared``: the data model and test set have no member axis.
    ``block``: the trainer's block of steps. ``bound``: the monitored value above which a
    member is frozen. ``stamp``, ``config``: the fingerprint and record of the config that
    checkpoints carry (``checkpoint.fingerprint``, ``checkpoint.describe_config``).
    ``checkpoint``: the file written after each chunk; ``resume``: a checkpoint's arrays,
    validated (``checkpoint.load_checkpoint``), to resume from (the dict is consumed:
    emptied). ``keep_final``: return (and checkpoint) the members' final states, else
    ``Progress.final`` is None. Results come back in the points' order."""
    L, Q, E = lane_shape(lanes)
    layout = Layout.single(L) if layout is None else layout
    if layout.points.shape != (L, Q):
        raise ValueError(f"layout of {layout.points.shape} slots for lanes of {(L, Q)}")
    if plan.n_lanes != L:
        raise ValueError(f"a plan for {plan.n_lanes} lanes given {L} lanes")
    steps = steps[layout.points[:, 0]]  # (L, n): the points of a lane record together
    n = steps.shape[1]
    dtype = _float_dtype(lanes.students)
    bound = jnp.asarray(bound, dtype)
    same = bool(np.all(steps == steps[:1]))
    chunk_fn = compiled_chunk(tuple(devices), shared, block, same, parts=layout.parts)
    C = chunk
    n_chunks = _n_chunks(n, C)
    # interval bounds (L, n_chunks * C), padded with empty intervals at the last step
    pad = n_chunks * C - (n - 1)
    starts = np.concatenate([steps[:, :-1], np.repeat(steps[:, -1:], pad, 1)], 1)
    stops = np.concatenate([steps[:, 1:], np.repeat(steps[:, -1:], pad, 1)], 1)

    head = header(stamp, config, plan)
    saved, resume = resume, (unpack(resume) if resume is not None else None)
    if saved is not None:
        saved.clear()  # consumed: only what is still needed stays alive
    if resume is not None:
        want = (plan.batch, plan.devices)
        if layout.parts > 1:  # member parts compute the same on any device count
            want = (plan.batch, resume.plan[1])
        if resume.plan != want:
            raise ConfigError(
                f"the checkpoint was written with batches of {resume.plan[0]} lanes on "
                f"{resume.plan[1]} device(s), this run plans {plan.batch} on {plan.devices}; "
                "run as it was (run.devices, run.memory_gib) or with --fresh"
            )
    if resume is not None:  # before any work: what it holds fits this run
        check_resume_fits(resume, checkpoint, lanes, n, batch=plan.batch, chunk=C,
                          shared=shared, keep_final=keep_final)  # fmt: skip
    b0, c0 = (resume.batch, resume.chunk) if resume else (0, 0)
    done = resume.done if resume else None  # the finished batches' history (flat slots)
    final = None
    if done is not None and keep_final:
        final = jax.tree.unflatten(jax.tree.structure(lanes.students), resume.final)

    # progress in steps of the grid's largest N, summed over batches
    last = int(steps[:, -1].max())
    done_steps = b0 * last + (int(stops[:, c0 * C - 1].max()) if c0 > 0 else 0)
    if progress:
        tqdm.write(f"hmmjax: {plan.describe()}")
    bar = tqdm(total=plan.n_batches * last, initial=done_steps, disable=not progress,
               unit="step", unit_scale=True)  # fmt: skip
    split, whole = placements(devices)
    bound = _place(bound, whole)
    for b in range(b0, plan.n_batches):
        idx = np.arange(b * plan.batch, (b + 1) * plan.batch)
        idx = np.minimum(idx, L - 1)  # the last batch repeats the last lane
        part = lanes if plan.batch == L else take(lanes, idx)
        if resume is not None and b == b0 and c0 > 0:
            part = _place(part, split)
            like = jax.tree.structure(part.students)
            students = jax.tree.unflatten(like, [jnp.asarray(a) for a in resume.leaves])
            students, dead = _place((students, jnp.asarray(resume.dead)), split)
            pieces = [resume.history]
        else:  # measured where the lanes were built: the same numbers on any device count
            first = first_measure(part.students, part.trainer, part.model, part.test,
                                  shared=shared)  # fmt: skip
            part = _place(part, split)
            students = part.students
            dead = _place(jnp.zeros((len(idx), Q, E), bool), split)
            first = jax.tree.map(lambda a: _slots(a)[:, :, None], first)
            pieces = [_with_dead(first, np.zeros((len(idx) * Q, E, 1), bool))]
            c0 = 0
        rest = (part.trainer, part.model, part.keys, part.test)
        for c in range(c0, n_chunks):
            sl = slice(c * C, (c + 1) * C)
            rows = idx[:1] if same else idx  # the shared steps once, or one row per lane
            lo, hi = (_place(jnp.asarray(a[rows, sl].squeeze(0) if same else a[rows, sl]),
                             whole if same else split) for a in (starts, stops))  # fmt: skip
            students, dead, meas, deads = chunk_fn(students, dead, rest, lo, hi, bound)
            meas = jax.tree.map(lambda a: _slots(np.asarray(a)), jax.block_until_ready(meas))
            pieces.append(_with_dead(meas, _slots(np.asarray(deads))))
            if checkpoint is not None:
                save_checkpoint(checkpoint, pack(head, b, c + 1, students, dead,
                                                 _concat(pieces, 2), done, final))  # fmt: skip
            bar.update(int(stops[idx, sl][:, -1].max() - starts[idx, sl][:, 0].max()))
        real = min(plan.batch, L - b * plan.batch) * Q  # the slots of this batch, not copies
        hist = {k: a[:real] for k, a in _concat(pieces, 2).items()}
        done = hist if done is None else _concat([done, hist], 0)
        if keep_final:
            ends = jax.tree.map(lambda a, n=real: _slots(np.asarray(a))[:n], students)
            final = ends if final is None else jax.tree.map(_join, final, ends)
        resume = None
        del part, rest, students, dead  # before the next batch is taken and placed
        if checkpoint is not None and b + 1 < plan.n_batches:
            save_checkpoint(checkpoint, pack(head, b + 1, 0, None, None, None, done, final))
    bar.close()
    hist = {k: layout.to_points(a[:, :, :n]) for k, a in done.items()}
    dead = hist.pop("dead")
    if final is not None:
        final = jax.tree.map(layout.to_points, final)
    return Progress(history=hist, dead=dead, final=final)


def check_resume_fits(
    resume: Resume,
    checkpoint: Path | None,
    lanes: Lanes,
    n_records: int,
    *,
    batch: int,
    chunk: int,
    shared: bool,
    keep_final: bool,
) -> None:
    """Refuse (``ConfigError``) a checkpoint's ``resume`` (``checkpoint.unpack``) that does
    not fit the run of ``run_points`` on ``lanes`` (arrays, or their shapes from
    ``jax.eval_shape``) recording ``n_records`` times, in batches of ``batch`` lanes and
    chunks of ``chunk`` intervals (``checkpoint.check_resume``); nothing is computed."""
    L = lane_shape(lanes)[0]
    one = jax.eval_shape(partial(measure_lane, shared=shared),
                         (lanes.students, lanes.trainer, lanes.model, lanes.test), np.int32(0))
    measured = jax.tree.map(lambda a: jax.ShapeDtypeStruct((L, *a.shape), a.dtype), one)
    check_resume(resume, checkpoint, batch=batch, n_batches=-(-L // batch),
                 n_chunks=_n_chunks(n_records, chunk), chunk=chunk, students=lanes.students,
                 measured=measured._asdict(), keep_final=keep_final)  # fmt: skip


def _n_chunks(n_records: int, chunk: int) -> int:
    """The chunks of ``chunk`` intervals through ``n_records`` records (the last padded)."""
    return -(-(n_records - 1) // chunk)


def _slots(a: np.ndarray) -> np.ndarray:
    """(L, Q, ...) -> (L Q, ...): lanes' slots as one flat axis."""
    return a.reshape(a.shape[0] * a.shape[1], *a.shape[2:])


def _float_dtype(tree: Any) -> np.dtype:
    """The dtype of the first floating leaf (the precision of the run)."""
    return next(a.dtype for a in jax.tree.leaves(tree) if jnp.issubdtype(a.dtype, jnp.inexact))


def _first(a: Any, n: int) -> np.ndarray:
    return np.asarray(a)[:n]


def _join(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.concatenate([a, b], 0)


def _with_dead(meas: Any, dead: np.ndarray) -> dict[str, np.ndarray]:
    return {**{k: np.asarray(a) for k, a in meas._asdict().items()}, "dead": dead}


def _concat(pieces: list[dict[str, np.ndarray]], axis: int) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in pieces], axis) for k in pieces[0]}


def diverged_at(dead: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flag, first time flagged or NaN) from flags over time (last axis)."""
    flag = dead.any(-1)
    first = np.where(flag, times[np.argmax(dead, -1)], np.nan)
    return flag, first
