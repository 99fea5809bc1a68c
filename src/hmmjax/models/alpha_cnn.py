"""A convolutional network in the alpha-trick parametrisation, for images (docs/theory.md
section 7.1; the deep-network experiment of Paccolat, Petrini, Geiger, Tyloo, Wyart 2021).

Inputs are flattened square images x (..., s^2) with one channel. With ``depth`` layers
of ``width`` channels, kernels k x k (stride 1, "same" zero padding), activation sigma,
all weights N(0, 1) and biases 0 at initialisation (NTK parametrisation):

    a_0 = x reshaped to (1, s, s),
    a_l = c sigma(W_l * a_{l-1} / sqrt(C_{l-1} k^2) + b_l),      l = 1 .. depth,
    f(x) = beta . vec(a_depth) / sqrt(width s^2),

with c = 1 / sqrt(E sigma(z)^2), z ~ N(0, 1) (``gaussian_constants``), so that every
layer's activations have unit mean square at initialisation and f = O(1). In this
parametrisation the NTK is O(1) at any width, so the gradient-descent step is eta = dt
(``step_scale`` = 1). F = alpha (f(w) - f(w0)) is ``AlphaModel.output`` (exactly 0 at
initialisation) and the gradient of the hinge loss is ``jax.value_and_grad`` of it.

Parameters are drawn from one key: layer l's kernel and the readout from
``jax.random.split(key, depth + 1)``.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from hmmjax.core.activations import activation, gaussian_constants
from hmmjax.models.alpha import AlphaModel

__all__ = ["ConvNet", "init_conv_net"]


class ConvNet(AlphaModel):
    """The network of the module docstring: ``kernels`` (C_out, C_in, k, k) per layer,
    ``biases`` (C_out,) per layer, the readout ``beta`` (width s^2,)."""

    kernels: tuple[Float[Array, "C Cin k k"], ...]
    biases: tuple[Float[Array, " C"], ...]
    beta: Float[Array, " Cs2"]
    side: int = eqx.field(static=True)
    act: str = eqx.field(static=True, default="relu")
    gain: float = eqx.field(static=True, default=1.0)  # c = 1 / sqrt(E sigma(z)^2)

    @property
    def params(self) -> tuple[tuple[Array, ...], tuple[Array, ...], Array]:
        return self.kernels, self.biases, self.beta

    def replace(self, params) -> ConvNet:
        kernels, biases, beta = params
        return ConvNet(tuple(kernels), tuple(biases), beta, self.side, self.act, self.gain)

    @property
    def step_scale(self) -> Float[Array, ""]:
        return jnp.ones((), self.beta.dtype)

    @property
    def width(self) -> int:
        return self.kernels[-1].shape[0]

    def __call__(self, x: Float[Array, "... d"]) -> Float[Array, "..."]:
        lead = x.shape[:-1]
        a = x.reshape(-1, 1, self.side, self.side)
        fn = activation(self.act).fn
        for w, b in zip(self.kernels, self.biases, strict=True):
            fan_in = w.shape[1] * w.shape[2] * w.shape[3]
            z = jax.lax.conv_general_dilated(a, w, (1, 1), "SAME") / math.sqrt(fan_in)
            a = self.gain * fn(z + b[:, None, None])
        f = a.reshape(a.shape[0], -1) @ self.beta / math.sqrt(self.beta.shape[0])
        return f.reshape(lead)


def init_conv_net(
    key: PRNGKeyArray,
    side: int,
    *,
    depth: int = 3,
    width: int = 16,
    kernel: int = 3,
    act: str = "relu",
    dtype=jnp.float32,
) -> ConvNet:
    """Kernels and readout ~ N(0, 1), biases 0 (the module docstring)."""
    activation(act)
    if min(side, depth, width, kernel) < 1:
        raise ValueError(
            f"init_conv_net needs side, depth, width, kernel >= 1, got {side}, {depth}, "
            f"{width}, {kernel}"
        )
    keys = jax.random.split(key, depth + 1)
    channels = [1] + [width] * depth
    kernels = tuple(
        jax.random.normal(keys[i], (channels[i + 1], channels[i], kernel, kernel), dtype)
        for i in range(depth)
    )
    biases = tuple(jnp.zeros((width,), dtype) for _ in range(depth))
    beta = jax.random.normal(keys[depth], (width * side * side,), dtype)
    gain = 1.0 / math.sqrt(gaussian_constants(act).f2)
    return ConvNet(kernels, biases, beta, side, act, gain)
