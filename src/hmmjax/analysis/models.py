"""Model comparisons (Gaussian equivalence), NumPy and xarray only; the figures are in
:mod:`hmmjax.plots.experiments`.

Online SGD on two data models, e.g. the hidden manifold model ``hmm`` and its Gaussian
equivalent ``get``, swept over N. If the models are equivalent the difference of their
ensemble-mean learning curves is a finite-size effect that vanishes as N grows.
:func:`gep_gaps` measures that difference (RMS over the recorded log-spaced times) next to
the finite-size fluctuation of one run (``band``) and the error of the ensemble mean
(``sem``); :func:`fit_power` fits their power laws in N; :func:`model_finals` and
:func:`model_points` reduce a grid over models for the figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from hmmjax.analysis.common import (
    ENSEMBLE_DIMS,
    ensemble_dims,
    ensemble_mean,
    last_finite,
    quiet,
)
from hmmjax.analysis.sweep import grid_of, swept_axes

__all__ = [
    "MODEL_VARS",
    "ModelPoints",
    "gep_gaps",
    "GAP_DESCRIPTIONS",
    "fit_power",
    "model_points",
    "ensemble_stats",
    "model_finals",
]


MODEL_VARS = ("eg_sim", "eg_ode", "diverged")


@dataclass(frozen=True)
class ModelPoints:
    """A sweep with ``model`` among its axes, as points: ``g`` has a ``point`` dim with a
    coordinate per swept axis, ensemble dims ``member`` (and ``seed``) and ``t``."""

    g: xr.Dataset
    others: tuple[str, ...]  # swept axes other than model and seed
    models: list[str]  # in order of appearance
    keys: list[tuple]  # each point's values of ``others``
    where: dict[tuple[str, tuple], int]  # (model, key) -> point index

    def index(self, model: str, key: tuple) -> int | None:
        """The point of ``model`` at ``key`` (values of ``others``), ``None`` if absent."""
        return self.where.get((model, key))

    @property
    def distinct(self) -> list[tuple]:
        """The points of the non-model axes, in order of appearance."""
        return list(dict.fromkeys(self.keys))


def gep_gaps(ds: xr.Dataset, a: str = "hmm", b: str = "get") -> xr.Dataset:
    """How far apart the learning curves of models ``a`` and ``b`` are, per point of the
    other swept axes (e.g. per N), compared with the finite-size noise.

    ``ds``: an online sweep with ``model`` among its swept axes, a product grid or a points
    grid (``point`` with a coordinate per axis; points differing only in ``seed`` are one
    ensemble), with ``eg_sim`` over (grid..., member, t). With m_x(t) the ensemble mean of
    eg_sim for model x (over members and seeds, diverged runs skipped) and s_x(t) its
    ensemble standard deviation (ddof = 1, the spread of a single run), and RMS meaning
    the root mean square over the recorded times t > 0, each recorded time weighted
    equally (a log-spaced grid weights every decade equally):

    - ``gap`` = RMS(m_a - m_b): the difference of the two models' mean learning curves,
    - ``gap_rel`` = RMS((m_a - m_b) / m_b): the same relative to model b,
    - ``band`` = (RMS(s_a) + RMS(s_b)) / 2: the fluctuation of one run at this size,
    - ``sem`` = band / sqrt(n_runs): the error of one ensemble mean; a gap of a few sem
      or less is not resolved by the ensemble,
    - ``n_runs``: runs per model in each ensemble with some finite eg (the fewer model's),
    - ``ode_gap_a``, ``ode_gap_b`` = RMS(m_x - eg_ode_x), when ``eg_ode`` is present.

    The result has one dim: ``N`` (ints, ascending) when the points of the other axes
    differ in N (other axes, e.g. D, become coordinates along it), else the only other
    axis, else ``point`` with a coordinate per axis. Points where one model is missing
    are left out.
    """
    m = model_points(ds)
    for name in (a, b):
        if name not in m.models:
            raise ValueError(f"gep_gaps: model {name!r} not in the sweep's models {m.models}")
    keys = [k for k in m.distinct if m.index(a, k) is not None and m.index(b, k) is not None]
    if not keys:
        raise ValueError(f"gep_gaps: no grid point has both models {a!r} and {b!r}")
    ia = [m.index(a, k) for k in keys]
    ib = [m.index(b, k) for k in keys]
    t = np.asarray(m.g["t"].values, float)
    eg = m.g["eg_sim"]
    mean_a, std_a, n_a = ensemble_stats(eg.isel(point=ia))
    mean_b, std_b, n_b = ensemble_stats(eg.isel(point=ib))
    rms = _rms_over_time(t)
    band = (rms(std_a) + rms(std_b)) / 2
    n_runs = np.minimum(n_a, n_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        data = {
            "gap": rms(mean_a - mean_b),
            "gap_rel": rms((mean_a - mean_b) / mean_b),
            "band": band,
            "sem": band / np.sqrt(n_runs),
            "n_runs": n_runs,
        }
    if "eg_ode" in m.g:
        ode = ensemble_mean(m.g["eg_ode"].astype(float)).transpose("point", "t").values
        data["ode_gap_a"] = rms(mean_a - ode[ia])
        data["ode_gap_b"] = rms(mean_b - ode[ib])
    return _gap_dataset(data, m.others, keys, a, b)


GAP_DESCRIPTIONS = {  # attrs of gep_gaps's variables; {a}, {b}: the two models
    "gap": "RMS over t > 0 of mean_{a}(t) - mean_{b}(t), ensemble means of eg_sim",
    "gap_rel": "RMS over t > 0 of (mean_{a} - mean_{b}) / mean_{b}",
    "band": "RMS over t > 0 of a single run's ensemble std of eg_sim, mean of both models",
    "sem": "band / sqrt(n_runs): the error of an ensemble mean",
    "n_runs": "runs per ensemble (the smaller of the two models)",
    "ode_gap_a": "RMS over t > 0 of mean_{a} - eg_ode_{a}",
    "ode_gap_b": "RMS over t > 0 of mean_{b} - eg_ode_{b}",
}


def fit_power(N: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray):
    """Least-squares power law y ~ N^exponent: the slope of log y against log N and its
    standard error, as ``(exponent, stderr)``. Points with y <= 0 or non-finite values
    are left out; stderr is NaN with two points (no residual), both NaN with fewer."""
    x, z = np.asarray(N, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(z) & (x > 0) & (z > 0)
    x, z = np.log(x[ok]), np.log(z[ok])
    n = x.size
    if n < 2 or np.ptp(x) == 0:
        return math.nan, math.nan
    dx = x - x.mean()
    sxx = float(dx @ dx)
    slope = float(dx @ (z - z.mean())) / sxx
    if n == 2:
        return slope, math.nan
    resid = z - z.mean() - slope * dx
    return slope, math.sqrt(float(resid @ resid) / (n - 2) / sxx)


def model_points(ds: xr.Dataset) -> ModelPoints:
    """Check a sweep over ``model`` and bring it to the points layout of
    :class:`ModelPoints`."""
    swept = swept_axes(ds)
    if "model" not in swept:
        raise ValueError(f"not a model comparison: 'model' is not among the swept axes {swept}")
    if "eg_sim" not in ds:
        raise ValueError("model comparison needs the simulation's 'eg_sim' (grid..., member, t)")
    g, axes, points = grid_of(ds, MODEL_VARS, swept)
    if not points:
        g = g.stack(point=list(axes), create_index=False)
    others = tuple(x for x in axes if x != "model")
    n = g.sizes["point"]
    keys = [tuple(g[x].values[i].item() for x in others) for i in range(n)]
    where = {(str(x), k): i for i, (x, k) in enumerate(zip(g["model"].values, keys, strict=True))}
    if len(where) < n:
        raise ValueError("model comparison: some (model, point) appears twice in the grid")
    models = list(dict.fromkeys(str(x) for x in g["model"].values))
    return ModelPoints(g=g, others=others, models=models, keys=keys, where=where)


def ensemble_stats(eg: xr.DataArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per point: the ensemble mean and standard deviation (ddof 1) over time, skipping
    NaN, and the number of runs with some finite value; arrays (point, t) and (point,)."""
    ens = [d for d in ENSEMBLE_DIMS if d in eg.dims]
    eg = eg.astype(float)
    with quiet():
        mean = eg.mean(ens, skipna=True).transpose("point", "t").values
        std = eg.std(ens, ddof=1, skipna=True).transpose("point", "t").values
    runs = eg.notnull().any("t").sum(ens).transpose("point").values
    return mean, std, runs.astype(float)


def _rms_over_time(t: np.ndarray):
    """A function: the root mean square over the last axis at the times t > 0 (NaN
    values skipped), each recorded time weighted equally."""
    later = t > 0

    def rms(a: np.ndarray) -> np.ndarray:
        with quiet():
            return np.sqrt(np.nanmean(np.square(a[..., later]), axis=-1))

    return rms


def _gap_dataset(
    data: dict[str, np.ndarray], others: tuple[str, ...], keys: list[tuple], a: str, b: str
) -> xr.Dataset:
    """The gap arrays over one dim (N, the only other axis, or ``point``), sorted."""
    coords = {x: np.array([_integral(k[j]) for k in keys]) for j, x in enumerate(others)}
    if "N" in coords and len(set(coords["N"].tolist())) == len(keys):
        dim = "N"
    elif len(others) == 1:
        dim = others[0]
    else:
        dim = "point"
    order = np.argsort(coords[dim], kind="stable") if dim in coords else np.arange(len(keys))
    if dim == "point" and "N" in coords:
        order = np.argsort(coords["N"], kind="stable")
    out = xr.Dataset(
        {name: (dim, np.asarray(v, float)[order]) for name, v in data.items()},
        coords={x: (dim, v[order]) for x, v in coords.items()},
    )
    for name, var in out.data_vars.items():
        var.attrs["description"] = GAP_DESCRIPTIONS[name].format(a=a, b=b)
    out.attrs.update(a=a, b=b)
    return out


def _integral(v: Any) -> Any:
    """Integral floats as ints (N from a float coordinate), anything else unchanged."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def model_finals(
    ds: xr.Dataset,
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray | None]:
    """The final eg of a sweep per grid point: the mean and standard deviation over the
    runs (members and seeds) of the last finite ``eg_sim``, and the last finite
    ``eg_ode`` averaged over seeds (``None`` without ``eg_ode``)."""
    with quiet():
        runs = last_finite(ds["eg_sim"])  # (grid..., member)
        mean = runs.mean(ensemble_dims(runs))
        std = runs.std(ensemble_dims(runs))
        ode = (
            last_finite(ds["eg_ode"]).mean("seed")
            if "seed" in ds.dims and "eg_ode" in ds
            else (last_finite(ds["eg_ode"]) if "eg_ode" in ds else None)
        )
    return mean, std, ode
