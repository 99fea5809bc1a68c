"""Phenomena across the members of an ensemble trained on one finite training set (the PRX
paper's phenomenon 2), from recorded "fitted" flags: the fraction of samples every member
fits against what independent members would give, its standard error, and the time from
which a sample stays fitted. NumPy only.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["fitted_by_all", "ratio_stderr", "first_fit_time"]


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
