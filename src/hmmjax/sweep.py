"""A whole parameter grid as one compiled, batched online-SGD computation.

Every grid point (``Grid.configs``) is built like a single run (``simulate.build``), then
padded to the grid's maximum K, M, D and N (``pad_network``, ``pad_model``: zero units,
zero components, the true sizes kept for the scalings) and stacked along a leading
"point" axis. Float parameters (lr, kappa, noise) are plain arrays along that axis. One
jit-compiled function then advances all points and their ensemble members through a
chunk of recording intervals (``vmap`` over points of a ``vmap`` over members); the time
axis runs chunk after chunk, and the point axis is

- sharded over the local devices (``shard_map`` over a one-axis mesh "grid"), and
- split into equal batches (the last padded with copies) when the memory estimate of
  the whole grid exceeds the device's budget, so every batch reuses one compilation.

Recording times are shared by all points in units of t: those of a single run at the
smallest N of the grid, so each point records at step round(t N).

Divergence: a member whose weights or eg turn non-finite, or whose eg exceeds
``run.diverge_eg``, is frozen at its last state before that interval (what it computes
afterwards is dropped), its measurements from then on are NaN, and the flag and time are
kept. Other members and points are not affected.

Checkpoints: after each chunk the state (students, flags, the history so far, finished
batches) is written atomically; ``run_points`` given the same checkpoint resumes there.
Data streams are counter-based, so the resumed run gives the uninterrupted numbers.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec
from tqdm.auto import tqdm

from hmmjax.config import Config, ConfigError
from hmmjax.data import Batch, pad_model
from hmmjax.networks import pad_network, pad_tail
from hmmjax.online import SGD, record_steps
from hmmjax.results import atomic_write_bytes

__all__ = [
    "Lanes",
    "gather_shares",
    "process_share",
    "Plan",
    "Progress",
    "build_lanes",
    "device_budget",
    "estimate_bytes",
    "plan_batches",
    "point_configs",
    "record_times",
    "run_points",
]


# --- the grid's points -----------------------------------------------------------------


def point_configs(cfg: Config) -> list[Config]:
    """One validated single-run config per grid point; ``[cfg]`` without a grid."""
    return cfg.grid.configs(cfg) if cfg.grid.kind != "none" else [cfg]


def record_times(cfgs: list[Config]) -> np.ndarray:
    """Recording times t (from 0) shared by the points: those of a single run at the
    grid's smallest N (log or linear as ``run.spacing``)."""
    run = cfgs[0].run
    N = min(c.data.N for c in cfgs)
    return record_steps(N, run.t_max, run.n_times, run.spacing) / N


def point_steps(cfgs: list[Config], times: np.ndarray) -> np.ndarray:
    """(P, n) SGD step counts at which point p records: round(t N_p)."""
    N = np.array([c.data.N for c in cfgs], np.int64)
    return np.rint(np.outer(N, times)).astype(np.int64)


class Lanes(NamedTuple):
    """A grid's stacked, padded arrays: leading axis point, then member where batched."""

    students: Any  # members' states, (P, E, ...): TwoLayer (online), (TwoLayer, optax state)
    sgd: Any  # the trainer, (P,): online.SGD or finite.FiniteTrainer
    model: Any  # DataModel or TrainingSet, (P, ...) if shared, else (P, E, ...)
    keys: jax.Array  # (P, E, 2)
    test: Any  # Batch or finite.TestSet, like model


@dataclass(frozen=True)
class Sizes:
    """The grid's maxima, what every point is padded to."""

    K: int
    M: int
    D: int | None
    N: int
    Z: int  # the teacher's input dimension (D on c, N on x)


def grid_sizes(cfgs: list[Config]) -> Sizes:
    K = max(c.student.K for c in cfgs)
    M = max(c.teacher.M for c in cfgs)
    N = max(c.data.N for c in cfgs)
    D = None if cfgs[0].data.model == "iid" else max(c.data.D for c in cfgs)
    Z = D if cfgs[0].data.model in ("hmm", "get") else N
    return Sizes(K, M, D, N, Z)


