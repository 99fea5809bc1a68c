"""Sweeps reduced to numpy (NumPy and xarray only): the grid a results file sweeps (a
product of axes or a list of points, a swept seed merged into the ensemble), ensemble
means and standard deviations of the learning curves per grid point, the final error
(the mean of the last finite values) and which points diverged.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import xarray as xr

from hmmjax.analysis.common import ensemble_dims, ensemble_mean, last_finite, quiet

__all__ = [
    "SWEEP_VARS",
    "SweepData",
    "swept_axes",
    "grid_of",
    "reduce_sweep",
    "check_grid",
    "ensemble_band",
]


SWEEP_VARS = ("eg_sim", "eg_sim_mean", "eg_sim_std", "eg_ode", "diverged", "diverged_ode")


@dataclass(frozen=True)
class SweepData:
    """A sweep reduced to numpy: one row per grid point, members and seeds averaged.

    Grid points are in C order over ``axes`` (product grids) or in ``point`` order.
    """

    title: str
    axes: tuple[str, ...]  # swept axes other than seed, in order
    points: bool  # grid_kind "points"
    shape: tuple[int, ...]  # grid shape over ``axes`` (product) or (number of points,)
    coords: dict[str, np.ndarray]  # product grids: each axis's values
    labels: list[dict[str, Any]]  # each point's axis values
    t: np.ndarray
    mean: np.ndarray | None  # (point, t) simulation ensemble mean
    std: np.ndarray | None  # (point, t) simulation ensemble standard deviation
    ode: np.ndarray | None  # (point, t) ODE prediction
    final: np.ndarray  # (point,) mean over members/seeds of the last finite eg
    diverged: np.ndarray  # (point,) any member diverged, or the ODE did
    source: str  # "simulation" or "ODE": what ``final`` and the eg(t) lines show

    @property
    def curves(self) -> np.ndarray | None:
        """The eg(t) line per grid point: simulation mean, else the ODE."""
        return self.mean if self.mean is not None else self.ode

    def final_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """``final`` and ``diverged`` of a product grid over its first two axes, shaped
        ``(n_second, n_first)``: the mean (skipping NaN) and "any" over further axes."""
        extra = tuple(range(2, len(self.axes)))
        with quiet():
            final = np.nanmean(self.final.reshape(self.shape), axis=extra).T
        diverged = self.diverged.reshape(self.shape).any(axis=extra).T
        return final, diverged


def swept_axes(ds: xr.Dataset) -> tuple[str, ...]:
    """The ``swept`` attribute (a JSON list, or a list) as a tuple; empty if absent."""
    swept = ds.attrs.get("swept") or ()
    if isinstance(swept, str):
        swept = json.loads(swept) if swept.strip() else ()
    return tuple(str(a) for a in np.atleast_1d(swept))


def grid_of(
    ds: xr.Dataset, names: Sequence[str], swept: tuple[str, ...]
) -> tuple[xr.Dataset, tuple[str, ...], bool]:
    """(the variables ``names`` of ``ds`` with the grid checked and a swept seed merged
    into the points, the swept axes but seed, whether the grid is a points grid)."""
    axes = tuple(a for a in swept if a != "seed")
    points = ds.attrs.get("grid_kind", "product") == "points"
    g = ds[[name for name in names if name in ds]]
    check_grid(g, swept, points)
    if points and "seed" in swept:
        g = _merge_seed_points(g, axes)
    return g, axes, points


def reduce_sweep(ds: xr.Dataset) -> SweepData:
    """Check the grid of ``ds`` and reduce it to a :class:`SweepData`."""
    swept = swept_axes(ds)
    if not swept:
        raise ValueError("not a sweep: the dataset has no 'swept' attribute")
    g, axes, points = grid_of(ds, SWEEP_VARS, swept)
    grid = ("point",) if points else axes
    n_points = math.prod(g.sizes[d] for d in grid)
    flat = partial(_flat, g=g, grid=grid)
    mean, std = _simulation_stats(g)
    ode = ensemble_mean(g["eg_ode"]) if _finite(g, "eg_ode") else None
    source = next((n for n in ("eg_sim", "eg_sim_mean", "eg_ode") if _finite(g, n)), None)
    final = ensemble_mean(last_finite(g[source])) if source else None
    return SweepData(
        title=_sweep_title(ds, swept),
        axes=axes,
        points=points,
        shape=tuple(g.sizes[d] for d in grid),
        coords={} if points else {a: _coord(g, a) for a in axes},
        labels=_point_labels(g, axes, points),
        t=np.asarray(g["t"].values if "t" in g.coords else np.arange(g.sizes["t"]), float),
        mean=None if mean is None else flat(mean),
        std=None if std is None else flat(std),
        ode=None if ode is None else flat(ode),
        final=np.full(n_points, np.nan) if final is None else flat(final),
        diverged=_diverged(g, flat, n_points),
        source="ODE" if source == "eg_ode" else "simulation",
    )


def check_grid(g: xr.Dataset, swept: Sequence[str], points: bool) -> None:
    """``ValueError`` unless ``g`` has the dims (or point coordinates) the sweep names."""
    if "t" not in g.dims:
        raise ValueError(f"sweep has no variable over time 't' among {list(SWEEP_VARS)}")
    if points:
        missing = ["point"] if "point" not in g.dims else [a for a in swept if a not in g.coords]
    else:
        missing = [a for a in swept if a not in g.dims]
    if missing:
        kind = "points" if points else "product"
        raise ValueError(f"{kind} sweep over {list(swept)}: the dataset lacks {missing}")


def _merge_seed_points(g: xr.Dataset, axes: tuple[str, ...]) -> xr.Dataset:
    """Points differing only in seed become one point with a ``seed`` dim (NaN-padded)."""
    groups: dict[tuple, list[int]] = {}
    for i in range(g.sizes["point"]):
        groups.setdefault(tuple(g[a].values[i].item() for a in axes), []).append(i)
    along_point = [name for name, c in g.coords.items() if "point" in c.dims]
    parts = [
        g.isel(point=idx)
        .drop_vars(along_point)
        .rename_dims(point="seed")
        .assign_coords(seed=np.arange(len(idx)))
        for idx in groups.values()
    ]
    fill = {name: False for name, v in g.data_vars.items() if v.dtype == bool}
    merged = xr.concat(
        parts,
        dim="point",
        join="outer",
        fill_value=fill,
        data_vars="all",
        coords="minimal",
        compat="override",
    )
    return merged.assign_coords({a: ("point", [k[j] for k in groups]) for j, a in enumerate(axes)})


def _finite(g: xr.Dataset, name: str) -> bool:
    """Whether ``g`` holds variable ``name`` with at least one finite value."""
    return name in g and bool(np.isfinite(g[name].values).any())


def _simulation_stats(g: xr.Dataset) -> tuple[xr.DataArray | None, xr.DataArray | None]:
    """Ensemble mean and standard deviation of the simulation over members and seeds;
    from ``eg_sim_mean``/``eg_sim_std`` (averaged over seeds) without ``eg_sim``."""
    if _finite(g, "eg_sim"):
        with quiet():
            return ensemble_mean(g["eg_sim"]), g["eg_sim"].std(ensemble_dims(g["eg_sim"]))
    if _finite(g, "eg_sim_mean"):
        std = ensemble_mean(g["eg_sim_std"]) if "eg_sim_std" in g else None
        return ensemble_mean(g["eg_sim_mean"]), std
    return None, None


def _flat(da: xr.DataArray, g: xr.Dataset, grid: tuple[str, ...]) -> np.ndarray:
    """``da``'s values with the ``grid`` dims flattened (C order) into a leading one."""
    da = da.expand_dims({d: g.sizes[d] for d in grid if d not in da.dims})
    values = da.transpose(*grid, ...).values
    return values.reshape(-1, *values.shape[len(grid) :])


