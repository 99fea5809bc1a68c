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
function of (stream key, s). A model draws its normals in groups (``groups``: the latent
c; for ``get`` also the noise xi; the label noise last), each from its own sub-stream of
the key (``hmmjax.rng.subkey_words``): component k of sample b of step s of group j is the
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

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from hmmjax.activations import GaussianConstants, activation, gaussian_constants
from hmmjax.networks import TwoLayer, init_network, pad_network, pad_tail, root
from hmmjax.rng import key_words, normal, normal_counter, subkey_words

__all__ = [
    "KINDS",
    "Batch",
    "DataModel",
    "GaussianEquivalent",
    "HiddenManifold",
    "IIDGaussian",
    "make_data_model",
    "pad_model",
]

KINDS = ("iid", "hmm", "hmm_x", "get")


class Batch(NamedTuple):
    """B samples: inputs x (B, N), labels y (B,), the teacher's inputs z (B, dim z)."""

    x: Float[Array, "B N"]
    y: Float[Array, " B"]
    z: Float[Array, "B Z"]


class DataModel(eqx.Module):
    """Base class: a teacher plus a way to turn standard normals into inputs; subclasses
    define ``groups`` (normals per sample, per group) and ``inputs``."""

    teacher: eqx.AbstractVar[TwoLayer]
    noise: eqx.AbstractVar[Float[Array, ""]]
    # subclasses also have a field true_N: the true input dimension if padded, else None

    @property
    def groups(self) -> tuple[int, ...]:
        """How many standard normals one sample's inputs use, per group."""
        raise NotImplementedError

    def inputs(self, *zT: Float[Array, "n P"]) -> tuple[Array, Array]:
        """Inputs x (P, N) and the teacher's inputs (P, dim z) of P samples, from the
        standard normals of each group laid out one column per sample."""
        raise NotImplementedError

    @property
    def input_dim(self) -> int:
        raise NotImplementedError

    @property
    def n(self) -> int | Float[Array, ""]:
        """The input dimension N of the scalings: ``true_N`` if padded."""
        return self.input_dim if self.true_N is None else self.true_N

    @property
    def dtype(self):
        return self.teacher.w.dtype

    def sample_steps(
        self, key: PRNGKeyArray, steps: Int[Array, "*S"], batch: int, noise: bool = True
    ) -> Batch:
        """The ``batch`` samples of each step in ``steps`` (any shape S) of the data stream
        ``key``: leaves of shape (*S, B, ...), all steps drawn in one vectorised call.

        Component k of sample b of step s in group j is ``normal_counter``'s normal
        (k, s, b) of sub-stream j; the label noise is sub-stream ``len(groups)``."""
        steps = jnp.asarray(steps)
        words = key_words(key)

        def draw(j, n):  # (n, P): one column per sample, samples step-major
            z = normal_counter(subkey_words(words, j), steps, n, batch, self.dtype)
            return z.reshape(n, -1)

        x, zt = self.inputs(*(draw(j, n) for j, n in enumerate(self.groups)))
        if self.true_N is not None:
            x = jnp.where(jnp.arange(x.shape[-1]) < self.true_N, x, 0)
        y = self.teacher(zt)
        if noise:
            y = y + self.noise * draw(len(self.groups), 1)[0]
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


class HiddenManifold(DataModel):
    """x = f(F^T c / sqrt D), c ~ N(0, I_D); teacher on c (``teacher_on="c"``) or on x."""

    F: Float[Array, "D N"]
    teacher: TwoLayer
    noise: Float[Array, ""]
    f: str = eqx.field(static=True, default="sign")
    teacher_on: str = eqx.field(static=True, default="c")
    true_N: Float[Array, ""] | None = None
    true_D: Float[Array, ""] | None = None

    @property
    def input_dim(self) -> int:
        return self.F.shape[1]

    @property
    def latent_dim(self) -> int:
        return self.F.shape[0]

    @property
    def d(self) -> int | Float[Array, ""]:
        """The latent dimension D of the scalings: ``true_D`` if padded."""
        return self.latent_dim if self.true_D is None else self.true_D

    @property
    def groups(self) -> tuple[int, ...]:
        return (self.latent_dim,)

    def project(self, cT: Float[Array, "D P"]) -> Float[Array, "P N"]:
        """u = F^T c / sqrt(D) for each column c of ``cT``. Laid out as (D, P)^T (D, N):
        XLA's CPU dot is several times faster than with c as (P, D) when D is small."""
        return jnp.einsum("dp,dn->pn", cT / root(self.d), self.F)

    def inputs(self, zT):
        x = activation(self.f).fn(self.project(zT))
        c = zT.T
        return x, (c if self.teacher_on == "c" else x)


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


def pad_model(model: DataModel, N: int, D: int | None, M: int) -> DataModel:
    """``model`` (or a batch of models) zero-padded to N inputs, D latent directions
    (manifold models) and M teacher units; it draws the same samples as ``model``, with
    the padded components zero."""
    lead = model.teacher.w.shape[:-2]
    n_true = jnp.broadcast_to(jnp.asarray(model.n, model.dtype), lead)
    if isinstance(model, IIDGaussian):
        return IIDGaussian(pad_network(model.teacher, M, N), model.noise, true_N=n_true)
    if not isinstance(model, HiddenManifold):
        raise TypeError(f"cannot pad a {type(model).__name__}")
    teacher = pad_network(model.teacher, M, N if model.teacher_on == "x" else D)
    d_true = jnp.broadcast_to(jnp.asarray(model.d, model.dtype), lead)
    return eqx.tree_at(
        lambda m: (m.F, m.teacher, m.true_N, m.true_D),
        model,
        (pad_tail(model.F, (D, N)), teacher, n_true, d_true),
        is_leaf=lambda x: x is None,
    )
