"""The lanes of a grid: the grid's points grouped by data stream, every point's member
states and trainer, every lane's data and test set, padded to the grid's largest sizes and
stacked along a leading lane axis.

A lane is a data stream shared by Q points (its slots). The samples of an online member
depend on the seed, the member, the step and the data model, not on lr, kappa, K or
the training of the second layer: points differing only in those draw identical samples,
so one lane draws each member's samples once and feeds them to all its points (common
random numbers). Every point still sees exactly the data of its own single run, so its
numbers are those of its single run (up to the rounding of a batched product). Arrays:
students (L, Q, E, ...), trainer (L, Q), model and test (L[, E], ...), keys (L, E, 2).
``Layout`` says which point sits in which slot (``stream_layout``); finite training sets
and invariant manifolds run one point per lane (``one_per_lane``).

``point_configs`` expands a config's ``[grid]`` into one config per point, in the grid's
canonical order. ``build_lanes`` builds the lanes of online runs: each point's set-up
(``hmmjax.sweep.setup.build``, shared by the points that differ only in lr, kappa or
noise), padded when the grid has several shapes (zero units, zero components, the true
sizes kept for the scalings, ``AbstractDataModel.pad``), and the registered trainer of
``sgd.trainer``. Recording times are shared by all points in units of t: those of a
single run at the smallest N of the grid, so each point records at step round(t N).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PyTree, UInt32

from hmmjax.config.grid import MAX_POINTS
from hmmjax.config.schema import ConfigError
from hmmjax.config.settings import Config
from hmmjax.core.groups import group_bounds
from hmmjax.core.schedules import AbstractSchedule, make_schedule
from hmmjax.core.trees import stack, take
from hmmjax.data.base import Batch, data_model_entry
from hmmjax.models.two_layer import pad_network, pad_tail
from hmmjax.sweep.setup import build
from hmmjax.train.base import AbstractTrainer, trainer_factory
from hmmjax.train.online import SGD, record_steps

__all__ = [
    "point_configs",
    "record_times",
    "point_steps",
    "Lanes",
    "lane_shape",
    "Sizes",
    "grid_sizes",
    "setup_key",
    "stream_key",
    "Layout",
    "stream_layout",
    "split_members",
    "stack_lanes",
    "one_per_lane",
    "build_lanes",
    "make_trainer",
    "config_schedule",
    "unit_masks",
]


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
    """A grid's stacked, padded arrays: leading axis lane, then slot (the lane's points)
    for the states and trainers, then member where batched."""

    students: PyTree  # members' states (L, Q, E, ...): what the trainer advances
    trainer: AbstractTrainer  # the trainers, (L, Q) on their array fields
    model: PyTree  # the trainer's data: a data model, a training set; (L[, E], ...)
    keys: UInt32[Array, "L E 2"]  # the members' stream keys
    test: PyTree  # what ``measure`` evaluates on, (L[, E], ...) like model


def lane_shape(lanes: Lanes) -> tuple[int, int, int]:
    """(lanes L, slots Q, members E) of stacked lanes (or their shapes)."""
    return tuple(jax.tree.leaves(lanes.students)[0].shape[:3])


@dataclass(frozen=True)
class Layout:
    """Which grid point sits in which slot: ``points[l, q]`` is the point of slot q of
    lane l (a lane with fewer points than Q repeats its last point; the copy is
    computed and dropped). ``parts`` > 1: the members of each row of points are split
    over ``parts`` consecutive lanes (``split_members``), part p holding the p-th of
    ``parts`` equal slices of the members; the lanes are joined back by ``to_points``."""

    points: np.ndarray  # (L, Q) point indices
    parts: int = 1

    @property
    def n_lanes(self) -> int:
        return self.points.shape[0]

    @property
    def slots(self) -> np.ndarray:
        """(P,) the flat slot (l Q + q) of every point, where its results are."""
        _, first = np.unique(self.points.ravel(), return_index=True)  # a point's first slot
        return first

    @classmethod
    def single(cls, n_points: int) -> Layout:
        """One point per lane."""
        return cls(np.arange(n_points)[:, None])

    def to_points(self, a: np.ndarray) -> np.ndarray:
        """Reorder an array of flat slots (leading axis L Q, then the members) into the
        points' order, the member parts of a point joined along the member axis."""
        if self.parts == 1:
            return a[self.slots]
        L, Q = self.points.shape
        rows, (E, *rest) = L // self.parts, a.shape[1:]
        a = a.reshape(rows, self.parts, Q, E, *rest).swapaxes(1, 2)
        whole = Layout(self.points[:: self.parts])
        return whole.to_points(a.reshape(rows * Q, self.parts * E, *rest))