def _diverged(
    g: xr.Dataset, flat: Callable[[xr.DataArray], np.ndarray], n_points: int
) -> np.ndarray:
    """Per grid point: any member (or seed) diverged, or the ODE did."""
    flags = [
        flat(g[name].astype(bool).any(ensemble_dims(g[name])))
        for name in ("diverged", "diverged_ode")
        if name in g
    ]
    return np.logical_or.reduce([np.zeros(n_points, bool), *flags])


def _coord(g: xr.Dataset, dim: str) -> np.ndarray:
    """The coordinate values of ``dim``, or its indices if it has none."""
    return np.asarray(g[dim].values if dim in g.coords else np.arange(g.sizes[dim]))


def _point_labels(g: xr.Dataset, axes: tuple[str, ...], points: bool) -> list[dict[str, Any]]:
    """Each grid point's axis values, in the order of :func:`_flat`."""
    if points:
        return [{a: g[a].values[i].item() for a in axes} for i in range(g.sizes["point"])]
    values = itertools.product(*(_coord(g, a).tolist() for a in axes))
    return [dict(zip(axes, v, strict=True)) for v in values]


def _sweep_title(ds: xr.Dataset, swept: Sequence[str]) -> str:
    title = str(ds.attrs.get("title", "")) or f"sweep over {', '.join(swept)}"
    mode = ds.attrs.get("mode")
    return f"{title} ({mode})" if mode else title


def ensemble_band(curve: xr.DataArray, t: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, minimum and maximum over every dim of ``curve`` but the time dim ``t``,
    skipping NaN (all-NaN times of diverged runs give NaN)."""
    values = np.asarray(curve.transpose(..., t).values, float).reshape(-1, curve.sizes[t])
    with quiet():
        mean = np.nanmean(values, axis=0)
        lo, hi = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
    return mean, lo, hi
