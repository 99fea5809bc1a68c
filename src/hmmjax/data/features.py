"""Feature matrices F (D, N) of the hidden manifold, as linear maps (docs/theory.md 2).

A data model never needs F as a matrix: it needs F^T c (its inputs), w F^T (the student's
projections on the latent space, for the order parameters and the ODE) and, for the
spectral ODE, Omega = F F^T / N applied to a few vectors. ``AbstractFeatures`` is that
seam; ``FEATURES`` are the built-in kinds (``data.features``):

- ``gaussian``: i.i.d. N(0, 1) entries, stored densely (D N floats; 2 D N flop a sample).
- ``dct``: D rows of the orthonormal N x N DCT-II matrix C, chosen at random, with random
  signs s on the N columns, times sqrt(N): F = sqrt(N) C[rows] diag(s). Never stored
  (D + N numbers); F^T c and F w are fast transforms, O(N log N) per vector.
- ``hadamard``: the same with the Walsh-Hadamard matrix H (N a power of 2), whose entries
  are then exactly +-1.

For the structured kinds the rows of C (or H) are orthonormal, so Omega = F F^T / N = I_D
exactly: the spectrum is the single point 1 (``orthogonal``), and the entries of F have
mean square 1 like those of the Gaussian F (for ``hadamard`` every entry is +-1).

The Walsh-Hadamard transform is a Kronecker product of small dense Hadamard matrices
(H_N = H_a (x) H_b (x) ..., factors of at most ``HADAMARD_BLOCK``): one small matrix
product per factor instead of log2 N butterfly passes over memory. The DCT-II of an even
length is one real FFT of half the size of a complex one (``dct_transform``, Makhoul's
reordering): 2.6x faster than ``jax.scipy.fft.dct`` on the CPU at N = 2^17.
"""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from hmmjax.config.schema import FEATURES
from hmmjax.core.rng import normal
from hmmjax.models.two_layer import pad_tail

__all__ = [
    "FEATURES",
    "HADAMARD_BLOCK",
    "MAX_DENSE",
    "AbstractFeatures",
    "DenseFeatures",
    "TransformFeatures",
    "as_features",
    "check_features",
    "dct_transform",
    "draw_features",
    "hadamard_factors",
    "hadamard_transform",
]

HADAMARD_BLOCK = 32  # the largest dense Hadamard factor of the fast transform

MAX_DENSE = 2**28  # the most numbers ``AbstractFeatures.dense`` forms (1 GiB in float32)


class AbstractFeatures(eqx.Module):
    """A feature matrix F (D, N) as a linear map; ``kind`` names it (``FEATURES``)."""

    @property
    @abc.abstractmethod
    def shape(self) -> tuple[int, int]:
        """(D, N)."""

    @abc.abstractmethod
    def lift(self, cT: Float[Array, "D P"]) -> Float[Array, "P N"]:
        """(F^T c)^T for each column c of ``cT``: the inputs' pre-activations, unscaled."""

    @abc.abstractmethod
    def apply(self, w: Float[Array, "*B N"]) -> Float[Array, "*B D"]:
        """w F^T for each row w: projections of N-vectors on the latent space."""

    @abc.abstractmethod
    def gram(self, U: Float[Array, "D n"]) -> Float[Array, "D n"]:
        """Omega U = F F^T U / N, Omega never formed."""

    @property
    def orthogonal(self) -> bool:
        """Whether Omega = F F^T / N is exactly the identity (a one-point spectrum)."""
        return False

    def dense(self) -> Float[Array, "D N"]:
        """The explicit matrix (tests, small sizes): F = (F^T I_D)^T by ``lift``, D N
        numbers (refused above ``MAX_DENSE``)."""
        D, N = self.shape
        if D * N > MAX_DENSE:
            raise MemoryError(
                f"{type(self).__name__} ({self.kind}, D = {D}, N = {N}) is never stored; "
                f"forming it needs D N = {D * N:.3g} numbers (at most {MAX_DENSE:.3g}: "
                "hmmjax.data.features.MAX_DENSE); use lift / apply / gram"
            )
        return self.lift(jnp.eye(D, dtype=self.dtype))

    @property
    @abc.abstractmethod
    def dtype(self): ...

    def astype(self, dtype) -> AbstractFeatures:
        """These features with their floating-point arrays in ``dtype`` (e.g. float64 for the
        ODE's set-up, under ``jax.enable_x64``)."""
        return jax.tree.map(
            lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, self
        )

    def pad(self, D: int, N: int) -> AbstractFeatures:
        """F zero-padded to (D, N) (grids over D or N)."""
        if (D, N) == self.shape:
            return self
        raise TypeError(
            f"cannot pad {type(self).__name__} features from {self.shape} to {(D, N)}: "
            'grids over D or N need data.features = "gaussian"'
        )


