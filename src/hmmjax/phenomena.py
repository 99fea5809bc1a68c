"""Measurements of two phenomena of structured data on a finite training set (Goldt et al.,
PRX 2020, the hidden-manifold paper).

1. Networks of all widths first learn the best *linear* predictor: early in training their
   test predictions agree with those of the least-squares linear fit to the training set
   (``linear_predictor``; compare with ``sign_agreement`` and ``mse_between``).
2. "Easy examples": networks trained on the same training set from different initial
   weights or sample orders fit a shared set of samples first, so the fraction of samples
   fitted by *all* n networks is much larger than it would be if each network fitted
   samples independently at its own rate (``fitted_by_all``, ``ratio_stderr``,
   ``first_fit_time``).

Per-network quantities (``linear_predictor``, ``sign_agreement``, ``mse_between``,
``fitted``, ``classification_error``) use jax.numpy and work under jit and vmap; they
reduce over the last axis and keep leading axes. Across-network statistics
(``fitted_by_all``, ``ratio_stderr``, ``first_fit_time``) use NumPy on arrays gathered
after training, with any leading axes (e.g. points, members, times, samples), the sample
axis last.
"""

from __future__ import annotations

import jax.numpy as jnp
import jax.scipy.linalg
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

__all__ = [
    "classification_error",
    "first_fit_time",
    "fitted",
    "fitted_by_all",
    "linear_predictor",
    "mse_between",
    "ratio_stderr",
    "sign_agreement",
]


# --- the best linear predictor (JAX) -----------------------------------------------------


def _ridge_primal(xc: Float[Array, "P N"], yc: Float[Array, " P"], lam) -> Float[Array, " N"]:
    """w = (Xc^T Xc + lam I_N)^-1 Xc^T yc (an N x N solve)."""
    N = xc.shape[1]
    A = xc.T @ xc + lam * jnp.eye(N, dtype=xc.dtype)
    return jax.scipy.linalg.solve(A, xc.T @ yc, assume_a="pos")


def _ridge_dual(xc: Float[Array, "P N"], yc: Float[Array, " P"], lam) -> Float[Array, " N"]:
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
    w = _ridge_primal(xc, yc, lam) if N < P else _ridge_dual(xc, yc, lam)
    return w, ybar - xbar @ w


# --- per-network comparisons (JAX) -------------------------------------------------------


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


# --- across networks (NumPy) -------------------------------------------------------------


def _member_axis(fit: np.ndarray, member_axis: int) -> int:
    """The member axis as a non-negative index; it must not be the (last) sample axis."""
    ax = member_axis + fit.ndim if member_axis < 0 else member_axis
    if not 0 <= ax < fit.ndim - 1:
        raise ValueError(
            f"member_axis {member_axis} must name an axis other than the last (samples) "
            f"of an array with {fit.ndim} axes"
        )
    return ax


def fitted_by_all(fit: ArrayLike, member_axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How much more often all n networks fit the same samples than by chance.

    ``fit`` is boolean with the n networks along ``member_axis`` and the P samples along
    the last axis. With f_i the fraction of samples fitted by network i:

    - frac_all = mean over samples of (fitted by every network),
    - expected = prod_i f_i, what frac_all would be if the networks fitted samples
      independently, each at its own rate,
    - ratio = frac_all / expected (NaN where expected == 0).

    The member and sample axes are removed from all three. ratio = 1 for independent
    networks, up to sampling error (see ``ratio_stderr``); ratio > 1 means shared "easy
    examples". frac_all <= min_i f_i, so ratio <= min_i f_i / prod_i f_i; for n identical
    networks with rate f this bound is reached: ratio = f^(1-n). ratio = 0 for networks
    that never fit the same sample.
    """
    fit = np.asarray(fit, dtype=bool)
    ax = _member_axis(fit, member_axis)
    frac_all = fit.all(axis=ax).mean(axis=-1)
    expected = fit.mean(axis=-1).prod(axis=ax)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(expected > 0, frac_all / expected, np.nan)
    return frac_all, expected, ratio


def ratio_stderr(
    fit: ArrayLike, member_axis: int, *, assume_independent: bool = True
) -> np.ndarray:
    """Standard error of ``fitted_by_all``'s ratio r = F / prod_i m_i (delta method).

    F = mean_mu z_mu with z_mu = prod_i s_i,mu, and m_i = mean_mu s_i,mu, all means over the
    same P samples. To first order r - r0 = r0 mean_mu h_mu with

        h_mu = z_mu / F - sum_i s_i,mu / m_i,

    so stderr = r sqrt(Var h / P). ``assume_independent=False`` estimates Var h from the
    samples (valid for any dependence between networks, large P). With
    ``assume_independent=True`` (the null hypothesis for a test of ratio = 1) the networks
    fit samples independently with rates p_i and q = prod_i p_i; then Cov(z, s_i) = q (1-p_i),
    Cov(s_i, s_j) = 0 for i != j, and

        Var h = (1/q - 1) - sum_i (1/p_i - 1),   stderr = sqrt(Var h / P),

    evaluated at p_i = m_i. It is smaller than the naive sqrt((1/q - 1) / P) because the
    rates are estimated on the same samples, and vanishes for n = 1 (r = 1 exactly). NaN
    where a rate (or F) is 0. The member and sample axes are removed.
    """
    fit = np.asarray(fit, dtype=bool)
    ax = _member_axis(fit, member_axis)
    P = fit.shape[-1]
    m = fit.mean(axis=-1, keepdims=True)  # (..., n, ..., 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if assume_independent:
            m = m[..., 0]
            q = m.prod(axis=ax)
            var = (1 / q - 1) - (1 / m - 1).sum(axis=ax)
            return np.where(q > 0, np.sqrt(np.maximum(var, 0.0) / P), np.nan)
        z = fit.all(axis=ax)
        F = z.mean(axis=-1, keepdims=True)
        h = z / F - (fit / m).sum(axis=ax)
        r = F[..., 0] / m[..., 0].prod(axis=ax)
        ok = (F[..., 0] > 0) & (m[..., 0] > 0).all(axis=ax)
        return np.where(ok, r * np.sqrt(h.var(axis=-1) / P), np.nan)


def first_fit_time(fit: ArrayLike, times: ArrayLike, for_good: bool = True) -> np.ndarray:
    """When each sample is first fitted: ``fit`` is (..., n_times, P), ``times`` (n_times,).

    for_good=True: the first time from which the sample stays fitted to the last time
    ("learned for good"); NaN if it is not fitted at the last time. for_good=False: the
    first time it is fitted at all; NaN if never. Returns (..., P) floats.
    """
    fit = np.asarray(fit, dtype=bool)
    times = np.asarray(times, dtype=float)
    if fit.ndim < 2 or times.shape != (fit.shape[-2],):
        raise ValueError(f"fit {fit.shape} needs axes (..., n_times, P), times {times.shape}")
    if for_good:  # fitted at every time from t on: an AND accumulated backwards in time
        fit = np.flip(np.logical_and.accumulate(np.flip(fit, axis=-2), axis=-2), axis=-2)
    first = np.argmax(fit, axis=-2)
    return np.where(fit.any(axis=-2), times[first], np.nan)
