"""The one-hidden-layer network of the invariant-manifold experiments in the alpha-trick
parametrisation (docs/theory.md section 7; Paccolat et al. 2021, Geiger et al.).

With parameters w = (omega (h, d), b (h,), beta (h,)), all initialised N(0, 1),

    f(w, x) = (1/h) sum_i beta_i sigma(omega_i . x / sqrt(d) + b_i),
    F(w, x) = alpha (f(w, x) - f(w0, x)),
    L(w)    = (1 / (alpha^2 p)) sum_mu max(0, 1 - y_mu F(w, x_mu)).

F is computed unit by unit, alpha (1/h) sum_i (beta_i sigma_i - beta0_i sigma0_i), so it
is exactly 0 at w = w0. Networks are padded to a grid's largest h with zero units and a
unit mask (``mask``); the true h (``width``) enters every 1/h. The activation sigma is one
of the table of ``hmmjax.core.activations``.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from hmmjax.core.activations import activation
from hmmjax.core.rng import key_words, normal_counter
from hmmjax.models.alpha import AlphaModel, relative_change

__all__ = [
    "InvariantNet",
    "init_net",
    "output",
    "hinge_grad",
]


class InvariantNet(AlphaModel):
    """f(x) = (1/h) sum_i mask_i beta_i sigma(omega_i . x / sqrt(d) + b_i).

    ``mask`` marks the true units of a padded network and ``width`` is the true h. F and
    the gradient of the hinge loss are written out unit by unit (``output``,
    ``hinge_grad``); the step scale is h (h Theta = O(1)); the recorded weight change is
    that of the first layer, |omega - omega0| / |omega0|."""

    omega: Float[Array, "H d"]
    b: Float[Array, " H"]
    beta: Float[Array, " H"]
    mask: Float[Array, " H"]
    width: Float[Array, ""]
    act: str = eqx.field(static=True, default="relu")

    @property
    def params(self) -> tuple[Array, Array, Array]:
        """The trained parameters (omega, b, beta)."""
        return self.omega, self.b, self.beta

    def replace(self, params: tuple[Array, Array, Array]) -> InvariantNet:
        omega, b, beta = params
        return InvariantNet(omega, b, beta, self.mask, self.width, self.act)

    @property
    def step_scale(self) -> Float[Array, ""]:
        return self.width

    def mask_grads(self, grads: tuple[Array, Array, Array]) -> tuple[Array, Array, Array]:
        g_omega, g_b, g_beta = grads
        return g_omega * self.mask[:, None], g_b * self.mask, g_beta * self.mask

    def weight_change(self, net0: InvariantNet) -> Float[Array, ""]:
        return relative_change(self.omega, net0.omega)

    def output(self, net0: InvariantNet, x: Float[Array, "... d"], alpha: ArrayLike):
        return output(self, net0, x, alpha)

    def hinge(self, net0: InvariantNet, x, y, smask, alpha):
        return hinge_grad(self, net0, x, y, smask, alpha)

    def preact(self, x: Float[Array, "... d"]) -> Float[Array, "... H"]:
        return x @ self.omega.T / math.sqrt(self.omega.shape[-1]) + self.b

    def units(self, x: Float[Array, "... d"]) -> Float[Array, "... H"]:
        """mask_i beta_i sigma_i(x): unit i's share of h f(x)."""
        return activation(self.act).fn(self.preact(x)) * (self.mask * self.beta)

    def __call__(self, x: Float[Array, "... d"]) -> Float[Array, "..."]:
        return jnp.sum(self.units(x), axis=-1) / self.width

    def unpad(self) -> InvariantNet:
        """The true units only (host side: needs a concrete, unbatched network)."""
        h = int(np.sum(np.asarray(self.mask)))
        return InvariantNet(
            self.omega[:h], self.b[:h], self.beta[:h], self.mask[:h], self.width, self.act
        )


def init_net(
    key: PRNGKeyArray, h: int, d: int, *, width: int | None = None, act: str = "relu",
    dtype=jnp.float32,
) -> InvariantNet:  # fmt: skip
    """omega, b, beta ~ N(0, 1) for h units, padded with zero units to ``width`` (>= h).

    Counter-based: unit i does not depend on h, so narrower networks of a key are the first
    units of wider ones."""
    activation(act)
    width = h if width is None else width
    if width < h:
        raise ValueError(f"cannot pad {h} units to width {width}")
    return _init_units(key, jnp.asarray(h), d, width, act, dtype)


@eqx.filter_jit
def _init_units(key, h: Int[Array, ""], d: int, width: int, act: str, dtype) -> InvariantNet:
    """``init_net`` compiled once per width (h is traced): unit i's omega_i, b_i, beta_i are
    normals 0 .. d-1, d, d+1 of step i of the stream ``key``."""
    words = key_words(key)
    units = jnp.arange(width)

    z = normal_counter(words, units, d + 2, 1, dtype)[..., 0].T  # (width, d + 2)
    mask = (units < h).astype(dtype)
    omega = z[:, :d] * mask[:, None]
    b = z[:, d] * mask
    beta = z[:, d + 1] * mask
    return InvariantNet(omega, b, beta, mask, h.astype(dtype), act)


def output(
    net: InvariantNet, net0: InvariantNet, x: Float[Array, "... d"], alpha: ArrayLike
) -> Float[Array, "..."]:
    """F = alpha (f(w, x) - f(w0, x)), unit by unit: exactly 0 when net == net0."""
    diff = net.units(x) - net0.units(x)
    return alpha * jnp.sum(diff, axis=-1) / net.width


def hinge_grad(
    net: InvariantNet,
    net0: InvariantNet,
    x: Float[Array, "P d"],
    y: Float[Array, " P"],
    smask: Float[Array, " P"],
    alpha: ArrayLike,
) -> tuple[tuple[Array, Array, Array], Float[Array, " P"], Float[Array, ""]]:
    """Gradient of ``hinge_loss`` w.r.t. (omega, b, beta), written out, with the margins
    y F and the loss. With c_mu = -smask_mu y_mu 1[y_mu F_mu < 1] / (alpha p) = dL/df_mu,
    a = sigma(z), s = sigma'(z) (z the pre-activations, (P, h)) and m the unit mask:

        dL/dbeta_i = m_i sum_mu c_mu a_mu,i / h,
        dL/db_i = m_i beta_i sum_mu c_mu s_mu,i / h,
        dL/domega_i = m_i beta_i sum_mu c_mu s_mu,i x_mu / (h sqrt d).
    """
    act = activation(net.act)
    fn, deriv = act.fn, act.deriv
    z = net.preact(x)
    a = fn(z) * net.mask
    F = alpha * ((a * net.beta).sum(-1) - net0.units(x).sum(-1)) / net.width
    margins = y * F
    active = (margins < 1.0) * smask
    p = jnp.sum(smask)
    loss = jnp.sum((1.0 - margins) * active) / (alpha**2 * p)
    c = -(y * active) / (alpha * p)
    s = deriv(z) * (net.mask * c[:, None])
    g_beta = c @ a / net.width
    scale = net.beta / net.width
    g_b = scale * s.sum(0)
    g_omega = scale[:, None] * (s.T @ x) / math.sqrt(x.shape[-1])
    return (g_omega, g_b, g_beta), margins, loss
