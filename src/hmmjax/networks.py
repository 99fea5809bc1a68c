"""The two-layer network of THEORY.md section 1, used for students and teachers.

    lambda_k = w_k . x / sqrt(N),      yhat(x) = sum_k v_k g(lambda_k)

A student has K hidden units acting on the input x (dimension N); a teacher has M units
acting on its own input z (x for i.i.d. data, the latent c for the hidden manifold).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from hmmjax.activations import activation
from hmmjax.rng import normal

__all__ = ["INITS", "INIT_SCALE", "SECOND_LAYERS", "SCALINGS", "TwoLayer", "init_network"]

INITS = ("large", "small")
INIT_SCALE = {"large": 1.0, "small": 1e-3}
"""First-layer initialisations (THEORY 1): w ~ INIT_SCALE[init] * N(0, 1)."""
SECOND_LAYERS = ("ones", "gaussian")
SCALINGS = ("none", "normalise", "meanfield")


class TwoLayer(eqx.Module):
    """Soft committee machine with first layer ``w`` (K, N) and second layer ``v`` (K,)."""

    w: Float[Array, "K N"]
    v: Float[Array, " K"]
    g: str = eqx.field(static=True, default="erf")

    @property
    def width(self) -> int:
        return self.w.shape[-2]

    @property
    def input_dim(self) -> int:
        return self.w.shape[-1]

    def fields(self, x: Float[Array, "... N"]) -> Float[Array, "... K"]:
        """Local fields lambda = w x / sqrt(N)."""
        return x @ self.w.T / math.sqrt(self.input_dim)

    def __call__(self, x: Float[Array, "... N"]) -> Float[Array, "..."]:
        return activation(self.g).fn(self.fields(x)) @ self.v


def _check_choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{key}={value!r} is not allowed; choose one of {', '.join(allowed)}")


def init_network(
    key: PRNGKeyArray,
    width: int,
    input_dim: int,
    *,
    init: str | Array = "large",
    second_layer: str = "ones",
    scaling: str = "none",
    g: str = "erf",
    dtype=jnp.float32,
) -> TwoLayer:
    """Draw a two-layer network with the initialisations of THEORY.md section 1.

    ``init``: "large" (w ~ N(0, 1)), "small" (w ~ 1e-3 N(0, 1)) or an explicit (K, N) array.
    ``second_layer``: "ones" (v = 1, the first-layer-only setting) or "gaussian" (N(0, 1)).
    ``scaling``: "none", "normalise" (v / K) or "meanfield" (v / sqrt K).
    """
    activation(g)
    _check_choice("second_layer", second_layer, SECOND_LAYERS)
    _check_choice("scaling", scaling, SCALINGS)
    kw, kv = jax.random.split(key)
    if isinstance(init, str):
        _check_choice("init", init, INITS)
        w = INIT_SCALE[init] * normal(kw, (width, input_dim), dtype)
    else:
        w = jnp.asarray(init, dtype)
        if w.shape != (width, input_dim):
            raise ValueError(
                f"init array has shape {w.shape}; expected (K, N) = ({width}, {input_dim})"
            )
    if second_layer == "ones":
        v = jnp.ones((width,), dtype)
    else:
        v = normal(kv, (width,), dtype)
    v = v / {"none": 1.0, "normalise": width, "meanfield": math.sqrt(width)}[scaling]
    return TwoLayer(w=w, v=v, g=g)
