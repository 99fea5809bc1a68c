"""Activation functions g and manifold non-linearities f, with their Gaussian constants.

Every non-linearity is known by a name (``"erf"``, ``"linear"``, ``"relu"``, ``"tanh"``,
``"sign"``, ``"softplus"``). ``erf`` means g(x) = erf(x / sqrt 2), the scaling used by the theory
(docs/theory.md section 1). The Gaussian constants of a non-linearity f are, for u ~ N(0, 1),

    mu0 = E f(u),   mu1 = E[u f(u)],   f2 = E f(u)^2,
    mu_star = f2 - mu0^2 - mu1^2,      zeta = f2 - mu1^2.

They are computed by quadrature, never typed in by hand: Gauss-Hermite for smooth f, and
Gauss-Legendre split at the kinks for f with a jump or a kink (sign, ReLU), where
Gauss-Hermite converges only algebraically.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import erf as _erf

__all__ = [
    "Activation",
    "NAMES",
    "activation",
    "GaussianConstants",
    "gaussian_expectation",
    "gaussian_constants",
]


_SQRT2 = math.sqrt(2.0)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


@dataclass(frozen=True)
class Activation:
    """A scalar non-linearity and its derivative (both elementwise on arrays).

    ``kinks`` lists the points where the function or its derivative jumps; quadrature
    splits the real line there.
    """

    name: str
    fn: Callable[[jax.Array], jax.Array]
    deriv: Callable[[jax.Array], jax.Array]
    kinks: tuple[float, ...] = ()


_TABLE: dict[str, Activation] = {
    "erf": Activation(
        "erf",
        lambda x: _erf(x / _SQRT2),
        lambda x: _SQRT_2_OVER_PI * jnp.exp(-0.5 * x * x),
    ),
    "linear": Activation("linear", lambda x: x, lambda x: jnp.ones_like(x)),
    # jax.nn.relu: under autodiff its derivative at 0 is 0, as the hand-written one
    "relu": Activation("relu", jax.nn.relu, lambda x: (x > 0).astype(x.dtype), kinks=(0.0,)),
    "tanh": Activation("tanh", jnp.tanh, lambda x: 1.0 - jnp.tanh(x) ** 2),
    "sign": Activation("sign", jnp.sign, lambda x: jnp.zeros_like(x), kinks=(0.0,)),
    "softplus": Activation("softplus", jax.nn.softplus, jax.nn.sigmoid),
}


NAMES: tuple[str, ...] = tuple(_TABLE)


def activation(name: str) -> Activation:
    """Look up a non-linearity by name; a ``ValueError`` lists the allowed names."""
    try:
        return _TABLE[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation {name!r}; allowed: {', '.join(NAMES)}") from None


@dataclass(frozen=True)
class GaussianConstants:
    """Gaussian constants of a non-linearity f (docs/theory.md section 2)."""

    mu0: float
    mu1: float
    f2: float

    @property
    def mu_star(self) -> float:
        return self.f2 - self.mu0**2 - self.mu1**2

    @property
    def zeta(self) -> float:
        return self.f2 - self.mu1**2


def _quadrature_rule(kinks: tuple[float, ...], order: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of a rule for E h(u), u ~ N(0, 1)."""
    if not kinks:
        x, w = np.polynomial.hermite_e.hermegauss(order)
        return x, w / math.sqrt(2.0 * math.pi)
    # Piecewise Gauss-Legendre on [-L, k_1], [k_1, k_2], ..., [k_n, L] with the Gaussian
    # density folded into the weights; |u| > L = 40 carries less than 1e-300 of the mass.
    edges = np.concatenate([[-40.0], np.sort(np.asarray(kinks, float)), [40.0]])
    t, wt = np.polynomial.legendre.leggauss(order)
    xs, ws = [], []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        x = 0.5 * (b - a) * t + 0.5 * (a + b)
        xs.append(x)
        ws.append(0.5 * (b - a) * wt * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi))
    return np.concatenate(xs), np.concatenate(ws)


def gaussian_expectation(
    h: Callable[[jax.Array], jax.Array], kinks: tuple[float, ...] = (), order: int = 200
) -> float:
    """E h(u) for u ~ N(0, 1), in float64, by quadrature (see the module docstring)."""
    x, w = _quadrature_rule(kinks, order)
    # Constants are computed eagerly even when called while tracing a jitted function.
    with jax.ensure_compile_time_eval(), jax.enable_x64(True):
        values = np.asarray(h(jnp.asarray(x, dtype=jnp.float64)), dtype=np.float64)
    return float(np.dot(w, values))


@functools.cache
def gaussian_constants(name: str, order: int = 200) -> GaussianConstants:
    """mu0, mu1 and <f^2> of the named non-linearity, by quadrature."""
    act = activation(name)
    f = act.fn
    return GaussianConstants(
        mu0=gaussian_expectation(f, act.kinks, order),
        mu1=gaussian_expectation(lambda u: u * f(u), act.kinks, order),
        f2=gaussian_expectation(lambda u: f(u) ** 2, act.kinks, order),
    )