def split_members(layout: Layout, parts: int) -> Layout:
    """``layout`` with the members of each lane split over ``parts`` lanes (the lanes'
    data and test set copied to each part; only for data shared by the members)."""
    if parts == 1:
        return layout
    if layout.parts != 1:
        raise ValueError(f"a layout already split in {layout.parts} parts")
    return Layout(np.repeat(layout.points, parts, axis=0), parts)


def _digest(d: dict[str, Any]) -> str:
    """A 128-bit name of a nested dict of config values (32 hex digits): equal for equal
    dicts, different otherwise but with a chance of 2^-128 a pair."""
    text = json.dumps(d, sort_keys=True).encode()
    return hashlib.blake2b(text, digest_size=16).hexdigest()


# The keys below are asked for every point of a grid in several passes (the lanes, the
# memory plan, the built lanes, the ODE), so their caches hold a whole grid: a smaller
# one, scanned point after point, misses every time (a 4096-entry cache made an 8192-point
# grid compute each key five times, 3 s of its 7 s). Digests, not the 1.2 kB texts, so
# that a full cache holds about 0.1 kB a point beside the configs.
@functools.lru_cache(maxsize=MAX_POINTS)
def stream_key(cfg: Config) -> str:
    """What an online member's samples depend on: the data model and its parameters, the
    teacher (its activation resolved), the seed, the ensemble, the test set, the
    precision and the mini-batch; not lr, kappa, the student or the training of the
    second layer. Points with equal keys share their lanes' streams."""
    d = cfg.to_dict()
    d["teacher"]["g"] = cfg.teacher.g or cfg.student.g
    for section in ("student", "output", "grid", "ode"):
        d.pop(section)
    for key in ("lr", "kappa"):
        d["sgd"].pop(key)
    d["run"].pop("same_init")
    return _digest(d)


def stream_layout(cfgs: list[Config], share: bool = True) -> Layout:
    """The lanes of ``cfgs``: the points of equal ``stream_key`` in one lane each, in the
    order of their first point (``share=False``: one point per lane)."""
    if not share or len(cfgs) == 1:
        return Layout.single(len(cfgs))
    groups: dict[str, list[int]] = {}
    for i, cfg in enumerate(cfgs):
        groups.setdefault(stream_key(cfg), []).append(i)
    Q = max(len(g) for g in groups.values())
    return Layout(np.array([g + [g[-1]] * (Q - len(g)) for g in groups.values()]))


def stack_lanes(points: list[Lanes], layout: Layout) -> Lanes:
    """Stack the per-point arrays (``Lanes`` of one point: students (E, ...), a trainer,
    its data) into lanes: the states and trainers of every slot, the data of each lane's
    first point (the points of a lane share it). Pieces shared by several points (the
    same object) are stacked once and then indexed (``_stack_shared``)."""
    L, Q = layout.points.shape
    slots = [points[i] for i in layout.points.ravel()]
    firsts = [points[i] for i in layout.points[:, 0]]
    if layout.parts > 1:  # each lane's slice of the members (split_members), cut first
        E = firsts[0].keys.shape[0]
        cuts = [group_bounds(E, layout.parts)[lane % layout.parts] for lane in range(L)]
        students = stack([stack([_members(points[i].students, cut) for i in row])
                          for row, cut in zip(layout.points, cuts, strict=True)])  # fmt: skip
        keys = stack([p.keys[lo:hi] for p, (lo, hi) in zip(firsts, cuts, strict=True)])
    else:
        students = _stack_shared([p.students for p in slots], (L, Q))
        keys = _stack_shared([p.keys for p in firsts], (L,))
    return Lanes(students, _stack_shared([p.trainer for p in slots], (L, Q)),
                 _stack_shared([p.model for p in firsts], (L,)), keys,
                 _stack_shared([p.test for p in firsts], (L,)))  # fmt: skip


