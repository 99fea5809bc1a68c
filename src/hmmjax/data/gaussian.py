"""Data models of docs/theory.md section 2: each draws (x, y, z) from a key and a step index.

- ``iid``:   x ~ N(0, I_N); the teacher acts on z = x.
- ``hmm``:   hidden manifold, c ~ N(0, I_D), x = f(F^T c / sqrt D); the teacher acts on z = c.
- ``hmm_x``: the same inputs, the teacher acts on z = x.
- ``get``:   Gaussian equivalent of ``hmm``, x = mu0 + mu1 u + sqrt(mu_star) xi with
  u = F^T c / sqrt D and the constants of f computed by quadrature; the teacher acts on c.

The feature matrix F (D, N) and the teacher are part of the model, drawn once from a key.
Labels are y = teacher(z) + noise * N(0, 1); ``sample(..., noise=False)`` gives clean labels
(test sets).

Randomness: a sample is a function of standard normals, and the normals are counter-based
(``hmmjax.core.rng.normal_counter``), so the B samples of step s of a data stream are a pure
function of (stream key, s). A model draws its normals in groups (``groups``: the latent
c; for ``get`` also the noise xi; the label noise last), each from its own sub-stream of
the key (``hmmjax.core.rng.subkey_words``): component k of sample b of step s of group j is the
normal (k, s, b) of sub-stream j. A group's normals do not depend on the sizes of the
others, nor on how many components are drawn. ``sample(key, B)`` (step 0) and
``sample_steps(key, steps, B)`` (a whole block of steps in one vectorised call) follow the
same rule, and noisy and clean labels share their inputs.

Padding (sweeps): ``pad_model`` zero-pads F, the teacher and the input dimension to a
grid's maximum and records the true N and D (``true_N``, ``true_D``): the inputs' padded
components are set to zero and every 1/sqrt(N), 1/sqrt(D) keeps its true value, so a
padded model draws the same samples as the unpadded one, followed by zeros.
"""

from __future__ import annotations

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from hmmjax.core.activations import GaussianConstants, activation, gaussian_constants
from hmmjax.data.base import AbstractDataModel, register_data_model
from hmmjax.data.features import AbstractFeatures, as_features, draw_features
from hmmjax.models.two_layer import TwoLayer, init_network, pad_network, root

__all__ = ["KINDS", "IIDGaussian", "HiddenManifold", "GaussianEquivalent", "draw_model"]


KINDS = ("iid", "hmm", "hmm_x", "get")


class IIDGaussian(AbstractDataModel):
    """x ~ N(0, I_N), teacher on x."""

    teacher: TwoLayer
    noise: Float[Array, ""]
    true_N: Float[Array, ""] | None = None

    @property
    def input_dim(self) -> int:
        return self.teacher.input_dim

    @property
    def groups(self) -> tuple[int, ...]:
        return (self.input_dim,)

    def inputs(self, zT):
        x = zT.T
        return x, x

    def pad(self, N: int, D: int | None, M: int) -> IIDGaussian:
        lead = self.teacher.w.shape[:-2]
        n_true = jnp.broadcast_to(jnp.asarray(self.n, self.dtype), lead)
        return IIDGaussian(pad_network(self.teacher, M, N), self.noise, true_N=n_true)


