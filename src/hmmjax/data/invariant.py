"""Invariant manifolds (docs/theory.md section 7): Gaussian inputs in d dimensions whose
label depends only on the first d_par coordinates.

- stripe (d_par = 1): y = +1 if -0.3 < x_1 < 1.18549, else -1. Phi(1.18549) - Phi(-0.3)
  = 0.5: the classes are balanced.
- cylinder (d_par = 2): y = +1 if x_1^2 + x_2^2 > r2, else -1. The theory page suggests
  r2 = d_par - 2/3 = 4/3, but P(chi2_2 > 4/3) = exp(-2/3) = 0.513 is slightly unbalanced;
  the default here is the median of chi2_2, r2 = 2 ln 2 (``CYLINDER_R2``), which balances
  the classes exactly; ``CYLINDER_R2_THEORY`` is the other value, and the threshold used is
  a recorded parameter (``InvariantData.r2``).

Samples are counter-based (``hmmjax.core.rng.normal_counter``): sample s of a seed does not
depend on how many samples are drawn, so the training sets of one seed are nested in p,
and the test set (its own key) is the same for every lane with that seed.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from hmmjax.core.rng import key_words, normal_counter, seed_key

__all__ = [
    "STRIPE",
    "CYLINDER_R2",
    "CYLINDER_R2_THEORY",
    "D_PAR",
    "labels",
    "InvariantData",
    "sample",
    "lane_keys",
]


STRIPE = (-0.3, 1.18549)


"""The stripe's interval on x_1: Phi(1.18549) - Phi(-0.3) = 0.5."""


CYLINDER_R2 = 2.0 * math.log(2.0)


"""Default cylinder threshold on x_1^2 + x_2^2: the median of chi2_2 (balanced)."""


CYLINDER_R2_THEORY = 4.0 / 3.0


"""the theory's d_par - 2/3: P(y = +1) = exp(-2/3) = 0.513, slightly unbalanced."""


D_PAR = {"stripe": 1, "cylinder": 2}


"""The number of informative coordinates of each model."""


def labels(
    x: Float[Array, "... d"], model: str = "stripe", r2: float = CYLINDER_R2
) -> Float[Array, "..."]:
    """y = +-1 of inputs x (see the module docstring); depends on x[..., :d_par] only."""
    if model == "stripe":
        lo, hi = STRIPE
        inside = (x[..., 0] > lo) & (x[..., 0] < hi)
    elif model == "cylinder":
        inside = x[..., 0] ** 2 + x[..., 1] ** 2 > r2
    else:
        raise ValueError(f"model={model!r}; choose one of {', '.join(D_PAR)}")
    return jnp.where(inside, 1.0, -1.0).astype(x.dtype)


class InvariantData(eqx.Module):
    """The data model: dimension d, "stripe" or "cylinder", the cylinder threshold r2."""

    d: int = eqx.field(static=True, default=5)
    model: str = eqx.field(static=True, default="stripe")
    r2: float = eqx.field(static=True, default=CYLINDER_R2)

    def __check_init__(self):
        if self.model not in D_PAR:
            raise ValueError(f"model={self.model!r}; choose one of {', '.join(D_PAR)}")
        if self.d <= self.d_par:
            raise ValueError(f"d={self.d} must exceed d_par={self.d_par} for {self.model}")

    @property
    def d_par(self) -> int:
        return D_PAR[self.model]

    def labels(self, x: Float[Array, "... d"]) -> Float[Array, "..."]:
        return labels(x, self.model, self.r2)


@eqx.filter_jit
def sample(
    key: PRNGKeyArray, n: int, data: InvariantData, dtype=jnp.float32
) -> tuple[Float[Array, "n d"], Float[Array, " n"]]:
    """Samples 0 .. n-1 of the stream ``key``: x (n, d) and labels y (n,). Sample s does
    not depend on n (counter-based normals)."""
    x = normal_counter(key_words(key), jnp.arange(n), data.d, 1, dtype)[..., 0].T
    return x, data.labels(x)


def lane_keys(seed: int) -> tuple[PRNGKeyArray, PRNGKeyArray, PRNGKeyArray]:
    """(train, init, test) keys of a seed."""
    k = jax.random.split(seed_key(seed), 3)
    return k[0], k[1], k[2]
