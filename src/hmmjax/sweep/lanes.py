"""The lanes of a grid: every point's member states, trainer, data and test set, padded to
the grid's largest sizes and stacked along a leading point axis.

``point_configs`` expands a config's ``[grid]`` into one config per point, in the grid's
canonical order. ``build_lanes`` builds the lanes of online runs: each point's set-up
(``hmmjax.sweep.setup.build``, shared by the points that differ only in lr, kappa or
noise), padded when the grid has several shapes (zero units, zero components, the true
sizes kept for the scalings, ``AbstractDataModel.pad``), and the registered trainer of
``sgd.trainer``. Recording times are shared by all points in units of t: those of a
single run at the smallest N of the grid, so each point records at step round(t N).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PyTree, UInt32

from hmmjax.config.settings import Config
from hmmjax.core.trees import stack
from hmmjax.data.base import Batch, data_model_entry
from hmmjax.models.two_layer import pad_network, pad_tail
from hmmjax.sweep.setup import build
from hmmjax.train.base import AbstractTrainer, trainer_factory
from hmmjax.train.online import record_steps

__all__ = [
    "point_configs",
    "record_times",
    "point_steps",
    "Lanes",
    "Sizes",
    "grid_sizes",
    "setup_key",
    "build_lanes",
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
    """A grid's stacked, padded arrays: leading axis point, then member where batched."""

    students: PyTree  # members' states (P, E, ...): what the trainer advances
    trainer: AbstractTrainer  # the trainer, (P,) on its array fields
    model: PyTree  # the trainer's data: a data model, a training set; (P[, E], ...)
    keys: UInt32[Array, "P E 2"]  # the members' stream keys
    test: PyTree  # what ``measure`` evaluates on, (P[, E], ...) like model


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


def setup_key(cfg: Config) -> str:
    """What the drawn set-up depends on: everything but the float parameters."""
    d = cfg.to_dict()
    for section, key in (("sgd", "lr"), ("sgd", "kappa"), ("data", "noise")):
        d[section].pop(key)
    for section in ("output", "grid", "ode"):
        d.pop(section)
    return json.dumps(d, sort_keys=True)


def build_lanes(cfgs: list[Config], setups: dict[str, Any] | None = None) -> Lanes:
    """Build, pad and stack every point of an online grid. ``setups`` (optional) caches
    ``setup.build`` results by drawn set-up (``setup_key``), shared with the ODE."""
    setups = {} if setups is None else setups
    sz = grid_sizes(cfgs)
    # a grid of one shape needs no padding: its programs keep static sizes and scalings
    pad = len({(c.student.K, c.teacher.M, c.data.D, c.data.N) for c in cfgs}) > 1
    points = []
    for cfg in cfgs:
        key = setup_key(cfg)
        if key not in setups:
            setups[key] = build(cfg)
        s = setups[key]
        model, students, test = s.model, s.students, s.test
        if pad:
            model = model.pad(sz.N, sz.D, sz.M)
            students = pad_network(students, sz.K, sz.N)
            test = Batch(x=pad_tail(test.x, (sz.N,)), y=test.y, z=pad_tail(test.z, (sz.Z,)))
        model = eqx.tree_at(lambda m: m.noise, model, jnp.full_like(model.noise, cfg.data.noise))
        dtype = model.dtype
        create = trainer_factory(cfg.sgd.trainer)
        trainer = create(cfg.sgd.lr, cfg.sgd.kappa, cfg.sgd.batch, cfg.student.train_second,
                         dtype=dtype)  # fmt: skip
        points.append(Lanes(students, trainer, model, s.stream_keys, test))
    return stack(points)


def unit_masks(cfgs: list[Config]) -> tuple[np.ndarray, np.ndarray]:
    """(P, K_max) and (P, M_max) masks of each point's real hidden units."""
    sz = grid_sizes(cfgs)
    K = np.array([c.student.K for c in cfgs])[:, None]
    M = np.array([c.teacher.M for c in cfgs])[:, None]
    return np.arange(sz.K) < K, np.arange(sz.M) < M
