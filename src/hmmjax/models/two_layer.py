"""The two-layer network of docs/theory.md section 1, used for students and teachers.

    lambda_k = w_k . x / sqrt(N),      yhat(x) = sum_k v_k g(lambda_k)

A student has K hidden units acting on the input x (dimension N); a teacher has M units
acting on its own input z (x for i.i.d. data, the latent c for the hidden manifold).

Padding (sweeps over K and N compile once): ``pad_network`` appends zero hidden units
(w_k = 0, v_k = 0) and zero input components, and stores the true N in ``dim`` so that
the fields keep their 1/sqrt(N) scaling. A zero unit is inert under SGD: its gradient
carries v_k = 0 and g(0) = 0 for every activation here.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from hmmjax.core.activations import activation
from hmmjax.core.rng import normal

__all__ = [
    "INITS",
    "INIT_SCALE",
    "SECOND_LAYERS",
    "SCALINGS",
    "TwoLayer",
    "init_network",
    "root",
    "pad_tail",
    "pad_network",
]


INITS = ("large", "small")


INIT_SCALE = {"large": 1.0, "small": 1e-3}


"""First-layer initialisations (docs/theory.md 1): w ~ INIT_SCALE[init] * N(0, 1)."""


SECOND_LAYERS = ("ones", "gaussian")


SCALINGS = ("none", "normalise", "meanfield")


class TwoLayer(eqx.Module):
    """Soft committee machine with first layer ``w`` (K, N) and second layer ``v`` (K,)."""

    w: Float[Array, "K N"]
    v: Float[Array, " K"]
    g: str = eqx.field(static=True, default="erf")
    dim: Float[Array, ""] | None = None  # true input dimension of a padded network

    @property
    def width(self) -> int:
        return self.w.shape[-2]

    @property
    def input_dim(self) -> int:
        return self.w.shape[-1]

    @property
    def n(self) -> int | Float[Array, ""]:
        """The N of the 1/sqrt(N) scalings: ``dim`` if padded, else the width of w."""
        return self.input_dim if self.dim is None else self.dim

    def fields(self, x: Float[Array, "... N"]) -> Float[Array, "... K"]:
        """Local fields lambda = w x / sqrt(N)."""
        return x @ self.w.T / root(self.n)

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
    """Draw a two-layer network with the initialisations of docs/theory.md section 1.

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


def root(n: int | Array) -> float | Array:
    """sqrt(n): a Python float for a static size, an array for a padded one."""
    return math.sqrt(n) if isinstance(n, int) else jnp.sqrt(n)


def pad_tail(a: Array, tail: tuple[int, ...]) -> Array:
    """Zero-pad the trailing axes of ``a`` (leading axes: batches) to the sizes ``tail``."""
    lead = a.ndim - len(tail)
    extra = [n - m for n, m in zip(tail, a.shape[lead:], strict=True)]
    if min(extra, default=0) < 0:
        raise ValueError(f"cannot pad trailing axes {a.shape[lead:]} to {tail}")
    return jnp.pad(a, [(0, 0)] * lead + [(0, e) for e in extra])


def pad_network(net: TwoLayer, width: int, input_dim: int) -> TwoLayer:
    """``net`` (or a batch of networks) with zero hidden units up to ``width`` and zero
    input components up to ``input_dim``; the true input dimension goes to ``dim``. Computes
    the same function on (zero-padded) inputs and trains the same under SGD."""
    dim = jnp.broadcast_to(jnp.asarray(net.n, net.w.dtype), net.w.shape[:-2])
    w = pad_tail(net.w, (width, input_dim))
    return TwoLayer(w=w, v=pad_tail(net.v, (width,)), g=net.g, dim=dim)