def _members(tree: Any, cut: tuple[int, int]) -> Any:
    """The members cut[0] .. cut[1] - 1 of a point's states (leading axis: members)."""
    return jax.tree.map(lambda a: a[cut[0] : cut[1]], tree)


def _stack_shared(trees: list[Any], shape: tuple[int, ...]) -> Any:
    """``stack(trees)`` with its leading axis reshaped to ``shape``; when some entries are
    the same object, the distinct ones stacked once and indexed (one gather a leaf, not
    one stack of every entry)."""
    index: dict[int, int] = {}
    order = np.array([index.setdefault(id(t), len(index)) for t in trees])
    if len(index) == len(trees):
        return jax.tree.map(lambda a: a.reshape(shape + a.shape[1:]), stack(trees))
    distinct = list({id(t): t for t in trees}.values())
    return take(stack(distinct), order.reshape(shape))


def one_per_lane(lanes: Lanes) -> Lanes:
    """Point-stacked arrays (students (P, E, ...), trainers (P,)) as one point per lane."""

    def slot(a):
        return a[:, None]

    return lanes._replace(students=jax.tree.map(slot, lanes.students),
                          trainer=jax.tree.map(slot, lanes.trainer))  # fmt: skip


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
    latent, on_latent = _shape_facts(cfgs[0].data.model)
    D = max(c.data.D for c in cfgs) if latent else None
    Z = D if on_latent else N
    return Sizes(K, M, D, N, Z)


def _shape_facts(model: str) -> tuple[bool, bool]:
    """(has a latent dimension, teacher on the latent) of a registered online data model;
    (False, False) for the finite data sets and invariant manifolds, which have neither."""
    try:
        entry = data_model_entry(model)
    except ValueError:
        return False, False
    return entry.latent, entry.teacher_on_latent


@functools.lru_cache(maxsize=MAX_POINTS)  # see stream_key
def setup_key(cfg: Config) -> str:
    """What the drawn set-up depends on: everything but the float parameters."""
    d = cfg.to_dict()
    for section, key in (("sgd", "lr"), ("sgd", "kappa"), ("data", "noise")):
        d[section].pop(key)
    for section in ("output", "grid", "ode"):
        d.pop(section)
    return _digest(d)


def build_lanes(
    cfgs: list[Config], setups: dict[str, Any] | None = None, layout: Layout | None = None
) -> Lanes:
    """Build, pad and stack every point of an online grid into the lanes of ``layout``
    (default ``stream_layout(cfgs)``). ``setups`` (optional) caches ``setup.build``
    results by drawn set-up (``setup_key``), shared with the ODE.

    Each drawn set-up is padded once and each distinct trainer made once (a grid's points
    share them: a 1024-point lr x K x seed grid has 64 set-ups and 16 trainers), so the
    host's work grows with those, not with the points."""
    setups = {} if setups is None else setups
    layout = stream_layout(cfgs) if layout is None else layout
    sz = grid_sizes(cfgs)
    # a grid of one shape needs no padding: its programs keep static sizes and scalings
    pad = len({(c.student.K, c.teacher.M, c.data.D, c.data.N) for c in cfgs}) > 1
    firsts = set(layout.points[:, 0].tolist())  # the points whose data their lanes use
    schedule = config_schedule(cfgs[0])  # not a grid axis: one for every point
    students: dict[str, Any] = {}  # padded, by set-up
    trainers: dict[tuple, AbstractTrainer] = {}
    data: dict[tuple, tuple[Any, Any]] = {}  # (model, test) padded, with the noise
    points = []
    for i, cfg in enumerate(cfgs):
        key = setup_key(cfg)
        if key not in setups:
            setups[key] = build(cfg)
        s = setups[key]
        if key not in students:
            students[key] = pad_network(s.students, sz.K, sz.N) if pad else s.students
        model = test = None
        if i in firsts:
            if (key, cfg.data.noise) not in data:
                data[key, cfg.data.noise] = _lane_data(s, cfg.data.noise, sz if pad else None)
            model, test = data[key, cfg.data.noise]
        what = _trainer_inputs(cfg, s.model.dtype)
        if what not in trainers:
            trainers[what] = make_trainer(cfg, s.model.dtype, schedule)
        points.append(Lanes(students[key], trainers[what], model, s.stream_keys, test))
    return stack_lanes(points, layout)


