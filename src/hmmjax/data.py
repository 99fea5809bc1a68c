"""Data models of THEORY.md section 2: each draws (x, y, z) from a key.

- ``iid``:   x ~ N(0, I_N); the teacher acts on z = x.
- ``hmm``:   hidden manifold, c ~ N(0, I_D), x = f(F^T c / sqrt D); the teacher acts on z = c.
- ``hmm_x``: the same inputs, the teacher acts on z = x.
- ``get``:   Gaussian equivalent of ``hmm``, x = mu0 + mu1 u + sqrt(mu_star) xi with
  u = F^T c / sqrt D and the constants of f computed by quadrature; the teacher acts on c.

The feature matrix F (D, N) and the teacher are part of the model, drawn once from a key.
Labels are y = teacher(z) + noise * N(0, 1); ``sample(..., noise=False)`` gives clean labels
(test sets).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from hmmjax.activations import GaussianConstants, activation, gaussian_constants
from hmmjax.networks import TwoLayer, init_network
from hmmjax.rng import normal

__all__ = [
    "KINDS",
    "Batch",
    "DataModel",
    "GaussianEquivalent",
    "HiddenManifold",
    "IIDGaussian",
    "make_data_model",
]

KINDS = ("iid", "hmm", "hmm_x", "get")


class Batch(NamedTuple):
    """B samples: inputs x (B, N), labels y (B,), the teacher's inputs z (B, dim z)."""

    x: Float[Array, "B N"]
    y: Float[Array, " B"]
    z: Float[Array, "B Z"]


class DataModel(eqx.Module):
    """Base class: a teacher plus a way to draw inputs; subclasses define ``inputs``."""

    teacher: eqx.AbstractVar[TwoLayer]
    noise: eqx.AbstractVar[Float[Array, ""]]

    def inputs(self, key: PRNGKeyArray, batch: int) -> tuple[Array, Array]:
        """Draw ``batch`` inputs x and the teacher's inputs z."""
        raise NotImplementedError

    @property
    def input_dim(self) -> int:
        raise NotImplementedError

    def sample(self, key: PRNGKeyArray, batch: int, noise: bool = True) -> Batch:
        kx, kn = jax.random.split(key)
        x, z = self.inputs(kx, batch)
        y = self.teacher(z)
        if noise:
            y = y + self.noise * normal(kn, y.shape, y.dtype)
        return Batch(x=x, y=y, z=z)


class IIDGaussian(DataModel):
    """x ~ N(0, I_N), teacher on x."""

    teacher: TwoLayer
    noise: Float[Array, ""]

    @property
    def input_dim(self) -> int:
        return self.teacher.input_dim

    def inputs(self, key, batch):
        x = normal(key, (batch, self.input_dim), self.teacher.w.dtype)
        return x, x


class HiddenManifold(DataModel):
    """x = f(F^T c / sqrt D), c ~ N(0, I_D); teacher on c (``teacher_on="c"``) or on x."""

    F: Float[Array, "D N"]
    teacher: TwoLayer
    noise: Float[Array, ""]
    f: str = eqx.field(static=True, default="sign")
    teacher_on: str = eqx.field(static=True, default="c")

    @property
    def input_dim(self) -> int:
        return self.F.shape[1]

    @property
    def latent_dim(self) -> int:
        return self.F.shape[0]

    def latent(self, key, batch):
        c = normal(key, (batch, self.latent_dim), self.F.dtype)
        return c, c @ self.F / math.sqrt(self.latent_dim)

    def inputs(self, key, batch):
        c, u = self.latent(key, batch)
        x = activation(self.f).fn(u)
        return x, (c if self.teacher_on == "c" else x)


class GaussianEquivalent(HiddenManifold):
    """x = mu0 + mu1 u + sqrt(mu_star) xi, the Gaussian equivalent of ``HiddenManifold``."""

    constants: GaussianConstants = eqx.field(static=True, default=None)

    def inputs(self, key, batch):
        kc, kxi = jax.random.split(key)
        c, u = self.latent(kc, batch)
        k = self.constants
        xi = normal(kxi, u.shape, u.dtype)
        return k.mu0 + k.mu1 * u + math.sqrt(max(k.mu_star, 0.0)) * xi, c


def make_data_model(
    key: PRNGKeyArray,
    kind: str,
    *,
    N: int,
    M: int,
    D: int | None = None,
    f: str = "sign",
    g: str = "erf",
    noise: float = 0.0,
    teacher_scaling: str = "none",
    dtype=jnp.float32,
) -> DataModel:
    """Draw a data model: F with i.i.d. N(0, 1) entries, teacher theta ~ N(0, 1), A = 1.

    ``teacher_scaling`` applies the "normalise"/"meanfield" option to the teacher's A.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown data model {kind!r}; allowed: {', '.join(KINDS)}")
    kf, kt = jax.random.split(key)
    noise_arr = jnp.asarray(noise, dtype)
    if kind == "iid":
        teacher = init_network(kt, M, N, scaling=teacher_scaling, g=g, dtype=dtype)
        return IIDGaussian(teacher=teacher, noise=noise_arr)
    if D is None:
        raise ValueError(f"data model {kind!r} needs the latent dimension D")
    activation(f)
    F = normal(kf, (D, N), dtype)
    teacher_dim = N if kind == "hmm_x" else D
    teacher = init_network(kt, M, teacher_dim, scaling=teacher_scaling, g=g, dtype=dtype)
    if kind == "get":
        return GaussianEquivalent(
            F=F, teacher=teacher, noise=noise_arr, f=f, constants=gaussian_constants(f)
        )
    return HiddenManifold(
        F=F, teacher=teacher, noise=noise_arr, f=f, teacher_on="x" if kind == "hmm_x" else "c"
    )
