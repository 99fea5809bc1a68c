"""Figures of learning curves: simulation ensembles (mean and band) and ODE predictions,
and overviews of sweeps (curves per grid point, final error over the grid, sim vs ODE).
The numbers drawn come from :mod:`hmmjax.analysis.sweep`.

Figures are built on matplotlib's Agg canvas directly (no pyplot, no GUI, no global
figure registry), so this works the same on a laptop, a headless node and in tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import numpy as np
import xarray as xr
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, LogNorm, Normalize
from matplotlib.figure import Figure, SubFigure

from hmmjax.analysis.common import ENSEMBLE_DIMS, format_value
from hmmjax.analysis.sweep import SweepData, ensemble_band, reduce_sweep
from hmmjax.plots.common import (
    CURVE_CMAP,
    PANEL_INCHES,
    loglog_axes,
    loglog_line,
    point_label,
    save_figure,
    short_value,
    subplot_grid,
)

__all__ = [
    "SIMULATION_CURVES",
    "plot_learning_curves",
    "MAX_CURVE_PANELS",
    "MAX_COMPARE_PANELS",
    "MAX_ANNOTATED_CELLS",
    "plot_sweep",
]


SIMULATION_CURVES = (("eg", "analytic"), ("eg_mc", "Monte Carlo"))


def plot_learning_curves(ds: xr.Dataset, path: str | os.PathLike | None = None) -> Figure:
    """Log-log generalisation error against time t.

    For ``eg`` (from the order parameters) and ``eg_mc`` (Monte Carlo), the mean over the
    ensemble dims (``member`` or ``seed``) is drawn with a band from the ensemble minimum
    to maximum; all-NaN variables are skipped. ``eg_ode``, if present, is drawn on top as
    a black line. Extra dims (e.g. a swept learning rate) give one curve per value.
    Saved atomically to ``path`` (format from its suffix) when given.
    """
    fig = Figure(figsize=(6.4, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    drawn = False
    names = [name for name, _ in SIMULATION_CURVES if name in ds]
    for i, (name, label) in enumerate(SIMULATION_CURVES):
        if name in ds and np.isfinite(ds[name].values).any():
            style = "-" if i == 0 else "--"
            drawn |= _draw_ensemble(ax, ds[name], label, i, style, len(names))
    if "eg_ode" in ds:
        name = "ODE, N -> infinity" if ds.attrs.get("ode_source") == "limit" else "ODE"
        for curve, suffix in _curves(ds["eg_ode"], ()):
            drawn |= _line(ax, curve, label=name + suffix, color="k", lw=1.5, zorder=3)
    if drawn:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "no finite learning curve", ha="center", transform=ax.transAxes)
    ax.set_xlabel("t (steps / N)")
    ax.set_ylabel("generalisation error")
    ax.set_title(str(ds.attrs.get("title", "")), fontsize="medium")
    ax.grid(True, which="major", alpha=0.3)
    save_figure(fig, path)
    return fig


def _time_dim(da: xr.DataArray) -> str:
    """``t``, else a dim named ``t_...`` (e.g. ``t_ode``), else the only non-ensemble dim."""
    if "t" in da.dims:
        return "t"
    named = [d for d in da.dims if str(d).startswith("t_")]
    rest = [d for d in da.dims if d not in ENSEMBLE_DIMS]
    if len(named) == 1 or len(rest) == 1:
        return (named or rest)[0]
    raise ValueError(f"{da.name}: cannot tell the time dim among {da.dims}")


def _curves(da: xr.DataArray, keep: tuple[str, ...]):
    """Split ``da`` into curves over its time dim (plus the ``keep`` dims), one per value of
    every other dim; yield each with a label suffix such as ", lr=0.1"."""
    t = _time_dim(da)
    other = [d for d in da.dims if d != t and d not in keep]
    if not other:
        yield da, ""
        return
    stacked = da.stack(_curve=other)
    for i in range(stacked.sizes["_curve"]):
        curve = stacked.isel(_curve=i)
        values = {d: curve[d].item() for d in other if d in curve.coords}
        suffix = ", ".join(f"{d}={format_value(v)}" for d, v in values.items())
        yield curve.drop_vars(["_curve", *other], errors="ignore"), ", " + suffix


def _times(curve: xr.DataArray) -> np.ndarray:
    t = _time_dim(curve)
    return np.asarray(curve[t].values if t in curve.coords else np.arange(curve.sizes[t]), float)


def _line(ax, curve: xr.DataArray, **kwargs) -> bool:
    return loglog_line(ax, _times(curve), np.asarray(curve.values, float), **kwargs)


def _draw_ensemble(ax, da: xr.DataArray, label: str, index: int, style: str, n_vars: int) -> bool:
    ens = [d for d in da.dims if d in ENSEMBLE_DIMS]
    size = int(np.prod([da.sizes[d] for d in ens])) if ens else 1
    drawn = False
    curves = list(_curves(da, tuple(ens)))
    for j, (curve, suffix) in enumerate(curves):
        color = f"C{j if len(curves) > 1 else index}"
        ls = style if len(curves) > 1 or n_vars > 1 else "-"
        mean, lo, hi = ensemble_band(curve, _time_dim(curve))
        x = _times(curve)
        ok = (x > 0) & np.isfinite(mean) & (mean > 0)
        if not ok.any():
            continue
        text = label + suffix + (f" (mean of {size}, band min-max)" if size > 1 else "")
        ax.plot(x[ok], mean[ok], ls, color=color, lw=1.5, label=text, zorder=2)
        band = ok & np.isfinite(hi) & (lo > 0)
        if size > 1 and band.any():
            ax.fill_between(x, lo, hi, where=band, color=color, alpha=0.2, lw=0)
        drawn = True
    return drawn


MAX_CURVE_PANELS = 6  # eg(t) panels, one per value of the second axis; more: one panel


MAX_COMPARE_PANELS = 16  # sim vs ODE small multiples; more: an evenly spread subset


MAX_ANNOTATED_CELLS = 64  # heat maps up to this size show each cell's value


class _Group(NamedTuple):
    """One panel group: its subplot grid and how to draw it into a subfigure."""

    nrows: int
    ncols: int
    draw: Callable[[SubFigure], None]


def plot_sweep(ds: xr.Dataset, path: str | os.PathLike | None = None) -> Figure:
    """Overview of a sweep, in up to three panel groups chosen from what ``ds`` holds.

    ``ds`` has attributes ``swept`` (JSON list of axis names) and ``grid_kind``
    (``"product"``: one dim per axis; ``"points"``: a ``point`` dim with each axis as a
    coordinate along it). Members and a swept ``seed`` are averaged over.

    (a) eg(t) per grid point, log-log: the simulation ensemble mean (else the ODE),
        coloured by the first swept axis, one subplot per value of the second (at most
        :data:`MAX_CURVE_PANELS`, else all in one); axes labelled ``"sweep:curves"``.
    (b) final eg, the mean over members/seeds of the last finite value: a heat map over
        the first two axes (x: first, y: second, so the image is ``(n_second, n_first)``;
        mean over any further axes), or a line against the only axis or the point index;
        diverged points marked "x"; labelled ``"sweep:final"``.
    (c) with both simulation and ODE: one subplot per grid point (at most
        :data:`MAX_COMPARE_PANELS`, evenly spread), mean +- std band and the ODE in black;
        labelled ``"sweep:compare"``.

    Saved atomically to ``path`` (format from its suffix) when given.
    """
    sweep = reduce_sweep(ds)
    groups = _plan(sweep)
    width = max([g.ncols for g in groups] or [1]) * PANEL_INCHES[0] + 1.2
    heights = [g.nrows * PANEL_INCHES[1] + 0.6 for g in groups] or [PANEL_INCHES[1]]
    fig = Figure(figsize=(max(width, 6.4), sum(heights) + 0.4), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(sweep.title)
    if groups:
        subs = fig.subfigures(len(groups), 1, height_ratios=heights, squeeze=False)
        for group, sub in zip(groups, subs[:, 0], strict=True):
            group.draw(sub)
    else:
        fig.add_subplot().text(0.5, 0.5, "no finite learning curve", ha="center")
    save_figure(fig, path)
    return fig


def _plan(sweep: SweepData) -> list[_Group]:
    """The panel groups ``sweep`` has data for, with their subplot grids."""
    if sweep.curves is None:
        return []
    splits = _curve_splits(sweep)
    groups = [_Group(*subplot_grid(len(splits), 3), partial(_draw_curves, sweep, splits))]
    if sweep.axes or sweep.points:
        groups.append(_Group(1, 1, partial(_draw_final, sweep)))
    if sweep.mean is not None and sweep.ode is not None:
        shown = _spread(len(sweep.labels), MAX_COMPARE_PANELS)
        groups.append(_Group(*subplot_grid(len(shown), 4), partial(_draw_compare, sweep, shown)))
    return groups


def _spread(n: int, most: int) -> np.ndarray:
    """All of ``range(n)``, or ``most`` indices evenly spread over it (first and last kept)."""
    return np.arange(n) if n <= most else np.unique(np.linspace(0, n - 1, most).round().astype(int))


def _curve_splits(sweep: SweepData) -> list[tuple[str, list[int]]]:
    """(title, grid points) per eg(t) panel: one per value of the second axis when there
    are at most :data:`MAX_CURVE_PANELS`, else a single panel."""
    everything = [("", list(range(len(sweep.labels))))]
    if len(sweep.axes) < 2:
        return everything
    axis = sweep.axes[1]
    values = list(dict.fromkeys(p[axis] for p in sweep.labels))
    if len(values) > MAX_CURVE_PANELS:
        return everything
    return [
        (f"{axis}={short_value(v)}", [i for i, p in enumerate(sweep.labels) if p[axis] == v])
        for v in values
    ]


def _value_norm(values: np.ndarray) -> Normalize:
    """A log norm for positive values spanning more than 10x, else a linear one."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    lo, hi = (values.min(), values.max()) if values.size else (0.0, 1.0)
    if lo > 0 and hi > 10 * lo:
        return LogNorm(lo, hi)
    return Normalize(lo, hi if hi > lo else lo + 1)