def _lane_data(s: Any, noise: float, sz: Sizes | None) -> tuple[Any, Any]:
    """A lane's (data model, test set) from its set-up ``s``: the model with ``noise``,
    both padded to ``sz`` (None: not padded)."""
    model, test = s.model, s.test
    if sz is not None:
        model = model.pad(sz.N, sz.D, sz.M)
        test = Batch(x=pad_tail(test.x, (sz.N,)), y=test.y, z=pad_tail(test.z, (sz.Z,)))
    return eqx.tree_at(lambda m: m.noise, model, jnp.full_like(model.noise, noise)), test


def make_trainer(cfg: Config, dtype: Any, schedule: AbstractSchedule | None) -> AbstractTrainer:
    """The online trainer of ``cfg`` (``sgd.trainer``), with the learning-rate schedule
    ``schedule`` (``config_schedule(cfg)``; None: constant)."""
    name, lr, kappa, batch, train_second, dtype = _trainer_inputs(cfg, dtype)
    create = trainer_factory(name)
    extra = {} if schedule is None else {"schedule": schedule}
    trainer = create(lr, kappa, batch, train_second, dtype=dtype,
                     **extra) if _takes(create, extra) else None  # fmt: skip
    # a schedule is honoured by SGD's own advance (a subclass may change its step only)
    if trainer is None or (extra and type(trainer).advance is not SGD.advance):
        raise ConfigError(
            f"sgd.schedule = {cfg.sgd.schedule!r}: the trainer {cfg.sgd.trainer!r} does not "
            "follow a schedule (only SGD and subclasses that keep its advance do); use "
            '"constant"'
        )
    return trainer


def _trainer_inputs(cfg: Config, dtype: Any) -> tuple[Any, ...]:
    """All that ``make_trainer`` reads of ``cfg`` (with the dtype; the schedule is one for
    the grid): points equal in it share one trainer (``build_lanes``)."""
    return (cfg.sgd.trainer, cfg.sgd.lr, cfg.sgd.kappa, cfg.sgd.batch,
            cfg.student.train_second, dtype)  # fmt: skip


def _takes(create: Callable[..., Any], extra: dict[str, Any]) -> bool:
    """Whether ``create`` accepts the keyword arguments ``extra``."""
    if not extra:
        return True
    params = inspect.signature(create).parameters.values()
    named = {p.name for p in params}
    return set(extra) <= named or any(p.kind is p.VAR_KEYWORD for p in params)


def config_schedule(cfg: Config) -> AbstractSchedule | None:
    """The schedule of ``cfg`` (None: constant), its file read (``hmmjax.core.schedules``)."""
    s = cfg.sgd
    return make_schedule(s.schedule, s.tau, s.power, s.schedule_file, s.schedule_times,
                         s.schedule_values)  # fmt: skip


def unit_masks(cfgs: list[Config]) -> tuple[np.ndarray, np.ndarray]:
    """(P, K_max) and (P, M_max) masks of each point's real hidden units."""
    sz = grid_sizes(cfgs)
    K = np.array([c.student.K for c in cfgs])[:, None]
    M = np.array([c.teacher.M for c in cfgs])[:, None]
    return np.arange(sz.K) < K, np.arange(sz.M) < M
