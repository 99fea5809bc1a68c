"""Headline numbers of finite-training-set runs (NumPy and xarray only; the figures are in
:mod:`hmmjax.plots.experiments`).

Finite training sets (``ds.attrs["experiment"] == "finite"``, see
:mod:`hmmjax.train.finite`): a network trained for many passes over P samples is compared
with the best *linear* predictor fitted to the same samples (phenomenon 1: early in
training the network agrees with the linear predictor, then leaves it), and its ensemble
members are asked whether they fit the *same* training samples more often than
independent networks would (phenomenon 2: ``fit_ratio`` = fitted by all / expected if
independent, > 1 for shared "easy examples"). :func:`reduce_finite` brings the curves to
ensemble means per column (data model x label kind) and curve (the other grid axes);
:func:`finite_summary` reduces them to the few numbers a write-up quotes.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from hmmjax.analysis.common import (
    ENSEMBLE_DIMS,
    ensemble_mean,
    grid_points,
    point_key,
    quiet,
)
from hmmjax.analysis.sweep import check_grid, swept_axes

__all__ = [
    "COLUMN_AXES",
    "MAX_FINITE_COLUMNS",
    "FIT_WINDOW",
    "FINITE_CURVES",
    "FiniteData",
    "finite_summary",
    "reduce_finite",
]


COLUMN_AXES = ("model", "labels")  # finite runs: one column of panels per combination


MAX_FINITE_COLUMNS = 6


FIT_WINDOW = (0.05, 0.95)  # fit_ratio is only informative where fit_indep lies inside


FINITE_CURVES = ("eg_mc", "err_test", "err_train", "agree_lin", "fit_ratio", "fit_indep")


@dataclass(frozen=True)
class FiniteData:
    """A finite-training-set dataset reduced to numpy: ensemble means (over members and a
    swept seed) per column (model x labels) and curve (the other grid axes), C order."""

    title: str
    columns: list[dict[str, Any]]  # each column's model/labels values
    curves: list[dict[str, Any]]  # each curve's values of the other grid axes
    t: np.ndarray
    size: int  # runs per curve: members x seeds
    curve: dict[str, np.ndarray]  # FINITE_CURVES -> (column, curve, t); NaN if missing
    fit_ratio_se: np.ndarray  # (column, curve, t), seeds combined
    err_lin: np.ndarray  # (column, curve)
    eg_lin: np.ndarray  # (column, curve)


def finite_summary(ds: xr.Dataset) -> dict[str, float]:
    """Headline numbers of a finite-training-set run, per column and curve of
    :func:`hmmjax.plots.experiments.plot_finite`, as a flat dict of floats (NaN where
    undefined).

    Keys are ``"<point>:<quantity>"`` with ``<point>`` like ``"model=hmm,K=4"`` (``"all"``
    for a single run). Ensemble means (over members and a swept seed) give:

    - ``err_test_final``, ``err_train_final``, ``eg_test_final``: at the last time,
    - ``err_lin``, ``eg_lin``: the linear predictor's test errors,
    - ``agree_lin_first`` (at ``t_agree_first``, the first recorded t > 0),
      ``agree_lin_max`` (at ``t_agree_max``) and ``agree_lin_final``,
    - ``fit_ratio_max``: the maximum over t of ``fit_ratio`` restricted to times where
      ``FIT_WINDOW[0] < fit_indep < FIT_WINDOW[1]`` (outside, the ratio is ~1 trivially:
      everything or nothing is fitted), with ``fit_ratio_max_se``, ``t_fit_ratio_max``
      and ``fit_indep_at_max`` there; NaN if no time is in the window.
    """
    f = reduce_finite(ds)
    t, c = f.t, f.curve
    first = int(np.argmax(t > 0))  # the first recorded t > 0
    agree, ratio, indep = c["agree_lin"], c["fit_ratio"], c["fit_indep"]
    window = (t > 0) & (indep > FIT_WINDOW[0]) & (indep < FIT_WINDOW[1])
    best, at, index = _masked_max(ratio, window, t)
    agree_max, t_agree_max, _ = _masked_max(agree, t > 0, t)
    out = {
        "err_test_final": c["err_test"][..., -1],
        "err_train_final": c["err_train"][..., -1],
        "eg_test_final": c["eg_mc"][..., -1],
        "err_lin": f.err_lin,
        "eg_lin": f.eg_lin,
        "t_agree_first": np.broadcast_to(t[first], f.err_lin.shape),
        "agree_lin_first": agree[..., first],
        "agree_lin_max": agree_max,
        "t_agree_max": t_agree_max,
        "agree_lin_final": agree[..., -1],
        "fit_ratio_max": best,
        "t_fit_ratio_max": at,
        "fit_ratio_max_se": _at(f.fit_ratio_se, index, best),
        "fit_indep_at_max": _at(indep, index, best),
    }
    return {
        f"{point_key({**col, **cur})}:{key}": float(values[i, j])
        for key, values in out.items()
        for (i, col), (j, cur) in itertools.product(enumerate(f.columns), enumerate(f.curves))
    }


def _at(a: np.ndarray, index: np.ndarray, found: np.ndarray) -> np.ndarray:
    """``a`` at ``index`` along its last axis; NaN where ``found`` is NaN."""
    value = np.take_along_axis(a, index[..., None], axis=-1)[..., 0]
    return np.where(np.isfinite(found), value, np.nan)


def _masked_max(
    a: np.ndarray, mask: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximum of ``a`` over its last axis where ``mask`` holds and ``a`` is finite, the
    time there and its index; NaN (index 0) where no such time exists."""
    ok = mask & np.isfinite(a)
    index = np.argmax(np.where(ok, a, -np.inf), axis=-1)
    found = ok.any(axis=-1)
    best = np.take_along_axis(a, index[..., None], axis=-1)[..., 0]
    return np.where(found, best, np.nan), np.where(found, t[index], np.nan), index


