"""Headline numbers of the invariant-manifold experiment (``ds.attrs["experiment"] ==
"invariant"``, see :mod:`hmmjax.experiments.invariant`), NumPy and xarray only; the
figure is :func:`hmmjax.plots.invariant.plot_invariant`.

The dataset has optional grid dims among ``model``, ``alpha``, ``K`` (the width h) and
``P`` (the training set size p), then ``member`` and ``record`` (a swept ``seed`` counts
as more members); the final state of a lane is its last record (lanes that stopped early
repeat their last state). Every number is a mean over members (and seeds) with its
standard error, std (ddof 1) / sqrt(runs).

:func:`invariant_summary` reduces a dataset to a flat dict of floats; the other functions
are the reductions the figure draws: final values, means and standard errors over runs,
fitted learning-curve exponents and the theory's predicted ones, NTK stages, training curves.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from hmmjax.analysis.common import grid_points, point_key, quiet
from hmmjax.analysis.exponents import fit_exponent, predicted_exponents

__all__ = [
    "GRID_AXES",
    "RUN_DIMS",
    "ALIGN_K",
    "NTK_STAGES",
    "InvariantData",
    "reduce_invariant",
    "final_values",
    "run_stats",
    "series_at",
    "run_matrix",
    "fit_learning_curve",
    "theory_exponents",
    "ntk_stage",
    "training_curves",
    "invariant_summary",
]


GRID_AXES = ("model", "alpha", "K", "P")  # grid dims: lines and panels


RUN_DIMS = ("seed", "member")  # averaged over: the runs of a grid point


ALIGN_K = 10  # invariant_summary: label alignment on the top ALIGN_K eigenvectors


NTK_STAGES = ("init", "final")  # the ``ntk`` dim: NTK at initialisation / at the end


@dataclass(frozen=True)
class InvariantData:
    """An invariant-manifold dataset and its grid dims (in the dataset's order)."""

    ds: xr.Dataset
    grid: tuple[str, ...]
    runs: int  # members x seeds per grid point

    def swept(self, axis: str) -> bool:
        """Whether ``axis`` is a grid dim with more than one value."""
        return axis in self.grid and self.ds.sizes[axis] > 1

    def dims(self, *axes: str) -> list[str]:
        """Those of ``axes`` that are grid dims, in the dataset's order."""
        return [d for d in self.grid if d in axes]

    def points(self, *axes: str) -> list[dict[str, Any]]:
        """Every combination of the values of those ``axes`` that are grid dims."""
        return grid_points(self.ds, self.dims(*axes))

    def fixed(self) -> dict[str, Any]:
        """The largest P and K: where per-alpha panels (NTK, training) look."""
        return {d: self.ds[d].values.max().item() for d in self.dims("P", "K")}

    def fixed_ntk(self) -> dict[str, Any]:
        """The largest K and the largest P with NTK analyses (``invariant.ntk_max_p``
        leaves larger P without them); the largest P if none has them."""
        fixed = self.fixed()
        if "P" in fixed and "kr_err" in self.ds:
            done = self.ds["kr_err"].notnull()
            done = done.any([d for d in done.dims if d != "P"])
            ps = self.ds["P"].values[np.asarray(done)]
            if ps.size:
                fixed["P"] = ps.max().item()
        return fixed

    def value(self, point: dict[str, Any], axis: str) -> Any:
        """``axis`` at ``point``, else its scalar coordinate, else ``None``."""
        if axis in point:
            return point[axis]
        if axis in self.ds.coords and self.ds[axis].ndim == 0:
            return self.ds[axis].item()
        return None

    def regime(self, point: dict[str, Any]) -> str | None:
        """Which predicted slope a learning curve is compared with: ``"lazy"`` at the
        largest alpha, ``"feature"`` at the smallest (one alpha: lazy iff alpha >= 1),
        else None."""
        alpha = self.value(point, "alpha")
        if alpha is None:
            return None
        if not self.swept("alpha"):
            return "lazy" if alpha >= 1 else "feature"
        values = self.ds["alpha"].values
        return "lazy" if alpha == values.max() else "feature" if alpha == values.min() else None


def reduce_invariant(ds: xr.Dataset) -> InvariantData:
    """Check an invariant-manifold dataset; ``ValueError`` if it is not one."""
    kind = ds.attrs.get("experiment")
    if kind != "invariant":
        raise ValueError(f"not an invariant-manifold dataset: experiment = {kind!r}")
    if "err_test" not in ds or not {"member", "record"} <= set(ds["err_test"].dims):
        raise ValueError("invariant dataset lacks 'err_test' over ('member', 'record')")
    dims = ds["err_test"].dims
    unknown = [d for d in dims if d not in (*GRID_AXES, *RUN_DIMS, "record")]
    if unknown:
        raise ValueError(f"invariant dataset: unknown dims {unknown} (grid dims: {GRID_AXES})")
    runs = math.prod(ds.sizes[d] for d in RUN_DIMS if d in dims)
    return InvariantData(ds=ds, grid=tuple(d for d in dims if d in GRID_AXES), runs=runs)


def final_values(ds: xr.Dataset, name: str) -> xr.DataArray:
    """``name`` at the last record (the final state of every lane), as floats."""
    da = ds[name].astype(float)
    return da.isel(record=-1) if "record" in da.dims else da


def run_stats(da: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Mean and standard error over members and seeds, skipping NaN (NaN se for 1 run)."""
    runs = [d for d in RUN_DIMS if d in da.dims]
    da = da.astype(float)
    with quiet():
        n = da.notnull().sum(runs)
        se = da.std(runs, ddof=1) / np.sqrt(n.where(n > 0))
        return da.mean(runs), se


def series_at(da: xr.DataArray, point: dict[str, Any], *dims: str) -> np.ndarray:
    """``da`` at ``point``, its remaining dims ordered as ``dims``, as floats."""
    return np.asarray(da.sel(point).transpose(*dims).values, float)


def run_matrix(da: xr.DataArray, x: str) -> np.ndarray:
    """``da`` (runs and ``x`` only) as an array (run, x)."""
    runs = [d for d in RUN_DIMS if d in da.dims]
    if not runs:
        return np.asarray(da.transpose(x).values, float)[None]
    return np.asarray(da.stack(run=runs).transpose("run", x).values, float)


def fit_learning_curve(p: np.ndarray, runs: np.ndarray) -> tuple[float, float, float]:
    """err ~ exp(c) p^-beta fitted to the runs (run, p) by ``fit_exponent`` (mean over
    runs, weighted by its standard errors with several runs): ``(beta, stderr, c)``;
    runs with a non-finite value are left out; NaN if fewer than two points remain."""
    runs = runs[np.isfinite(runs).all(axis=1)]
    if not len(runs):
        return math.nan, math.nan, math.nan
    try:
        with quiet():
            beta, stderr = fit_exponent(p, runs if len(runs) > 1 else runs[0])
    except ValueError:  # fewer than two points with err > 0
        return math.nan, math.nan, math.nan
    mean = runs.mean(axis=0)
    ok = mean > 0
    return beta, stderr, float(np.mean(np.log(mean[ok]) + beta * np.log(p[ok])))


def _by_model(ds: xr.Dataset) -> dict[str, Any]:
    """``attrs["by_model"]`` as a dict (it may be stored as JSON); empty if absent."""
    by = ds.attrs.get("by_model") or {}
    return json.loads(by) if isinstance(by, str) else dict(by)


def theory_exponents(ds: xr.Dataset, model: Any = None) -> dict[str, float]:
    """the theory's ``lazy`` and ``feature`` exponents and ``d_par`` of ``model`` (from
    ``attrs["by_model"][model]``, else the attributes; computed from d and d_par when the
    exponents are missing); NaN where unknown."""
    attrs = {**ds.attrs, **_by_model(ds).get(str(model), {})}
    lazy, feature = attrs.get("beta_lazy"), attrs.get("beta_feature")
    if (lazy is None or feature is None) and "d" in attrs and int(attrs.get("d_par", 0)) > 0:
        pred = predicted_exponents(int(attrs["d"]), int(attrs["d_par"]))
        lazy, feature = pred["lazy"], pred["feature"]
    return {
        "lazy": math.nan if lazy is None else float(lazy),
        "feature": math.nan if feature is None else float(feature),
        "d_par": float(attrs.get("d_par", math.nan)),
    }


def ntk_stage(da: xr.DataArray, stage: str) -> xr.DataArray:
    """``da`` with the NTK at ``"init"`` or ``"final"`` (index 0 or 1 without labels)."""
    if "ntk" in da.coords:
        return da.sel(ntk=stage)
    return da.isel(ntk=NTK_STAGES.index(stage))


def training_curves(inv: InvariantData, name: str) -> tuple[xr.DataArray, xr.DataArray]:
    """``(clock, values)`` of a training curve at the largest P and K
    (:meth:`InvariantData.fixed`), means over runs per record: the clock is the
    gradient-flow ``time`` (else the ``iteration``), the values are ``name``, for
    ``"loss"`` times alpha^2 when alpha is a coordinate (the mean hinge loss)."""
    ds, fixed = inv.ds, inv.fixed()
    da = ds[name].astype(float)
    if name == "loss" and "alpha" in ds.coords:
        da = da * ds["alpha"] ** 2
    clock = ds["time"] if "time" in ds else ds["iteration"].broadcast_like(da)
    y_mean = run_stats(da.sel(fixed))[0]
    t_mean = run_stats(clock.sel(fixed))[0]
    return t_mean, y_mean


def _align_k(ds: xr.Dataset) -> int:
    """The k of the summary's label alignment: ALIGN_K, or the largest k available at
    every analysed point (a point keeps min(invariant.ntk_top, P) eigenvectors)."""
    n = ds.sizes["eig"]
    k = ds["eig"].values if "eig" in ds.coords else np.arange(1, n + 1)
    has = ds["ntk_align"].notnull()
    analysed = has.any("eig")  # points above invariant.ntk_max_p have no kernel at all
    full = np.asarray((has | ~analysed).all([d for d in has.dims if d != "eig"]))
    usable = k[full] if full.any() else k  # no point analysed at all: every k is NaN alike
    return int(ALIGN_K if ALIGN_K in usable else usable.max())


def _align_at(ds: xr.Dataset, k: int) -> xr.DataArray:
    da = ds["ntk_align"]
    return da.sel(eig=k) if "eig" in ds.coords else da.isel(eig=k - 1)


def invariant_summary(ds: xr.Dataset) -> dict[str, float]:
    """Headline numbers of an invariant-manifold run as a flat dict of floats (NaN where
    undefined). Keys are ``"<point>:<quantity>"`` with ``<point>`` like
    ``"model=stripe,alpha=0.01"`` (``"all"`` without grid dims). Means are over members
    and seeds, ``_se`` their standard errors.

    - per grid point: ``err_test``, ``err_test_se``, ``ratio``, ``ratio_se``, ``Lambda``,
      ``Lambda_se``, ``rel_change``, ``rel_change_se`` (final values; those recorded) and
      ``converged`` (the fraction of runs);
    - with the NTK analyses, per grid point: ``kr_err_init``, ``kr_err_final``,
      ``svm_err_init``, ``svm_err_final`` and ``align_init``, ``align_final``: the label
      alignment on the top k eigenvectors, k = ``"align_k"`` (ALIGN_K or the largest k);
    - with P swept, per (model, alpha, K): ``beta`` and ``beta_se`` fitted to the final
      test error against P (:func:`hmmjax.analysis.exponents.fit_exponent`), the theory's
      ``beta_lazy`` and ``beta_feature`` and ``d_par``.
    """
    inv = reduce_invariant(ds)
    out: dict[str, float] = {}
    _summary_finals(inv, out)
    if "ntk" in ds.dims:
        _summary_ntk(inv, out)
    if inv.swept("P"):
        _summary_exponents(inv, out)
    return out


def _summary_finals(inv: InvariantData, out: dict[str, float]) -> None:
    names = ("err_test", "ratio", "Lambda", "rel_change")
    stats = {name: run_stats(final_values(inv.ds, name)) for name in names if name in inv.ds}
    if "converged" in inv.ds:
        stats["converged"] = (run_stats(inv.ds["converged"])[0], None)
    for point in inv.points(*GRID_AXES):
        key = point_key(point)
        for name, (mean, se) in stats.items():
            out[f"{key}:{name}"] = float(mean.sel(point))
            if se is not None:
                out[f"{key}:{name}_se"] = float(se.sel(point))


def _summary_ntk(inv: InvariantData, out: dict[str, float]) -> None:
    ds = inv.ds
    values = {
        f"{name}_{stage}": run_stats(ntk_stage(ds[name], stage))[0]
        for name in ("kr_err", "svm_err")
        if name in ds
        for stage in NTK_STAGES
    }
    if "ntk_align" in ds:
        k = _align_k(ds)
        out["align_k"] = float(k)
        for stage in NTK_STAGES:
            values[f"align_{stage}"] = run_stats(ntk_stage(_align_at(ds, k), stage))[0]
    for point in inv.points(*GRID_AXES):
        for name, mean in values.items():
            out[f"{point_key(point)}:{name}"] = float(mean.sel(point))


def _summary_exponents(inv: InvariantData, out: dict[str, float]) -> None:
    err = final_values(inv.ds, "err_test")
    p = np.asarray(inv.ds["P"].values, float)
    for point in inv.points("model", "alpha", "K"):
        beta, stderr, _ = fit_learning_curve(p, run_matrix(err.sel(point), "P"))
        theory = theory_exponents(inv.ds, point.get("model"))
        key = point_key(point)
        out[f"{key}:beta"], out[f"{key}:beta_se"] = beta, stderr
        out[f"{key}:beta_lazy"] = theory["lazy"]
        out[f"{key}:beta_feature"] = theory["feature"]
        out[f"{key}:d_par"] = theory["d_par"]
