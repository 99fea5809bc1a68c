"""The typed seam for networks in the alpha-trick parametrisation (docs/theory.md section 7;
Paccolat et al. 2021, Geiger et al. 2020): ``AlphaModel``.

A network f(w, x) with trained parameters w (any pytree) is trained through

    F(w, x) = alpha (f(w, x) - f(w0, x)),     L(w) = (1 / (alpha^2 p)) sum_mu smask_mu
                                                      max(0, 1 - y_mu F(w, x_mu)),

p = sum smask (training sets padded with a sample mask). The hinge-loss trainer
(``hmmjax.train.hinge``) and the NTK analyses (``hmmjax.observables.ntk``) use only this
interface, so a new architecture is one subclass:

- ``params`` and ``replace(params)``: the trained parameters, and the network with others;
- ``__call__(x)``: f for inputs x (..., d), one scalar per input (images are flattened);
- ``step_scale``: eta / dt, the factor between the gradient-descent step and the step in
  time units (h for the mean-field two-layer net, where h Theta = O(1); 1 for networks in
  the NTK parametrisation, where Theta = O(1));
- ``mask_grads(grads)`` and ``unpad()``: zero the gradients of padded parts, and drop
  them (default: nothing is padded);
- ``weight_change(net0)``: the relative change |w - w0| / |w0| that is recorded (default:
  all trained parameters).

``output`` is F; its default evaluates f at w and at w0 by the same computation, so F is
exactly 0 at w = w0 (a vmap over the pair (w, w0) would guarantee it by construction, but
XLA turns the convolutions of such a vmap into grouped ones, 30 times slower on a CPU).
``hinge`` gives the gradient of L, the margins y F and L, by ``jax.value_and_grad`` of
``hinge_loss``; a subclass may write it out (``hmmjax.models.alpha_net.InvariantNet``
does).
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from hmmjax.core.trees import tree_norm

__all__ = ["AlphaModel", "hinge_from_margins", "hinge_loss", "relative_change"]


def relative_change(params: Any, params0: Any) -> Float[Array, ""]:
    """|w - w0| / |w0| over every leaf (Frobenius)."""
    return tree_norm(jax.tree.map(jnp.subtract, params, params0)) / tree_norm(params0)


class AlphaModel(eqx.Module):
    """A network in the alpha-trick parametrisation (see the module docstring)."""

    @property
    @abc.abstractmethod
    def params(self) -> Any:
        """The trained parameters w (a pytree of arrays)."""

    @abc.abstractmethod
    def replace(self, params: Any) -> AlphaModel:
        """The same network with parameters ``params``."""

    @abc.abstractmethod
    def __call__(self, x: Float[Array, "... d"]) -> Float[Array, "..."]:
        """f(w, x), one scalar per input."""

    @property
    @abc.abstractmethod
    def step_scale(self) -> Float[Array, ""]:
        """eta / dt: the gradient-descent step per unit of time."""

    def unpad(self) -> AlphaModel:
        """The network without padded parts (default: itself)."""
        return self

    def mask_grads(self, grads: Any) -> Any:
        """The gradients with those of padded parts zeroed (default: unchanged)."""
        return grads

    def weight_change(self, net0: AlphaModel) -> Float[Array, ""]:
        """|w - w0| / |w0| (default: every trained parameter)."""
        return relative_change(self.params, net0.params)

    def output(
        self, net0: AlphaModel, x: Float[Array, "... d"], alpha: ArrayLike
    ) -> Float[Array, "..."]:
        """F = alpha (f(w, x) - f(w0, x)): the same computation at w and w0, so exactly 0
        when w == w0 (tested for the networks here, in the trainer's compiled step too)."""
        return alpha * (self(x) - net0(x))

    def hinge(
        self,
        net0: AlphaModel,
        x: Float[Array, "P d"],
        y: Float[Array, " P"],
        smask: Float[Array, " P"],
        alpha: ArrayLike,
    ) -> tuple[Any, Float[Array, " P"], Float[Array, ""]]:
        """(dL/dw, margins y F, L) at this network's parameters."""

        def loss(params):
            net = self.replace(params)
            margins = y * net.output(net0, x, alpha)
            return hinge_from_margins(margins, smask, alpha), margins

        (value, margins), grads = jax.value_and_grad(loss, has_aux=True)(self.params)
        return grads, margins, value


def hinge_from_margins(
    margins: Float[Array, " P"], smask: Float[Array, " P"], alpha: ArrayLike
) -> Float[Array, ""]:
    """(1 / (alpha^2 p)) sum_mu smask_mu max(0, 1 - margins_mu), p = sum smask."""
    return jnp.sum(jnp.maximum(0.0, 1.0 - margins) * smask) / (alpha**2 * jnp.sum(smask))


def hinge_loss(
    net: AlphaModel,
    net0: AlphaModel,
    x: Float[Array, "P d"],
    y: Float[Array, " P"],
    smask: Float[Array, " P"],
    alpha: ArrayLike,
) -> Float[Array, ""]:
    """L(w) of the module docstring, written directly from ``net.output``."""
    return hinge_from_margins(y * net.output(net0, x, alpha), smask, alpha)