def _draw_curves(sweep: SweepData, splits: list[tuple[str, list[int]]], sub: SubFigure) -> None:
    """Panel group (a): eg(t) per grid point, coloured by the first axis."""
    colour_axis = sweep.axes[0] if sweep.axes else None
    values = [p[colour_axis] for p in sweep.labels] if colour_axis else []
    names = list(dict.fromkeys(values)) if values and isinstance(values[0], str) else None
    if names:  # a string axis (model, labels): one colour per name, in grid order
        values = [names.index(v) for v in values]
    norm = _value_norm(np.asarray(values, float)) if values else None
    nrows, ncols = subplot_grid(len(splits), 3)
    axs: list[Axes] = []
    for i, (title, indices) in enumerate(splits):
        ax = sub.add_subplot(
            nrows,
            ncols,
            i + 1,
            sharex=axs[0] if axs else None,
            sharey=axs[0] if axs else None,
            label="sweep:curves",
        )
        for j in indices:
            colour = CURVE_CMAP(norm(values[j])) if norm else "C0"
            loglog_line(ax, sweep.t, sweep.curves[j], color=colour, lw=1.2)
        loglog_axes(ax, title, ylabel="eg" if i % ncols == 0 else "")
        axs.append(ax)
    what = "simulation ensemble mean" if sweep.mean is not None else "ODE"
    overlaid = len(splits) == 1 and len(sweep.axes) > 1
    sub.suptitle(
        f"eg(t), {what}"
        + (f", colour = {colour_axis}" if colour_axis else "")
        + (f", all {sweep.axes[1]} overlaid" if overlaid else ""),
        fontsize="medium",
    )
    if norm:
        _value_colorbar(sub, axs, norm, CURVE_CMAP, colour_axis, np.unique(values), names)