class HiddenManifold(AbstractDataModel):
    """x = f(F^T c / sqrt D), c ~ N(0, I_D); teacher on c (``teacher_on="c"``) or on x.

    ``features``: F as a linear map (``hmmjax.data.features``; an array given here becomes
    ``DenseFeatures``); ``F``: the matrix itself."""

    features: AbstractFeatures = eqx.field(converter=as_features)
    teacher: TwoLayer
    noise: Float[Array, ""]
    f: str = eqx.field(static=True, default="sign")
    teacher_on: str = eqx.field(static=True, default="c")
    true_N: Float[Array, ""] | None = None
    true_D: Float[Array, ""] | None = None

    @property
    def F(self) -> Float[Array, "D N"]:
        """The feature matrix as an array: the stored one of Gaussian features; a structured
        F (``features.kind`` "dct", "hadamard") is formed on demand, D N numbers (refused
        above ``hmmjax.data.features.MAX_DENSE``)."""
        return self.features.dense()

    @property
    def input_dim(self) -> int:
        return self.features.shape[1]

    @property
    def latent_dim(self) -> int:
        return self.features.shape[0]

    @property
    def d(self) -> int | Float[Array, ""]:
        """The latent dimension D of the scalings: ``true_D`` if padded."""
        return self.latent_dim if self.true_D is None else self.true_D

    @property
    def groups(self) -> tuple[int, ...]:
        return (self.latent_dim,)

    def project(self, cT: Float[Array, "D P"]) -> Float[Array, "P N"]:
        """u = F^T c / sqrt(D) for each column c of ``cT`` (``AbstractFeatures.lift``)."""
        return self.features.lift(cT / root(self.d))

    def inputs(self, zT):
        x = activation(self.f).fn(self.project(zT))
        c = zT.T
        return x, (c if self.teacher_on == "c" else x)

    def pad(self, N: int, D: int | None, M: int) -> HiddenManifold:
        lead = self.teacher.w.shape[:-2]
        n_true = jnp.broadcast_to(jnp.asarray(self.n, self.dtype), lead)
        teacher = pad_network(self.teacher, M, N if self.teacher_on == "x" else D)
        d_true = jnp.broadcast_to(jnp.asarray(self.d, self.dtype), lead)
        return eqx.tree_at(
            lambda m: (m.features, m.teacher, m.true_N, m.true_D),
            self,
            (self.features.pad(D, N), teacher, n_true, d_true),
            is_leaf=lambda x: x is None,
        )


class GaussianEquivalent(HiddenManifold):
    """x = mu0 + mu1 u + sqrt(mu_star) xi, the Gaussian equivalent of ``HiddenManifold``."""

    constants: GaussianConstants = eqx.field(static=True, default=None)

    @property
    def groups(self) -> tuple[int, ...]:
        return (self.latent_dim, self.input_dim)

    def inputs(self, cT, xiT):
        u = self.project(cT)
        k = self.constants
        return k.mu0 + k.mu1 * u + math.sqrt(max(k.mu_star, 0.0)) * xiT.T, cT.T


def draw_model(
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
    features: str = "gaussian",
    dtype=jnp.float32,
) -> AbstractDataModel:
    """Draw a data model of ``KINDS``: F of kind ``features`` (``hmmjax.data.features``:
    i.i.d. N(0, 1) entries by default), teacher theta ~ N(0, 1), A = 1 (registered as
    ``iid``, ``hmm``, ``hmm_x``, ``get``; use ``make_data_model``).

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
    F = draw_features(kf, features, D, N, dtype)
    teacher_dim = N if kind == "hmm_x" else D
    teacher = init_network(kt, M, teacher_dim, scaling=teacher_scaling, g=g, dtype=dtype)
    if kind == "get":
        return GaussianEquivalent(
            features=F, teacher=teacher, noise=noise_arr, f=f, constants=gaussian_constants(f)
        )
    return HiddenManifold(
        features=F,
        teacher=teacher,
        noise=noise_arr,
        f=f,
        teacher_on="x" if kind == "hmm_x" else "c",
    )


register_data_model("iid", functools.partial(draw_model, kind="iid"))
register_data_model("hmm", functools.partial(draw_model, kind="hmm"), latent=True,
                    teacher_on_latent=True)  # fmt: skip
register_data_model("hmm_x", functools.partial(draw_model, kind="hmm_x"), latent=True)
register_data_model("get", functools.partial(draw_model, kind="get"), latent=True,
                    teacher_on_latent=True)  # fmt: skip
