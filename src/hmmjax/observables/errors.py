"""Measurements of two phenomena of structured data on a finite training set (Goldt et al.,
PRX 2020, the hidden-manifold paper).

1. Networks of all widths first learn the best *linear* predictor: early in training their
   test predictions agree with those of the least-squares linear fit to the training set
   (``linear_predictor``; compare with ``sign_agreement`` and ``mse_between``).
2. "Easy examples": networks trained on the same training set from different initial
   weights or sample orders fit a shared set of samples first, so the fraction of samples
   fitted by *all* n networks is much larger than it would be if each network fitted
   samples independently at its own rate (measured across networks from the ``fitted``
   flags by ``hmmjax.analysis.phenomena``).

The per-network quantities here (``linear_predictor``, ``sign_agreement``,
``mse_between``, ``fitted``, ``classification_error``) use jax.numpy and work under jit and
vmap; they reduce over the last axis and keep leading axes.
"""

from __future__ import annotations

import jax.numpy as jnp
import jax.scipy.linalg
from jaxtyping import Array, ArrayLike, Bool, Float

__all__ = [
    "ridge_primal",
    "ridge_dual",
    "linear_predictor",
    "sign_agreement",
    "mse_between",
    "fitted",
    "classification_error",
]


def ridge_primal(xc: Float[Array, "P N"], yc: Float[Array, " P"], lam) -> Float[Array, " N"]:
    """w = (Xc^T Xc + lam I_N)^-1 Xc^T yc (an N x N solve)."""
    N = xc.shape[1]
    A = xc.T @ xc + lam * jnp.eye(N, dtype=xc.dtype)
    return jax.scipy.linalg.solve(A, xc.T @ yc, assume_a="pos")


def ridge_dual(xc: Float[Array, "P N"], yc: Float[Array, " P"], lam) -> Float[Array, " N"]:
    """w = Xc^T (Xc Xc^T + lam I_P)^-1 yc (a P x P solve).

    Centring makes the ones vector a null vector of the Gram matrix G = Xc Xc^T, so for a
    tiny ridge G + lam I is nearly singular along it. Adding c 1 1^T / P with c = tr(G) / P
    lifts that eigenvalue without changing the answer: 1 is an eigenvector of G, yc is
    orthogonal to it (so the solution has no component along 1), and Xc^T 1 = 0.
    """
    P = xc.shape[0]
    G = xc @ xc.T
    c = jnp.trace(G) / P
    A = G + (c / P) * jnp.ones((P, P), xc.dtype) + lam * jnp.eye(P, dtype=xc.dtype)
    return xc.T @ jax.scipy.linalg.solve(A, yc, assume_a="pos")


def linear_predictor(
    x: Float[Array, "P N"], y: Float[Array, " P"], ridge: float | Float[Array, ""] = 1e-6
) -> tuple[Float[Array, " N"], Float[Array, ""]]:
    """The least-squares linear predictor yhat = x @ w + b on the training set (x, y).

    Minimises sum_mu (y_mu - x_mu . w - b)^2 + ridge P |w|^2 (the bias is not penalised,
    so the ridge is on the scale of the mean squared error). With xbar, ybar the sample
    means and Xc = x - xbar, yc = y - ybar the centred data, lam = ridge P:

        w = (Xc^T Xc + lam I_N)^-1 Xc^T yc = Xc^T (Xc Xc^T + lam I_P)^-1 yc,
        b = ybar - xbar . w.

    The primal form (N x N) is used when N < P, the dual form (P x P) otherwise; the choice
    is made from the static shapes. For P <= N and ridge -> 0 the dual form gives the
    minimum-norm w among those that interpolate the training set (w lies in the row space
    of x). The ridge keeps the solve defined for P < N; being tiny, it needs float64 to
    give the interpolant accurately.
    """
    P, N = x.shape
    xbar = jnp.mean(x, axis=0)
    ybar = jnp.mean(y)
    xc, yc = x - xbar, y - ybar
    lam = jnp.asarray(ridge, x.dtype) * P
    w = ridge_primal(xc, yc, lam) if N < P else ridge_dual(xc, yc, lam)
    return w, ybar - xbar @ w


def sign_agreement(a: ArrayLike, b: ArrayLike) -> Float[Array, "..."]:
    """Fraction of entries where sign(a) == sign(b) over the last axis (0 counts as +)."""
    a, b = jnp.asarray(a), jnp.asarray(b)
    return jnp.mean((a >= 0) == (b >= 0), axis=-1)


def mse_between(a: ArrayLike, b: ArrayLike) -> Float[Array, "..."]:
    """0.5 mean (a - b)^2 over the last axis."""
    a, b = jnp.asarray(a), jnp.asarray(b)
    return 0.5 * jnp.mean((a - b) ** 2, axis=-1)


def fitted(y: ArrayLike, yhat: ArrayLike) -> Bool[Array, "..."]:
    """Whether each sample's sign is predicted correctly: y yhat > 0."""
    return jnp.asarray(y) * jnp.asarray(yhat) > 0


def classification_error(y: ArrayLike, yhat: ArrayLike) -> Float[Array, "..."]:
    """Fraction of samples not fitted, over the last axis."""
    return jnp.mean(~fitted(y, yhat), axis=-1)