def _value_colorbar(
    sub: SubFigure,
    axs: list[Axes],
    norm: Normalize,
    cmap: Colormap,
    label: str,
    ticks: np.ndarray,
    names: list[str] | None = None,
) -> None:
    """A colorbar for ``axs`` labelled ``label``, ticked at the swept values (if few);
    ``names``: the tick labels of a string axis (its values are their indices)."""
    bar = sub.colorbar(ScalarMappable(norm, cmap), ax=axs, label=label)
    if len(ticks) <= 12:
        bar.ax.minorticks_off()
        shown = [names[int(v)] for v in ticks] if names else [short_value(v) for v in ticks]
        bar.set_ticks(ticks, labels=shown)


def _draw_final(sweep: SweepData, sub: SubFigure) -> None:
    """Panel group (b): the final eg over the grid, diverged points marked "x"."""
    ax = sub.add_subplot(label="sweep:final")
    if len(sweep.axes) >= 2 and not sweep.points:
        _final_heatmap(sub, ax, sweep)
    else:
        _final_line(ax, sweep)
    n_div = int(sweep.diverged.sum())
    note = f"; x = diverged ({n_div} of {sweep.diverged.size})" if n_div else ""
    ax.set_title(
        f"final eg ({sweep.source}): mean over members/seeds of the last finite value{note}",
        fontsize="small",
    )


