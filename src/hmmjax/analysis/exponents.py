"""Learning-curve exponents: least-squares fits of eps(p) ~ p^-beta with standard errors,
and the exponents predicted for invariant manifolds (docs/theory.md section 7). NumPy only.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["fit_exponent", "predicted_exponents"]


def fit_exponent(
    p: ArrayLike, err: ArrayLike, weights: ArrayLike | None = None
) -> tuple[float, float]:
    """beta and its standard error from a least-squares fit -log(err) = beta log(p) + c.

    ``err`` is (n_p,) or (n_seeds, n_p). For one curve without weights: ordinary least
    squares, the standard error from the residuals (0 for an exact power law). With
    seeds: the fit is to -log(mean over seeds), weighted by 1 / sigma_i^2 with sigma_i the
    standard error of -log(mean err) by the delta method, std(err) / (mean err sqrt(n)),
    and the standard error is that of a weighted fit with known variances,
    1 / sqrt(sum_i w_i (u_i - u_w)^2) (u = log p, u_w the weighted mean). ``weights``
    (n_p,) given explicitly (1 / sigma^2 of -log err) are used the same way. Points with
    err <= 0 are dropped.
    """
    u = np.log(np.asarray(p, dtype=float))
    err = np.asarray(err, dtype=float)
    known = weights is not None or err.ndim == 2
    if err.ndim == 2:
        n = err.shape[0]
        mean = err.mean(axis=0)
        sigma = err.std(axis=0, ddof=1) / (np.sqrt(n) * np.where(mean > 0, mean, 1.0))
        if weights is None:
            floor = np.max(sigma) * 1e-3 if np.max(sigma) > 0 else 1.0
            weights = 1.0 / np.maximum(sigma, floor) ** 2
        err = mean
    w = np.ones_like(u) if weights is None else np.asarray(weights, dtype=float)
    keep = err > 0
    u, v, w = u[keep], -np.log(err[keep]), w[keep]
    if u.size < 2:
        raise ValueError("fit_exponent needs at least two points with err > 0")
    uw = np.sum(w * u) / np.sum(w)
    suu = np.sum(w * (u - uw) ** 2)
    beta = np.sum(w * (u - uw) * v) / suu
    if known:
        stderr = 1.0 / np.sqrt(suu)
    else:
        resid = v - (np.sum(w * v) / np.sum(w) + beta * (u - uw))
        stderr = np.sqrt(np.sum(resid**2) / max(u.size - 2, 1) / suu) if u.size > 2 else np.nan
    return float(beta), float(stderr)


def predicted_exponents(d: int, d_par: int) -> dict[str, float]:
    """docs/theory.md 7: beta_lazy = d / (3d - 2); beta_feature = (2d - 1) / (3d - 2) for d_par = 1,
    (d + (d - d_par) / 2) / (3d - 2) otherwise."""
    lazy = d / (3 * d - 2)
    if d_par == 1:
        feature = (2 * d - 1) / (3 * d - 2)
    else:
        feature = (d + (d - d_par) / 2) / (3 * d - 2)
    return {"lazy": lazy, "feature": feature}