def _data_key(cfg: Config) -> str:
    """What the drawn set-up depends on: everything but the float parameters."""
    d = cfg.to_dict()
    for section, key in (("sgd", "lr"), ("sgd", "kappa"), ("data", "noise")):
        d[section].pop(key)
    for section in ("output", "grid", "ode"):
        d.pop(section)
    return json.dumps(d, sort_keys=True)


def build_lanes(cfgs: list[Config], setups: dict[str, Any] | None = None) -> Lanes:
    """Build, pad and stack every point. ``setups`` (optional) caches ``simulate.build``
    results by drawn set-up, shared with the ODE."""
    from hmmjax.simulate import build  # simulate imports this module

    setups = {} if setups is None else setups
    sz = grid_sizes(cfgs)
    # a grid of one shape needs no padding: its programs keep static sizes and scalings
    pad = len({(c.student.K, c.teacher.M, c.data.D, c.data.N) for c in cfgs}) > 1
    points = []
    for cfg in cfgs:
        key = _data_key(cfg)
        if key not in setups:
            setups[key] = build(cfg)
        s = setups[key]
        model, students, test = s.model, s.students, s.test
        if pad:
            model = pad_model(model, sz.N, sz.D, sz.M)
            students = pad_network(students, sz.K, sz.N)
            test = Batch(x=pad_tail(test.x, (sz.N,)), y=test.y, z=pad_tail(test.z, (sz.Z,)))
        model = eqx.tree_at(lambda m: m.noise, model, jnp.full_like(model.noise, cfg.data.noise))
        dtype = model.dtype
        sgd = SGD.create(cfg.sgd.lr, cfg.sgd.kappa, cfg.sgd.batch, cfg.student.train_second, dtype)
        points.append(Lanes(students, sgd, model, s.stream_keys, test))
    return stack(points)


def stack(trees: list[Any]) -> Any:
    """Stack pytrees of equal structure along a new leading axis."""
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def take(tree: Any, index: np.ndarray) -> Any:
    """The points ``index`` of a stacked pytree."""
    return jax.tree.map(lambda a: a[index], tree)


# --- memory ----------------------------------------------------------------------------


def estimate_bytes(cfgs: list[Config]) -> tuple[int, int]:
    """(bytes per point, fixed bytes): an estimate of what one grid point needs on the
    device while it trains, from the padded sizes (see the module docstring of
    benchmarks/sweep.py for the check against measured peaks).

    Per member: the student and its update (3 K N), one block of data (x, the normals and
    the fields: block B (2 N + Z + K + 2)), the test-set fields (T K, twice). Per point:
    the data model (F: D N) and the test set (T (N + Z + 1)), per member if not shared.
    Finite training sets add the set (P (N + 1)), per member a gathered epoch of inputs,
    the training-set fields and the optimiser state, and P fitted flags per record.
    Everything twice for XLA's temporaries.
    """
    c = cfgs[0]
    sz = grid_sizes(cfgs)
    item = 8 if c.run.precision == "float64" else 4
    E, T, B, blk = c.run.ensemble, c.run.test_size, c.sgd.batch, c.run.block
    member = 3 * sz.K * sz.N + blk * B * (2 * sz.N + sz.Z + sz.K + 2) + 2 * T * sz.K
    data = (sz.D or 0) * sz.N + sz.M * sz.Z + T * (sz.N + sz.Z + 1)
    history = E * c.run.chunk * (sz.K * (sz.K + sz.M + 1) + 2)
    if c.finite.P > 0:  # the training set, its fields and fitted flags; optax state
        P = c.finite.P
        data += P * (sz.N + 1) + T
        member += P * (sz.N + 2 * sz.K + 1) + 2 * sz.K * (sz.N + 1)
        history += E * c.run.chunk * P
    point = E * member + (1 if c.data.shared else E) * data
    return 2 * item * (point + history), 64 * 2**20