def _final_heatmap(sub: SubFigure, ax: Axes, sweep: SweepData) -> None:
    """Final eg over the first two axes (x: first, y: second); the mean over the others."""
    x_axis, y_axis = sweep.axes[:2]
    extra = sweep.axes[2:]
    final, diverged = sweep.final_grid()
    norm = _log_norm(final)
    cmap = colormaps["viridis"].with_extremes(bad="lightgrey")
    image = ax.imshow(final, norm=norm, cmap=cmap, origin="lower", aspect="auto")
    sub.colorbar(image, ax=ax, label="final eg")
    _category_ticks(ax.set_xticks, sweep.coords[x_axis])
    _category_ticks(ax.set_yticks, sweep.coords[y_axis])
    ax.set_xlabel(x_axis + (f" (mean over {', '.join(extra)})" if extra else ""))
    ax.set_ylabel(y_axis)
    annotated = final.size <= MAX_ANNOTATED_CELLS
    if annotated:
        _annotate_cells(ax, final, image.norm)
    rows, cols = np.nonzero(diverged)
    corner = 0.3 if annotated else 0.0  # keep the value readable
    ax.plot(cols + corner, rows + corner, "x", color="red", ms=10, mew=2, ls="none")


def _log_norm(values: np.ndarray) -> Normalize:
    """A log norm over the positive finite ``values`` (linear, autoscaled, if none)."""
    positive = values[np.isfinite(values) & (values > 0)]
    if not positive.size:
        return Normalize()
    lo, hi = positive.min(), positive.max()
    return LogNorm(lo, hi) if hi > lo else LogNorm(lo / 2, hi * 2)


def _category_ticks(set_ticks: Callable, values: np.ndarray, **text) -> None:
    """Ticks at the indices of ``values``, labelled with them (``text``: label styles)."""
    set_ticks(np.arange(len(values)), labels=[short_value(v) for v in values.tolist()], **text)


def _annotate_cells(ax: Axes, values: np.ndarray, norm: Normalize) -> None:
    """Write each cell's value (``.3g``) in a colour readable on it."""
    for (row, col), value in np.ndenumerate(values):
        colour = "white" if np.isfinite(value) and norm(value) < 0.5 else "black"
        ax.text(
            col, row, f"{value:.3g}", ha="center", va="center", color=colour, fontsize="x-small"
        )


