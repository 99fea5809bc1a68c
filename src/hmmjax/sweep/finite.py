"""The lanes of a finite-training-set grid (``finite.P > 0``, ``hmmjax.train.finite``).

A point's P training samples are the first P samples of a data stream of its data model
(drawn with the set-up of an online run, ``hmmjax.sweep.setup.build``) or a split of a
real data set (``hmmjax.data.real``); labels as ``finite.labels``. Every member trains on
the same set from its own initial weights and sample order; the test set carries the
predictions of the best linear predictor fitted to the same training set.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from hmmjax.config.schema import REAL_DATA
from hmmjax.core.trees import stack
from hmmjax.data.real import load, split
from hmmjax.models.two_layer import pad_network, pad_tail
from hmmjax.observables.errors import (
    linear_predictor,
)
from hmmjax.sweep.lanes import Lanes
from hmmjax.sweep.setup import build, draw_students, dtype_of, run_keys
from hmmjax.train.finite import FiniteTrainer, TestSet, TrainingSet, training_batch

__all__ = ["build_finite_lanes", "epochs"]


def _signs(y: Array) -> Array:
    return jnp.where(y >= 0, 1.0, -1.0).astype(y.dtype)


def _sets(cfg, keys, dtype):
    """(x_train, y_train, x_test, y_test, students) of a point, labels as
    ``finite.labels``: a data model's set-up is drawn as for an online run
    (``setup.build``: model, students, test set), the training set from its own key."""
    f = cfg.finite
    if cfg.data.model in REAL_DATA:
        train, test = split(load(cfg.data.model, cfg.data.path), f.P, cfg.run.test_size,
                            cfg.run.seed)  # fmt: skip
        arrays = (jnp.asarray(a, dtype) for a in (train.x, train.y, test.x, test.y))
        return (*arrays, draw_students(cfg, keys.students))
    setup = build(cfg)
    train = training_batch(setup.model, keys.train, f.P)
    y_train, y_test = train.y, setup.test.y
    if f.labels != "teacher":
        y_train, y_test = _signs(y_train), _signs(y_test)
    return train.x, y_train, setup.test.x, y_test, setup.students


def _point(cfg, sizes) -> tuple:
    """One grid point, padded to ``sizes`` = (K, N) unless None: (states, trainer, data,
    keys, test)."""
    dtype = dtype_of(cfg)
    keys = run_keys(cfg)
    x, y, x_test, y_test, students = _sets(cfg, keys, dtype)
    if cfg.finite.labels == "random":
        y = y[jax.random.permutation(jax.random.fold_in(keys.train, 1), y.shape[0])]
    w_lin, b_lin = linear_predictor(x, y)
    test = TestSet(x=x_test, y=y_test, y_lin=x_test @ w_lin + b_lin)
    if sizes is not None:
        K, N = sizes
        students = pad_network(students, K, N)
        x, test = pad_tail(x, (N,)), test._replace(x=pad_tail(test.x, (N,)))
    trainer = FiniteTrainer(
        lr=jnp.asarray(cfg.sgd.lr, dtype),
        kappa=jnp.asarray(cfg.sgd.kappa, dtype),
        batch=cfg.sgd.batch,
        train_second=cfg.student.train_second,
        optimizer=cfg.finite.optimizer,
        momentum=cfg.finite.momentum,
    )
    states = jax.vmap(trainer.init)(students)
    data = TrainingSet(x=x, y=y, shuffle=cfg.finite.shuffle)
    return states, trainer, data, keys.streams, test


def build_finite_lanes(cfgs):
    """Every point of a finite-set grid, padded to the grid's largest K and N and stacked
    (a ``sweep.Lanes``)."""
    shapes = {(c.student.K, c.data.N) for c in cfgs}
    sizes = tuple(max(s) for s in zip(*shapes, strict=True)) if len(shapes) > 1 else None
    return stack([Lanes(*_point(c, sizes)) for c in cfgs])  # one point per lane: one_per_lane


def epochs(cfgs, times: np.ndarray) -> np.ndarray | None:
    """Epochs at the recording times, t N batch / P (None if the points differ)."""
    per = {c.data.N * c.sgd.batch / c.finite.P for c in cfgs}
    return times * per.pop() if len(per) == 1 else None