class DenseFeatures(AbstractFeatures):
    """F stored as a matrix (the Gaussian F, or any F given explicitly)."""

    matrix: Float[Array, "D N"]

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape[-2], self.matrix.shape[-1]

    @property
    def dtype(self):
        return self.matrix.dtype

    def lift(self, cT):
        # laid out as (D, P)^T (D, N): XLA's CPU dot is several times faster than with c as
        # (P, D) when D is small
        return jnp.einsum("dp,dn->pn", cT, self.matrix)

    def apply(self, w):
        return w @ self.matrix.T

    def gram(self, U):
        return self.matrix @ (self.matrix.T @ U) / self.shape[1]

    def dense(self):
        return self.matrix

    @property
    def kind(self) -> str:
        return "gaussian"

    def pad(self, D: int, N: int) -> DenseFeatures:
        return DenseFeatures(pad_tail(self.matrix, (D, N)))


def _hadamard_factor(m: int, dtype) -> np.ndarray:
    h = np.ones((1, 1))
    while h.shape[0] < m:
        h = np.block([[h, h], [h, -h]])
    return h.astype(dtype)


def hadamard_factors(n: int) -> list[int]:
    """log2 of the dense factors of the Walsh-Hadamard transform of length 2^n: as few
    as ``HADAMARD_BLOCK`` allows, as even as possible (2^17 = 32 x 16 x 16 x 16: a factor
    of 2 would be a matrix product with 2 terms, as slow as a large one)."""
    b = HADAMARD_BLOCK.bit_length() - 1
    f = max(1, -(-n // b))
    return [n // f + (i < n % f) for i in range(f)]


def hadamard_transform(x: Float[Array, "..."], axis: int = -1) -> Float[Array, "..."]:
    """H x along ``axis``, H the orthonormal Walsh-Hadamard matrix (Sylvester order,
    symmetric, H H = I), of a power-of-2 length N: a Kronecker product of dense factors
    of at most ``HADAMARD_BLOCK`` (``hadamard_factors``), one matrix product each.

    With the transformed axis first, of index (i_1, ..., i_f) and the other axes r, each
    product contracts the leading factor and puts its result last: (i_1, ..., r) ->
    (i_2, ..., r, j_1). After f products the array is (r, j_1, ..., j_f), the transform
    in its natural order. With the factor in the middle of the array instead, XLA copied
    the whole array around each product (its profile of online SGD at N = 2^17)."""
    axis = axis % x.ndim
    N = x.shape[axis]
    n = N.bit_length() - 1
    if N < 1 or 1 << n != N:
        raise ValueError(f"the Walsh-Hadamard transform needs a power of 2, got N = {N}")
    bits = hadamard_factors(n)
    y = jnp.moveaxis(x, axis, 0)
    rest = y.shape[1:]
    y = y.reshape(N, -1)
    for k in bits:
        h = jnp.asarray(_hadamard_factor(1 << k, np.dtype(x.dtype)))
        # full float32 products: no TF32 on GPUs (the transform is exact in +-1 sums)
        y = jnp.einsum("mr,mz->rz", y.reshape(1 << k, -1), h,
                       precision=jax.lax.Precision.HIGHEST)  # fmt: skip
    return jnp.moveaxis(y.reshape(*rest, N), -1, axis) / math.sqrt(N)


def dct_transform(x: Float[Array, "... N"], inverse: bool = False) -> Float[Array, "... N"]:
    """C x along the last axis, C the orthonormal DCT-II matrix (``inverse``: C^T x, the
    orthonormal DCT-III), equal to ``jax.scipy.fft.dct(x, type=2, norm="ortho")`` (and
    ``idct``) to rounding.

    An even length N goes through one real FFT of the reordered vector (Makhoul 1980):
    v = (x_0, x_2, ..., x_{N-2}, x_{N-1}, ..., x_3, x_1), W_k = exp(-i pi k / 2N) rfft(v)_k,
    then (C x)_k = s_k Re W_k for k <= N/2 and (C x)_{N-k} = -s_{N-k} Im W_k for
    0 < k < N/2 (s_0 = 1/sqrt(N), s_k = sqrt(2/N)); the inverse runs these steps
    backwards through irfft. An odd N uses ``jax.scipy.fft``."""
    N = x.shape[-1]
    if N % 2:
        fn = jax.scipy.fft.idct if inverse else jax.scipy.fft.dct
        return fn(x, type=2, norm="ortho", axis=-1)
    half = N // 2
    k = np.arange(half + 1)
    # the twiddles and scales as constants (float64 in NumPy, then the input's precision)
    ctype = jnp.result_type(x.dtype, jnp.complex64)
    turn = np.exp((1j if inverse else -1j) * np.pi * k / (2 * N))
    s = np.full(N, math.sqrt(2 / N))
    s[0] = math.sqrt(1 / N)
    if not inverse:
        v = jnp.concatenate([x[..., ::2], x[..., 1::2][..., ::-1]], axis=-1)
        W = jnp.fft.rfft(v, axis=-1) * jnp.asarray(turn, ctype)
        X = jnp.concatenate([W.real, -W.imag[..., 1:half][..., ::-1]], axis=-1)
        return X * jnp.asarray(s, x.dtype)
    Y = x / jnp.asarray(s, x.dtype)
    im = jnp.concatenate([jnp.zeros_like(Y[..., :1]), -Y[..., half + 1 :][..., ::-1],
                          -Y[..., half : half + 1]], axis=-1)  # fmt: skip
    V = jax.lax.complex(Y[..., : half + 1], im) * jnp.asarray(turn, ctype)
    v = jnp.fft.irfft(V, n=N, axis=-1).astype(x.dtype)
    return jnp.stack([v[..., :half], v[..., half:][..., ::-1]], axis=-1).reshape(x.shape)


class TransformFeatures(AbstractFeatures):
    """F = sqrt(N) U[rows] diag(signs), U the orthonormal N x N DCT-II (``kind = "dct"``)
    or Walsh-Hadamard (``"hadamard"``) matrix; stored as D row indices and N signs."""

    rows: Int[Array, " D"]
    signs: Float[Array, " N"]
    kind: str = eqx.field(static=True, default="dct")

    def __check_init__(self):
        if self.kind not in FEATURES[1:]:
            raise ValueError(
                f"TransformFeatures(kind = {self.kind!r}): allowed {', '.join(FEATURES[1:])}"
            )

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows.shape[-1], self.signs.shape[-1]

    @property
    def dtype(self):
        return self.signs.dtype

    @property
    def orthogonal(self) -> bool:
        return True

    def _transform(self, x, axis=-1, inverse=False):
        """U x along ``axis`` (``inverse``: U^T x)."""
        if self.kind == "hadamard":  # symmetric: U^T = U
            return hadamard_transform(x, axis)
        # the FFT runs along the last axis: another axis is moved there and back
        return jnp.moveaxis(dct_transform(jnp.moveaxis(x, axis, -1), inverse), -1, axis)

    def lift(self, cT):
        N = self.shape[1]
        if self.kind == "hadamard":
            # the N x P transform input (row rows[j] is c_j, the others zero) by a scatter
            # of whole rows, contiguous over the P samples, and the transform along axis 0,
            # whose result comes out as P x N (a gather of the rows was slower: XLA fused
            # the making of c's normals into it); with the transform above, online SGD at
            # N = 2^17, E = 8 runs 1.7x faster than before both (benchmarks/RESULTS.md)
            z = jnp.zeros((N, cT.shape[1]), cT.dtype).at[self.rows].set(cT)
            u = self._transform(z, axis=0).T
        else:  # XLA's FFT is fast along the minor axis only: scatter into P x N
            z = jnp.zeros((cT.shape[1], N), cT.dtype).at[:, self.rows].set(cT.T)
            u = self._transform(z, inverse=True)
        return math.sqrt(N) * self.signs * u

    def apply(self, w):
        N = self.shape[1]
        return math.sqrt(N) * jnp.take(self._transform(self.signs * w), self.rows, axis=-1)

    def gram(self, U):
        return U  # the rows of U are orthonormal: F F^T / N = I_D


def check_features(kind: str, N: int, D: int) -> None:
    """One line naming the key, the value and what is allowed, for a feature matrix that
    cannot be built: an unknown kind, D > N for a transform, N not a power of 2 for
    ``hadamard``."""
    if kind not in FEATURES:
        raise ValueError(f"data.features = {kind!r}: allowed {', '.join(FEATURES)}")
    if kind == "gaussian":
        return
    if D > N:
        raise ValueError(
            f'data.features = "{kind}" takes D rows of an N x N transform: data.D = {D} must '
            f"be at most data.N = {N}"
        )
    if kind == "hadamard" and N & (N - 1):
        raise ValueError(
            f'data.features = "hadamard" needs data.N a power of 2, got {N} '
            f"(nearest: {1 << (N.bit_length() - 1)} or {1 << N.bit_length()}); "
            'or use "dct"'
        )


def draw_features(
    key: PRNGKeyArray, kind: str, D: int, N: int, dtype=jnp.float32
) -> AbstractFeatures:
    """Draw a feature matrix of ``FEATURES``: ``gaussian`` exactly as the model's F has
    always been drawn (``normal(key, (D, N))``); the transforms from the same key: D
    distinct rows uniformly at random, and N random signs."""
    check_features(kind, N, D)
    if kind == "gaussian":
        return DenseFeatures(normal(key, (D, N), dtype))
    kr, ks = jax.random.split(key)
    rows = jax.random.permutation(kr, N)[:D].astype(jnp.int32)
    signs = jax.random.rademacher(ks, (N,), dtype)
    return TransformFeatures(rows=rows, signs=signs, kind=kind)


def as_features(F: Float[Array, "D N"] | AbstractFeatures) -> AbstractFeatures:
    """``F`` as features: a matrix becomes ``DenseFeatures``."""
    return F if isinstance(F, AbstractFeatures) else DenseFeatures(jnp.asarray(F))