def device_budget(cfg: Config) -> int:
    """Bytes the sweep may use: ``run.memory_gib``, or 80% of what the device reports
    (accelerators: ``memory_stats()["bytes_limit"]``; CPU: MemAvailable)."""
    if cfg.run.memory_gib != "auto":
        return int(float(cfg.run.memory_gib) * 2**30)
    dev = jax.local_devices()[0]
    stats = dev.memory_stats() if dev.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(0.8 * stats["bytes_limit"])
    return int(0.8 * _available_ram())


def _available_ram() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


@dataclass(frozen=True)
class Plan:
    """How a grid of ``n_points`` runs: batches of ``batch`` points (a multiple of the
    device count), sharded over ``devices`` devices."""

    n_points: int
    batch: int
    devices: int
    per_point_bytes: int
    budget_bytes: int

    @property
    def n_batches(self) -> int:
        return -(-self.n_points // self.batch)

    def describe(self) -> str:
        gib = 2**30
        return (
            f"{self.n_points} grid points in {self.n_batches} batch(es) of {self.batch} on "
            f"{self.devices} device(s); estimated {self.per_point_bytes / gib:.3g} GiB per "
            f"point, budget {self.budget_bytes / gib:.3g} GiB per device"
        )


def plan_batches(cfgs: list[Config], n_devices: int, budget: int) -> Plan:
    """Choose the batch size: all points if they fit in ``budget`` bytes per device,
    else the most that do (a multiple of the device count). Errors (before any
    compilation) if a single point per device does not fit."""
    per_point, fixed = estimate_bytes(cfgs)
    P = len(cfgs)
    fit = (budget - fixed) // per_point
    if fit < 1:
        raise ConfigError(
            f"run.memory_gib: one grid point needs about {per_point / 2**30:.3g} GiB "
            f"(largest K, N, D of the grid, run.ensemble = {cfgs[0].run.ensemble}, "
            f"run.test_size = {cfgs[0].run.test_size}), more than the "
            f"{budget / 2**30:.3g} GiB available per device; reduce those or raise "
            "run.memory_gib"
        )
    per_device = min(fit, -(-P // n_devices))
    return Plan(P, per_device * n_devices, n_devices, per_point, budget)


def choose_devices(cfg: Config, n_points: int | None = None) -> list[jax.Device]:
    """The local devices of ``run.devices`` ("all" or a number); "all" uses no more
    devices than there are grid points (``n_points``), as a device would otherwise run
    copies."""
    devices = jax.local_devices()
    want = cfg.run.devices
    if want == "all":
        return devices[: n_points or len(devices)]
    if want > len(devices):
        raise ConfigError(
            f"run.devices = {want}: only {len(devices)} local device(s) "
            f"({devices[0].platform}); use all or a number <= {len(devices)}"
        )
    return devices[:want]


# --- the compiled chunk ----------------------------------------------------------------


def _freeze(dead, old, new):
    return jax.tree.map(lambda a, b: jnp.where(dead, a, b), old, new)


def _member_chunk(state, dead, trainer, model, key, test, starts, stops, bound, *, block):
    """One member through C recording intervals, freezing it when it diverges.

    ``trainer`` (``online.SGD`` or ``finite.FiniteTrainer``) advances the member's state
    (a pytree) and measures it. A frozen member still runs each interval (from its
    frozen state) and the result is dropped: the loop bounds stay the same for every
    member, so that under ``vmap`` the loops are not turned into per-lane predicated
    loops (2x slower on a CPU)."""

    def interval(carry, bounds):
        net, dead = carry
        start, stop = bounds
        new = trainer.advance(net, model, key, start, stop, block)
        m = trainer.measure(new, model, test)
        watched = trainer.monitor(m)
        finite = jnp.isfinite(watched) & _all_finite(new)
        dead = dead | ~finite | (watched > bound)
        m = jax.tree.map(lambda a: _blank(dead, a), m)
        return (_freeze(dead, net, new), dead), (m, dead)

    (state, dead), (meas, deads) = jax.lax.scan(interval, (state, dead), (starts, stops))
    return state, dead, meas, deads


def _all_finite(tree) -> jax.Array:
    leaves = [a for a in jax.tree.leaves(tree) if jnp.issubdtype(a.dtype, jnp.inexact)]
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in leaves]))


