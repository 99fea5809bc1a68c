"""Generalisation error, two ways, and the measurements recorded during training.

- analytic: eg = 0.5 u^T I2(C) u with u = (-v, A) and C the covariance of the local fields
  (docs/theory.md section 4); exact for i.i.d. inputs, the Gaussian-equivalent prediction on
  manifold data. Available for g in {erf, linear} and manifold non-linearities with
  mu0 = 0; otherwise NaN.
- Monte Carlo: 0.5 mean (y - yhat)^2 over a fixed, noise-free test set (any g, any f).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, Float

from hmmjax.core.activations import gaussian_constants
from hmmjax.core.integrals import eg
from hmmjax.data.base import AbstractDataModel, Batch
from hmmjax.data.gaussian import HiddenManifold, IIDGaussian
from hmmjax.models.two_layer import TwoLayer
from hmmjax.observables.order_params import overlaps

__all__ = ["ANALYTIC_G", "Measurement", "analytic_available", "eg_analytic", "eg_mc", "measure"]


ANALYTIC_G = ("erf", "linear")


class Measurement(NamedTuple):
    """What is recorded at each time: both errors, Q, R and the second layer v."""

    eg: Float[Array, ""]
    eg_mc: Float[Array, ""]
    Q: Float[Array, "K K"]
    R: Float[Array, "K M"]
    v: Float[Array, " K"]


def analytic_available(student: TwoLayer, model: AbstractDataModel) -> bool:
    """Whether the closed-form eg applies (static: decided at trace time)."""
    if student.g not in ANALYTIC_G or model.teacher.g != student.g:
        return False
    if isinstance(model, HiddenManifold):
        return abs(gaussian_constants(model.f).mu0) < 1e-12
    return isinstance(model, IIDGaussian)  # other data models: Monte Carlo only


def eg_analytic(student: TwoLayer, model: AbstractDataModel) -> Float[Array, ""]:
    """0.5 u^T I2(C) u from the order parameters; NaN where no closed form applies."""
    if not analytic_available(student, model):
        return jnp.asarray(jnp.nan, student.w.dtype)
    ov = overlaps(student.w, model)
    return eg(ov.Q, ov.R, ov.T, student.v, model.teacher.v, student.g)


def eg_mc(student: TwoLayer, test: Batch) -> Float[Array, ""]:
    """0.5 mean (y - yhat)^2 over the test set (labels noise-free)."""
    return 0.5 * jnp.mean((test.y - student(test.x)) ** 2)


def measure(student: TwoLayer, model: AbstractDataModel, test: Batch) -> Measurement:
    ov = overlaps(student.w, model)
    return Measurement(
        eg=eg_analytic(student, model), eg_mc=eg_mc(student, test), Q=ov.Q, R=ov.R, v=student.v
    )