def reduce_finite(ds: xr.Dataset) -> FiniteData:
    """Check a finite-training-set dataset and reduce it to a :class:`FiniteData`;
    ``ValueError`` for another experiment, a points grid or more than
    :data:`MAX_FINITE_COLUMNS` columns (model x labels)."""
    kind = ds.attrs.get("experiment", "finite")
    if kind != "finite":
        raise ValueError(f"not a finite-training-set dataset: experiment = {kind!r}")
    if ds.attrs.get("grid_kind", "product") == "points":
        raise ValueError(
            "finite-training-set figures need a product grid; got grid_kind = 'points' "
            "(sweep the axes as a product, or plot the points one by one)"
        )
    if "err_test" not in ds or "t" not in ds["err_test"].dims:
        raise ValueError("finite-training-set dataset lacks 'err_test' over time 't'")
    check_grid(ds, swept_axes(ds), points=False)
    grid = [str(d) for d in ds["err_test"].dims if d not in (*ENSEMBLE_DIMS, "t")]
    cols = [d for d in grid if d in COLUMN_AXES]
    others = [d for d in grid if d not in COLUMN_AXES]
    n_cols = math.prod(ds.sizes[d] for d in cols)
    if n_cols > MAX_FINITE_COLUMNS:
        shape = " x ".join(f"{ds.sizes[d]} {d}" for d in cols)
        raise ValueError(
            f"finite figure: {shape} = {n_cols} columns of panels; at most "
            f"{MAX_FINITE_COLUMNS} (select fewer models/labels, e.g. ds.sel(model=[...]))"
        )
    per = _PerCurve(ds, cols, others)
    t_size = ds.sizes["t"]
    return FiniteData(
        title=str(ds.attrs.get("title", "")),
        columns=grid_points(ds, cols),
        curves=grid_points(ds, others),
        t=np.asarray(ds["t"].values if "t" in ds.coords else np.arange(ds.sizes["t"]), float),
        size=math.prod(ds.sizes[d] for d in ENSEMBLE_DIMS if d in ds["err_test"].dims),
        curve={name: per(ds.get(name), t_size) for name in FINITE_CURVES},
        fit_ratio_se=per(_seed_combined_se(ds.get("fit_ratio_se")), t_size),
        err_lin=per(ds.get("err_lin")),
        eg_lin=per(ds.get("eg_lin")),
    )


@dataclass(frozen=True)
class _PerCurve:
    """Ensemble mean of a variable as an array (column, curve, [t]); for a missing
    variable (``None``), NaN of shape (column, curve, t_size) or (column, curve)."""

    ds: xr.Dataset
    cols: list[str]
    others: list[str]

    def __call__(self, da: xr.DataArray | None, t_size: int | None = None) -> np.ndarray:
        grid = [*self.cols, *self.others]
        if da is None:
            n_cols = math.prod(self.ds.sizes[d] for d in self.cols)
            n_curves = math.prod(self.ds.sizes[d] for d in self.others)
            return np.full((n_cols, n_curves, *([t_size] if t_size else [])), np.nan)
        da = ensemble_mean(da.astype(float))
        da = da.expand_dims({d: self.ds.sizes[d] for d in grid if d not in da.dims})
        values = da.transpose(*grid, ...).values
        n_cols = math.prod(self.ds.sizes[d] for d in self.cols)
        return values.reshape(n_cols, -1, *values.shape[len(grid) :])


def _seed_combined_se(se: xr.DataArray | None) -> xr.DataArray | None:
    """The standard error of a mean over ``seed`` of independent estimates with standard
    errors ``se``: sqrt(mean(se^2) / n); ``se`` itself without a seed dim."""
    if se is None or "seed" not in se.dims:
        return se
    with quiet():
        return np.sqrt((se**2).mean("seed") / se.notnull().sum("seed"))