def _final_line(ax: Axes, sweep: SweepData) -> None:
    """Final eg against the only axis, or against the point index of a points grid."""
    if sweep.points or not sweep.axes:
        x = np.arange(len(sweep.labels), dtype=float)
        rotate = {"rotation": 30, "ha": "right", "rotation_mode": "anchor"} if len(x) > 4 else {}
        labels = np.array([point_label(p) for p in sweep.labels])
        _category_ticks(ax.set_xticks, labels, fontsize="x-small", **rotate)
        ax.set_xlabel("grid point")
    elif isinstance(sweep.coords[sweep.axes[0]][0], str):  # a string axis: categories
        x = np.arange(len(sweep.coords[sweep.axes[0]]), dtype=float)
        _category_ticks(ax.set_xticks, np.asarray(sweep.coords[sweep.axes[0]]))
        ax.set_xlabel(sweep.axes[0])
    else:
        x = np.asarray(sweep.coords[sweep.axes[0]], float)
        ax.set_xlabel(sweep.axes[0])
        if isinstance(_value_norm(x), LogNorm):
            ax.set_xscale("log")
    y = sweep.final
    ok = np.isfinite(y) & (y > 0)
    style = "o" if sweep.points else "o-"  # points of a points grid are not a series
    ax.plot(x[ok], y[ok], style, color="C0", label="final eg")
    if ok.any():
        ax.set_yscale("log")
    ax.set_ylabel("final eg")
    ax.grid(True, which="major", alpha=0.3)
    _mark_diverged(ax, x, y, sweep.diverged)


def _mark_diverged(ax: Axes, x: np.ndarray, y: np.ndarray, diverged: np.ndarray) -> None:
    """Red "x" at diverged points: on the curve, or at the bottom without a final value."""
    shown = diverged & np.isfinite(y) & (y > 0)
    ax.plot(x[shown], y[shown], "x", color="red", ms=10, mew=2, ls="none", label="diverged")
    hidden = diverged & ~shown
    ax.plot(
        x[hidden],
        np.full(hidden.sum(), 0.03),
        "x",
        color="red",
        ms=10,
        mew=2,
        ls="none",
        transform=ax.get_xaxis_transform(),
    )


def _draw_compare(sweep: SweepData, shown: np.ndarray, sub: SubFigure) -> None:
    """Panel group (c): simulation mean +- std against the ODE, one subplot per point."""
    nrows, ncols = subplot_grid(len(shown), 4)
    for i, j in enumerate(shown):
        ax = sub.add_subplot(nrows, ncols, i + 1, label="sweep:compare")
        _sim_band(ax, sweep.t, sweep.mean[j], None if sweep.std is None else sweep.std[j])
        loglog_line(ax, sweep.t, sweep.mean[j], color="C0", lw=1.5, label="simulation")
        loglog_line(ax, sweep.t, sweep.ode[j], color="k", lw=1.2, label="ODE")
        loglog_axes(ax, point_label(sweep.labels[j]), ylabel="eg" if i % ncols == 0 else "")
        if i == 0:
            ax.legend(fontsize="x-small")
    total = len(sweep.labels)
    subset = f": {len(shown)} of {total} grid points, evenly spread" if len(shown) < total else ""
    sub.suptitle(f"simulation (mean +- std) vs ODE{subset}", fontsize="medium")


def _sim_band(ax: Axes, t: np.ndarray, mean: np.ndarray, std: np.ndarray | None) -> None:
    """The band mean +- std where a log-log plot can show it."""
    if std is None:
        return
    lo, hi = mean - std, mean + std
    band = (t > 0) & np.isfinite(lo) & np.isfinite(hi) & (hi > 0)
    if band.any():
        lo = np.where(lo > 0, lo, mean / 10)  # clip what a log axis cannot show
        ax.fill_between(t, lo, hi, where=band, color="C0", alpha=0.25, lw=0)
