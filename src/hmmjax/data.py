"""Data models of THEORY.md section 2: each draws (x, y, z) from a key and a step index.

- ``iid``:   x ~ N(0, I_N); the teacher acts on z = x.
- ``hmm``:   hidden manifold, c ~ N(0, I_D), x = f(F^T c / sqrt D); the teacher acts on z = c.
- ``hmm_x``: the same inputs, the teacher acts on z = x.
- ``get``:   Gaussian equivalent of ``hmm``, x = mu0 + mu1 u + sqrt(mu_star) xi with
  u = F^T c / sqrt D and the constants of f computed by quadrature; the teacher acts on c.

The feature matrix F (D, N) and the teacher are part of the model, drawn once from a key.
Labels are y = teacher(z) + noise * N(0, 1); ``sample(..., noise=False)`` gives clean labels
(test sets).

Randomness: a sample is a function of standard normals, and the normals are counter-based
(``hmmjax.rng.normal_counter``), so the B samples of step s of a data stream are a pure
function of (stream key, s): component k of sample b of step s is the normal (k, s, b), the
component k = n_normals being the label noise. ``sample(key, B)`` (step 0) and
``sample_steps(key, steps, B)`` (a whole block of steps in one vectorised call) follow the
same rule, and noisy and clean labels share their inputs.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from hmmjax.activations import GaussianConstants, activation, gaussian_constants
from hmmjax.networks import TwoLayer, init_network
from hmmjax.rng import key_words, normal, normal_counter

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
    """Base class: a teacher plus a way to turn standard normals into inputs; subclasses
    define ``n_normals`` (normals per sample) and ``inputs``."""

    teacher: eqx.AbstractVar[TwoLayer]
    noise: eqx.AbstractVar[Float[Array, ""]]

    @property
    def n_normals(self) -> int:
        """How many standard normals one sample's inputs use."""
        raise NotImplementedError

    def inputs(self, zT: Float[Array, "n P"]) -> tuple[Array, Array]:
        """Inputs x (P, N) and the teacher's inputs (P, dim z) of P samples, from their
        standard normals laid out one column per sample."""
        raise NotImplementedError

    @property
    def input_dim(self) -> int:
        raise NotImplementedError

    @property
    def dtype(self):
        return self.teacher.w.dtype

    def sample_steps(
        self, key: PRNGKeyArray, steps: Int[Array, "*S"], batch: int, noise: bool = True
    ) -> Batch:
        """The ``batch`` samples of each step in ``steps`` (any shape S) of the data stream
        ``key``: leaves of shape (*S, B, ...), all steps drawn in one vectorised call.

        Component k of sample b of step s is ``normal_counter``'s normal (k, s, b); the
        component k = n_normals is the label noise."""
        steps = jnp.asarray(steps)
        n = self.n_normals
        z = normal_counter(key_words(key), steps, n + 1, batch, self.dtype)
        z = z.reshape(n + 1, -1)  # (n + 1, P): one column per sample, samples step-major
        x, zt = self.inputs(z[:n])
        y = self.teacher(zt)
        if noise:
            y = y + self.noise * z[n]
        lead = (*steps.shape, batch)
        return Batch(
            x=x.reshape(*lead, x.shape[-1]), y=y.reshape(lead), z=zt.reshape(*lead, zt.shape[-1])
        )

    def sample(self, key: PRNGKeyArray, batch: int, noise: bool = True) -> Batch:
        """``batch`` samples: step 0 of the data stream ``key``."""
        return self.sample_steps(key, jnp.zeros((), jnp.uint32), batch, noise)


class IIDGaussian(DataModel):
    """x ~ N(0, I_N), teacher on x."""

    teacher: TwoLayer
    noise: Float[Array, ""]

    @property
    def input_dim(self) -> int:
        return self.teacher.input_dim

    @property
    def n_normals(self) -> int:
        return self.input_dim

    def inputs(self, zT):
        x = zT.T
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

    @property
    def n_normals(self) -> int:
        return self.latent_dim

    def project(self, cT: Float[Array, "D P"]) -> Float[Array, "P N"]:
        """u = F^T c / sqrt(D) for each column c of ``cT``. Laid out as (D, P)^T (D, N):
        XLA's CPU dot is several times faster than with c as (P, D) when D is small."""
        return jnp.einsum("dp,dn->pn", cT / math.sqrt(self.latent_dim), self.F)

    def inputs(self, zT):
        x = activation(self.f).fn(self.project(zT))
        c = zT.T
        return x, (c if self.teacher_on == "c" else x)


class GaussianEquivalent(HiddenManifold):
    """x = mu0 + mu1 u + sqrt(mu_star) xi, the Gaussian equivalent of ``HiddenManifold``."""

    constants: GaussianConstants = eqx.field(static=True, default=None)

    @property
    def n_normals(self) -> int:
        return self.latent_dim + self.input_dim

    def inputs(self, zT):
        cT, xiT = zT[: self.latent_dim], zT[self.latent_dim :]
        u = self.project(cT)
        k = self.constants
        return k.mu0 + k.mu1 * u + math.sqrt(max(k.mu_star, 0.0)) * xiT.T, cT.T


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