def _blank(dead, a):
    """A measurement after a divergence: NaN (floats) or zero (flags, counts)."""
    return jnp.where(dead, jnp.nan if jnp.issubdtype(a.dtype, jnp.inexact) else 0, a)


def _points_chunk(states, dead, lanes_rest, starts, stops, bound, *, shared, block, same_steps):
    """vmap over points of a vmap over members. ``same_steps``: every point records at
    the same steps (no N axis), given once, so the loop bounds are not batched."""
    trainer, model, keys, test = lanes_rest
    axis = None if shared else 0
    per_member = jax.vmap(
        partial(_member_chunk, block=block),
        in_axes=(0, 0, None, axis, 0, axis, None, None, None),
    )
    steps_axis = None if same_steps else 0
    per_point = jax.vmap(per_member, in_axes=(0, 0, 0, 0, 0, 0, steps_axis, steps_axis, None))
    return per_point(states, dead, trainer, model, keys, test, starts, stops, bound)


def _first_measure(states, trainer, model, test, *, shared):
    axis = None if shared else 0

    def per_point(states, trainer, model, test):
        return jax.vmap(trainer.measure, in_axes=(0, axis, axis))(states, model, test)

    return jax.vmap(per_point)(states, trainer, model, test)


_COMPILED: dict[Any, Callable] = {}


def compiled_chunk(
    devices: tuple[jax.Device, ...], shared: bool, block: int, same_steps: bool
) -> Callable:
    """The jitted chunk function, its point axis sharded over ``devices`` (cached)."""
    key = (devices, shared, block, same_steps)
    if key not in _COMPILED:
        fn = partial(_points_chunk, shared=shared, block=block, same_steps=same_steps)
        if len(devices) > 1:
            mesh = jax.sharding.Mesh(np.array(devices), ("grid",))
            g, rep = PartitionSpec("grid"), PartitionSpec()
            s = rep if same_steps else g
            fn = jax.shard_map(fn, mesh=mesh, in_specs=(g, g, g, s, s, rep), out_specs=g)
        _COMPILED[key] = jax.jit(fn)
    return _COMPILED[key]


# --- the driver ------------------------------------------------------------------------


class Progress(NamedTuple):
    """What ``run_points`` returns: history leaves (P, E, n, ...), flags (P, E, n)."""

    history: dict[str, np.ndarray]
    dead: np.ndarray


def fingerprint(cfg: Config, plan: Plan | None = None) -> str:
    """What a checkpoint must match to be resumed: the config (less output and the memory
    budget) and the plan, if any."""
    d = cfg.to_dict()
    d.pop("output")
    d["run"].pop("memory_gib")
    if plan is not None:
        d["_plan"] = [plan.batch, plan.devices]
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


def checkpoint_path(cfg: Config) -> Path:
    """OUT.ckpt.npz next to ``output.out``; OUT.pI.ckpt.npz for process I of several."""
    out = Path(cfg.output.out)
    part = f".p{jax.process_index()}" if jax.process_count() > 1 else ""
    return out.with_name(f"{out.name}{part}.ckpt.npz")


def model_checkpoint(path: Path, model: str) -> Path:
    """The checkpoint of one data model's part of a grid over models."""
    return path.with_name(path.name.replace(".ckpt.npz", f".{model}.ckpt.npz"))


def checkpoint_files(path: Path) -> list[Path]:
    """``path`` and its per-model parts (``model_checkpoint``) that exist."""
    parts = path.parent.glob(path.name.replace(".ckpt.npz", ".*.ckpt.npz"))
    return [p for p in (path, *sorted(parts)) if p.exists()]


