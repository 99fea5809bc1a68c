"""Generalisation error, two ways, and the measurements recorded during training.

- analytic: eg = 0.5 u^T I2(C) u with u = (-v, A) and C the covariance of the local fields
  (THEORY.md section 4); exact for i.i.d. inputs, the Gaussian-equivalent prediction on
  manifold data. Available for g in {erf, linear} and manifold non-linearities with
  mu0 = 0; otherwise NaN.
- Monte Carlo: 0.5 mean (y - yhat)^2 over a fixed, noise-free test set (any g, any f).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, Float

from hmmjax.activations import gaussian_constants
from hmmjax.data import Batch, DataModel, HiddenManifold
from hmmjax.integrals import i2
from hmmjax.networks import TwoLayer
from hmmjax.order_params import overlaps

__all__ = ["ANALYTIC_G", "Measurement", "analytic_available", "eg_analytic", "eg_mc", "measure"]

ANALYTIC_G = ("erf", "linear")


class Measurement(NamedTuple):
    """What is recorded at each time: both errors, Q, R and the second layer v."""

    eg: Float[Array, ""]
    eg_mc: Float[Array, ""]
    Q: Float[Array, "K K"]
    R: Float[Array, "K M"]
    v: Float[Array, " K"]


def analytic_available(student: TwoLayer, model: DataModel) -> bool:
    """Whether the closed-form eg applies (static: decided at trace time)."""
    if student.g not in ANALYTIC_G or model.teacher.g != student.g:
        return False
    if isinstance(model, HiddenManifold):
        return abs(gaussian_constants(model.f).mu0) < 1e-12
    return True


def eg_analytic(student: TwoLayer, model: DataModel) -> Float[Array, ""]:
    """0.5 u^T I2(C) u from the order parameters; NaN where no closed form applies."""
    if not analytic_available(student, model):
        return jnp.asarray(jnp.nan, student.w.dtype)
    ov = overlaps(student.w, model)
    C = jnp.block([[ov.Q, ov.R], [ov.R.T, ov.T]])
    u = jnp.concatenate([-student.v, model.teacher.v])
    return 0.5 * u @ i2(C, student.g) @ u


def eg_mc(student: TwoLayer, test: Batch) -> Float[Array, ""]:
    """0.5 mean (y - yhat)^2 over the test set (labels noise-free)."""
    return 0.5 * jnp.mean((test.y - student(test.x)) ** 2)


def measure(student: TwoLayer, model: DataModel, test: Batch) -> Measurement:
    ov = overlaps(student.w, model)
    return Measurement(
        eg=eg_analytic(student, model), eg_mc=eg_mc(student, test), Q=ov.Q, R=ov.R, v=student.v
    )
