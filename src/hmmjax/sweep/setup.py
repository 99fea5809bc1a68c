"""The set-up of one grid point, drawn from its config: keys, data model(s), students,
test set.

Everything random derives from ``run.seed``: one key for the data model(s), one for the
students' initial weights, one per ensemble member for its data stream and one for the
test set (``run_keys``). The data model is the registered one of ``data.model``
(``hmmjax.data.make_data_model``). Points of a grid that differ only in float parameters
(lr, kappa, noise) share a set-up (``hmmjax.sweep.lanes.setup_key``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from hmmjax.data.base import AbstractDataModel, Batch, make_data_model
from hmmjax.models.two_layer import TwoLayer, init_network

__all__ = ["Setup", "dtype_of", "draw_students", "Keys", "run_keys", "build"]


@dataclass(frozen=True)
class Setup:
    """Everything a run needs, as arrays: batched over the ensemble where marked."""

    model: AbstractDataModel  # batched over members unless ``shared``
    students: TwoLayer  # batched over members
    stream_keys: jax.Array  # (E,) data-stream keys
    test: Batch  # batched over members unless ``shared``
    shared: bool


def dtype_of(cfg):
    return jnp.float64 if cfg.run.precision == "float64" else jnp.float32


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
    E = cfg.run.ensemble
    root_key = jax.random.PRNGKey(cfg.run.seed)
    k_data, k_students, k_streams, k_test = jax.random.split(root_key, 4)
    student_keys = jax.random.split(k_students, E)
    if cfg.run.same_init:  # every member starts from member 0's weights
        student_keys = jnp.broadcast_to(student_keys[0], student_keys.shape)
    train = jax.random.fold_in(root_key, 1)
    return Keys(k_data, student_keys, jax.random.split(k_streams, E), k_test, train)


def build(cfg) -> Setup:
    """Draw the data model(s), the students and the keys of a config."""
    dtype = dtype_of(cfg)
    E = cfg.run.ensemble
    keys = run_keys(cfg)
    k_data, k_test = keys.data, keys.test
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
        )

    def draw_test(model, key):
        return model.sample(key, cfg.run.test_size, noise=False)

    if d.shared:
        model = draw_model(k_data)
        test = draw_test(model, k_test)
    else:
        model = eqx.filter_vmap(draw_model)(jax.random.split(k_data, E))
        test = eqx.filter_vmap(draw_test)(model, jax.random.split(k_test, E))
    return Setup(
        model=model,
        students=draw_students(cfg, keys.students),
        stream_keys=keys.streams,
        test=test,
        shared=d.shared,
    )
