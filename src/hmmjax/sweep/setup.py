"""The set-up of one grid point, drawn from its config: keys, data model(s), students,
test set.

Everything random derives from ``run.seed``: one key for the data model(s), one for the
students' initial weights, one per ensemble member for its data stream and one for the
test set (``run_keys``). The data model is the registered one of ``data.model``
(``hmmjax.data.make_data_model``). Points of a grid that differ only in float parameters
(lr, kappa, noise) share a set-up (``hmmjax.sweep.lanes.setup_key``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from hmmjax.core.rng import seed_key
from hmmjax.data.base import AbstractDataModel, Batch, make_data_model
from hmmjax.models.two_layer import TwoLayer, init_network

__all__ = ["Setup", "dtype_of", "numerics", "draw_students", "Keys", "run_keys", "build",
           "draw_function"]


@dataclass(frozen=True)
class Setup:
    """Everything a run needs, as arrays: batched over the ensemble where marked."""

    model: AbstractDataModel  # batched over members unless ``shared``
    students: TwoLayer  # batched over members
    stream_keys: jax.Array  # (E,) data-stream keys
    test: Batch | None  # batched over members unless ``shared``; None if not drawn
    shared: bool


def dtype_of(cfg):
    return jnp.float64 if cfg.run.precision == "float64" else jnp.float32


@contextmanager
def numerics(cfg) -> Iterator[None]:
    """The arithmetic of ``cfg``'s runs, for the draws, the training and the ODE traced
    inside: float64 where ``run.precision = "float64"``, and float32 matrix products in
    full float32. (JAX's default on NVIDIA GPUs since Ampere rounds the inputs of float32
    products to TF32, 10 mantissa bits: the students' fields, the Gaussian features and
    the order parameters would carry relative errors of about 1e-3. On a CPU, and for
    float64, the setting changes nothing.)"""
    with jax.enable_x64(cfg.run.precision == "float64"), jax.default_matmul_precision("float32"):
        yield


def draw_students(cfg, keys: jax.Array) -> TwoLayer:
    """The students of ``cfg`` (K units on data.N inputs), one per key, stacked."""
    s = cfg.student

    def draw(key):
        return init_network(
            key, s.K, cfg.data.N, init=s.init, second_layer=s.second_layer,
            scaling=s.scaling, g=s.g, dtype=dtype_of(cfg),
        )  # fmt: skip

    return eqx.filter_vmap(draw)(keys)


class Keys(NamedTuple):
    """The keys of a run, all derived from ``run.seed``."""

    data: jax.Array  # the data model (F, teacher)
    students: jax.Array  # (E,) initial weights
    streams: jax.Array  # (E,) data streams (online) or sample orders (finite sets)
    test: jax.Array  # the test set
    train: jax.Array  # the finite training set


def run_keys(cfg) -> Keys:
    """The keys of ``cfg``'s run, from ``run.seed`` (one compiled split for every seed: a
    grid's points each take theirs)."""
    return _split_keys(seed_key(cfg.run.seed), cfg.run.ensemble, cfg.run.same_init)


@partial(jax.jit, static_argnums=(1, 2))
def _split_keys(root_key: jax.Array, E: int, same_init: bool) -> Keys:
    k_data, k_students, k_streams, k_test = jax.random.split(root_key, 4)
    student_keys = jax.random.split(k_students, E)
    if same_init:  # every member starts from member 0's weights
        student_keys = jnp.broadcast_to(student_keys[0], student_keys.shape)
    train = jax.random.fold_in(root_key, 1)
    return Keys(k_data, student_keys, jax.random.split(k_streams, E), k_test, train)


def build(cfg, test: bool = True) -> Setup:
    """Draw the data model(s), the students and the test set(s) of a config: one compiled
    function per drawn shape (``draw_function``), so XLA fuses the sampling (no
    intermediate of the size of the test set per operation) and can account for its
    memory (``hmmjax.sweep.memory``). ``test=False``: no test set (``Setup.test`` is None;
    the ODE reads only the data model and the students, and at large N the test set is
    the largest array of a set-up); the rest is drawn from the same keys, the same."""
    keys = run_keys(cfg)
    model, students, test = draw_function(cfg, test)(keys)
    return Setup(model=model, students=students, stream_keys=keys.streams, test=test,
                 shared=cfg.data.shared)  # fmt: skip


_DRAW: dict[str, Callable] = {}


def draw_function(cfg, test: bool = True) -> Callable:
    """The jitted draw of ``cfg``'s set-up from its ``Keys``: (model, students, test), the
    test set None unless ``test``. Cached by what the draw reads (data, teacher, student,
    run.ensemble, run.test_size, run.precision), so points differing in anything else
    share one compilation."""
    d = cfg.to_dict()
    run = {k: d["run"][k] for k in ("ensemble", "test_size", "precision")}
    static = {"data": d["data"], "teacher": d["teacher"], "student": d["student"], "run": run,
              "test": test}  # fmt: skip
    key = json.dumps(static, sort_keys=True)
    if key not in _DRAW:
        _DRAW[key] = jax.jit(partial(_draw, cfg, test=test))
    return _DRAW[key]


def _draw(cfg, keys: Keys, test: bool = True):
    dtype = dtype_of(cfg)
    E = cfg.run.ensemble
    d = cfg.data

    def draw_model(key):
        return make_data_model(
            key,
            d.model,
            N=d.N,
            M=cfg.teacher.M,
            D=d.D,
            f=d.f,
            g=cfg.teacher.g or cfg.student.g,
            noise=d.noise,
            teacher_scaling=cfg.teacher.scaling,
            dtype=dtype,
            # only the built-in manifold models take a structured F (config checks)
            **({} if d.features == "gaussian" else {"features": d.features}),
        )

    def draw_test(model, key):
        return model.sample(key, cfg.run.test_size, noise=False)

    if d.shared:
        model = draw_model(keys.data)
        tests = draw_test(model, keys.test) if test else None
    else:
        model = eqx.filter_vmap(draw_model)(jax.random.split(keys.data, E))
        tests = eqx.filter_vmap(draw_test)(model, jax.random.split(keys.test, E)) if test else None
    return model, draw_students(cfg, keys.students), tests