def _save_checkpoint(path: Path, state: dict[str, np.ndarray]) -> None:
    import io

    buf = io.BytesIO()
    np.savez(buf, **state)
    atomic_write_bytes(path, buf.getvalue())


def _load_checkpoint(path: Path, stamp: str) -> dict[str, np.ndarray] | None:
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        state = {k: z[k] for k in z.files}
    if str(state.get("fingerprint")) != stamp:
        raise ConfigError(
            f"checkpoint {path} belongs to a different config or plan; run with --fresh "
            "(or delete it) to start afresh, or run the config that wrote it"
        )
    return state


def run_points(
    cfg: Config,
    cfgs: list[Config],
    lanes: Lanes,
    steps: np.ndarray,
    plan: Plan,
    devices: list[jax.Device],
    *,
    progress: bool = True,
    checkpoint: Path | None = None,
) -> Progress:
    """Train every point of ``lanes`` through the recording steps ``steps`` (P, n),
    batch after batch and chunk after chunk, checkpointing after each chunk."""
    P, n = steps.shape
    shared = cfg.data.shared
    dtype = lanes.sgd.lr.dtype
    bound = jnp.asarray(cfg.run.diverge_eg, dtype)
    same = bool(np.all(steps == steps[:1]))
    chunk_fn = compiled_chunk(tuple(devices), shared, cfg.run.block, same)
    C = cfg.run.chunk
    n_chunks = -(-(n - 1) // C)
    # interval bounds (P, n_chunks * C), padded with empty intervals at the last step
    pad = n_chunks * C - (n - 1)
    starts = np.concatenate([steps[:, :-1], np.repeat(steps[:, -1:], pad, 1)], 1)
    stops = np.concatenate([steps[:, 1:], np.repeat(steps[:, -1:], pad, 1)], 1)

    stamp = fingerprint(cfg, plan)
    state = _load_checkpoint(checkpoint, stamp) if checkpoint else None
    done: dict[str, np.ndarray] | None = None  # the finished batches' history
    b0, c0 = 0, 0
    if state is not None:
        b0, c0 = int(state["batch"]), int(state["chunk"])
        done = _history_of(state, "done") or None

    # progress in SGD steps of the grid's largest N, summed over batches
    last = int(steps[:, -1].max())
    done_steps = b0 * last + (int(stops[:, c0 * C - 1].max()) if c0 > 0 else 0)
    if progress:
        tqdm.write(f"hmmjax: {plan.describe()}")
    bar = tqdm(total=plan.n_batches * last, initial=done_steps, disable=not progress,
               unit="step", unit_scale=True)  # fmt: skip
    for b in range(b0, plan.n_batches):
        idx = np.arange(b * plan.batch, (b + 1) * plan.batch)
        idx = np.minimum(idx, P - 1)  # the last batch repeats the last point
        part = take(lanes, idx)
        if state is not None and b == b0 and c0 > 0:
            students = jax.tree.map(jnp.asarray, _states_of(state, part.students))
            dead = jnp.asarray(state["net_dead"])
            pieces = [_history_of(state, "cur")]
        else:
            students = part.students
            dead = jnp.zeros(part.keys.shape[:2], bool)
            first = _first_measure(students, part.sgd, part.model, part.test, shared=shared)
            pieces = [_with_dead(jax.tree.map(lambda a: np.asarray(a)[:, :, None], first),
                                 np.zeros((len(idx), part.keys.shape[1], 1), bool))]  # fmt: skip
            c0 = 0
        rest = (part.sgd, part.model, part.keys, part.test)
        for c in range(c0, n_chunks):
            sl = slice(c * C, (c + 1) * C)
            rows = idx[:1] if same else idx  # the shared steps once, or one row per point
            lo, hi = (jnp.asarray(a[rows, sl].squeeze(0) if same else a[rows, sl])
                      for a in (starts, stops))  # fmt: skip
            students, dead, meas, deads = chunk_fn(students, dead, rest, lo, hi, bound)
            meas = jax.tree.map(np.asarray, jax.block_until_ready(meas))
            pieces.append(_with_dead(meas, np.asarray(deads)))
            if checkpoint is not None:
                _save_checkpoint(
                    checkpoint,
                    _state(stamp, b, c + 1, students, dead, _concat(pieces, 2), done),
                )
            bar.update(int(stops[idx, sl][:, -1].max() - starts[idx, sl][:, 0].max()))
        real = min(plan.batch, P - b * plan.batch)  # the points of this batch, not copies
        hist = {k: a[:real] for k, a in _concat(pieces, 2).items()}
        done = hist if done is None else _concat([done, hist], 0)
        state = None
        if checkpoint is not None and b + 1 < plan.n_batches:
            _save_checkpoint(checkpoint, _state(stamp, b + 1, 0, None, None, None, done))
    bar.close()
    hist = {k: a[:, :, :n] for k, a in done.items()}
    dead = hist.pop("dead")
    return Progress(history=hist, dead=dead)


def _with_dead(meas: dict[str, np.ndarray], dead: np.ndarray) -> dict[str, np.ndarray]:
    return {**{k: np.asarray(a) for k, a in meas._asdict().items()}, "dead": dead}


def _concat(pieces: list[dict[str, np.ndarray]], axis: int) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in pieces], axis) for k in pieces[0]}


def _history_of(state: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) + 1 :]: a for k, a in state.items() if k.startswith(f"{prefix}_")}


def _states_of(state: dict[str, np.ndarray], like: Any) -> Any:
    """The members' states saved by ``_state``, in the structure of ``like``."""
    treedef = jax.tree.structure(like)
    return jax.tree.unflatten(treedef, [state[f"net_{i}"] for i in range(treedef.num_leaves)])


def _state(stamp, batch, chunk, students, dead, hist, done) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {
        "fingerprint": np.asarray(stamp),
        "batch": np.asarray(batch),
        "chunk": np.asarray(chunk),
    }
    if students is not None:
        out.update({f"net_{i}": np.asarray(a) for i, a in enumerate(jax.tree.leaves(students))})
        out["net_dead"] = np.asarray(dead)
        out.update({f"cur_{k}": a for k, a in hist.items()})
    if done is not None:
        out.update({f"done_{k}": a for k, a in done.items()})
    return out


def process_share(P: int) -> np.ndarray:
    """The point indices this process runs: an equal share of the P points per process
    (the last process's share padded with copies of the last point)."""
    n, i = jax.process_count(), jax.process_index()
    share = -(-P // n)
    return np.minimum(np.arange(i * share, (i + 1) * share), P - 1)


def gather_shares(tree: Any, P: int) -> Any:
    """Every process's share of a pytree of (share, ...) arrays, concatenated in process
    order and cut to the P points (``multihost_utils.process_allgather``)."""
    from jax.experimental import multihost_utils

    leaves, treedef = jax.tree.flatten(tree)
    with jax.enable_x64(True):  # float64 ODE results travel as float64
        gathered = [np.asarray(multihost_utils.process_allgather(np.asarray(a))) for a in leaves]
    return jax.tree.unflatten(treedef, [_first_points(a, P) for a in gathered])


def _first_points(a: np.ndarray, P: int) -> np.ndarray:
    if a.ndim < 2:  # a per-process scalar (e.g. the ODE's number of points): process 0's
        return a[0]
    return a.reshape(-1, *a.shape[2:])[:P]


def diverged_at(dead: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flag, first time flagged or NaN) from flags over time (last axis)."""
    flag = dead.any(-1)
    first = np.where(flag, times[np.argmax(dead, -1)], np.nan)
    return flag, first


def unit_masks(cfgs: list[Config]) -> tuple[np.ndarray, np.ndarray]:
    """(P, K_max) and (P, M_max) masks of each point's real hidden units."""
    sz = grid_sizes(cfgs)
    K = np.array([c.student.K for c in cfgs])[:, None]
    M = np.array([c.teacher.M for c in cfgs])[:, None]
    return np.arange(sz.K) < K, np.arange(sz.M) < M
