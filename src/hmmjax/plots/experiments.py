"""Figures of two experiments built on top of the sweep engine; their numbers come from
:mod:`hmmjax.analysis.finite`.

Finite training sets (``ds.attrs["experiment"] == "finite"``): :func:`plot_finite` draws
four rows of panels against time (test error, agreement with the linear predictor,
training error, fit ratio), one column per data model x label kind, one colour per
remaining grid point (e.g. K); :func:`hmmjax.analysis.finite.finite_summary` reduces
the same curves to the few numbers a write-up quotes.

Model comparison (Gaussian equivalence): online SGD on two data models, e.g. the hidden
manifold model ``hmm`` and its Gaussian equivalent ``get``, swept over N.
:func:`plot_models` draws the learning curves per N and the gaps against N
(:func:`hmmjax.analysis.finite.gep_gaps`) with their fitted power laws
(:func:`hmmjax.analysis.finite.fit_power`); :func:`plot_model_finals` draws the final
error of larger grids.

Figures use matplotlib's Agg canvas and the helpers of :mod:`hmmjax.plots.common` (atomic
saving, curve colours, labels, log-log lines).
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hmmjax.analysis.common import ensemble_mean, grid_points
from hmmjax.analysis.finite import FIT_WINDOW, FiniteData, reduce_finite
from hmmjax.analysis.models import (
    ModelPoints,
    ensemble_stats,
    fit_power,
    gep_gaps,
    model_finals,
    model_points,
)
from hmmjax.analysis.sweep import swept_axes
from hmmjax.plots.common import (
    NEUTRAL,
    PANEL_INCHES,
    colours,
    loglog_axes,
    loglog_line,
    point_label,
    save_figure,
    short_value,
    subplot_grid,
)

__all__ = [
    "MAX_MODEL_PANELS",
    "FINITE_ROWS",
    "plot_finite",
    "model_panels",
    "plot_models",
    "MAX_FINAL_PANELS",
    "plot_model_finals",
]


MAX_MODEL_PANELS = 6  # model comparison: learning-curve panels, one per non-model point


# (variable, panel title, y label) per row of plot_finite
FINITE_ROWS = (
    ("err_test", "A  test error", "test classification error"),
    ("agree_lin", "B  agreement with the linear predictor", "sign agreement with linear"),
    ("err_train", "C  training error", "training classification error"),
    ("fit_ratio", "D  fitted by all / if independent", "fit_all / fit_indep"),
)


def plot_finite(ds: xr.Dataset, path: str | os.PathLike | None = None) -> Figure:
    """Learning on a finite training set against time t (log axis from the first t > 0).

    Rows: (A) test classification error, with the linear predictor's (``err_lin``) as a
    dashed grey line; (B) sign agreement with the linear predictor (``agree_lin``);
    (C) training classification error; (D) ``fit_ratio`` = fraction of samples fitted by
    all members / the fraction expected if they were independent, with a band of
    +-2 ``fit_ratio_se`` and a line at 1. Each curve is the mean over ensemble members
    (and over ``seed`` if swept; :func:`hmmjax.analysis.finite.reduce_finite`).
    Columns: one per value of ``model`` x ``labels`` (those that are dims; at most
    ``MAX_FINITE_COLUMNS``); colours: one per value of the other grid axes (e.g. K). x is
    shared within a column, y within a row. Axes are labelled ``"finite:<variable>"``.
    Saved atomically to ``path`` when given.
    """
    f = reduce_finite(ds)
    ncols = len(f.columns)
    palette = colours(len(f.curves))
    fig = Figure(
        figsize=(max(ncols * PANEL_INCHES[0] + 2.6, 6.4), len(FINITE_ROWS) * PANEL_INCHES[1]),
        layout="constrained",
    )
    FigureCanvasAgg(fig)
    axs = np.empty((len(FINITE_ROWS), ncols), dtype=object)
    for (r, (name, title, ylabel)), c in itertools.product(enumerate(FINITE_ROWS), range(ncols)):
        ax = fig.add_subplot(
            len(FINITE_ROWS),
            ncols,
            r * ncols + c + 1,
            sharex=axs[0, c] if r else None,
            sharey=axs[r, 0] if c else None,
            label=f"finite:{name}",
        )
        axs[r, c] = ax
        head = f"{point_label(f.columns[c])}\n" if r == 0 and f.columns[c] else ""
        ax.set_title(head + title, fontsize="small")
        ax.set_ylabel(ylabel if c == 0 else "")
        ax.grid(True, which="major", alpha=0.3)
        _draw_finite_panel(ax, f, name, c, palette)
        if r == len(FINITE_ROWS) - 1:
            ax.set_xlabel("t (steps / N)")
    handles = {}
    for ax in axs.flat:
        handles.update(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="outside right upper", fontsize="small")
    runs = f" (means over {f.size} runs)" if f.size > 1 else ""
    fig.suptitle((f.title or "finite training set") + runs)
    save_figure(fig, path)
    return fig


def _draw_finite_panel(ax: Axes, f: FiniteData, name: str, col: int, palette: list) -> None:
    """One panel of :func:`plot_finite`: the curves of ``name`` in column ``col``."""
    ax.set_xscale("log")
    if not np.isfinite(f.curve[name][col]).any():
        ax.text(0.5, 0.5, f"no finite {name}", ha="center", transform=ax.transAxes)
        return
    shown = f.t > 0
    t = f.t[shown]
    for j, (point, colour) in enumerate(zip(f.curves, palette, strict=True)):
        y = f.curve[name][col, j, shown]
        if name == "fit_ratio":  # informative only where some but not all are fitted
            indep = f.curve["fit_indep"][col, j, shown]
            y = np.where((indep > FIT_WINDOW[0]) & (indep < FIT_WINDOW[1]), y, np.nan)
        label = point_label(point) if point else "network"
        ax.plot(t, y, color=colour, lw=1.5, label=label)
        if name == "fit_ratio":
            se = 2 * f.fit_ratio_se[col, j, shown]
            band = np.isfinite(y) & np.isfinite(se)
            ax.fill_between(
                t, y - se, y + se, where=band, color=colour, alpha=0.2, lw=0, label="+-2 se"
            )
    if name == "err_test":
        for level in np.unique(f.err_lin[col][np.isfinite(f.err_lin[col])]):
            ax.axhline(level, color=NEUTRAL, ls="--", lw=1, label="linear predictor")
    if name == "fit_ratio":
        ax.axhline(1.0, color=NEUTRAL, ls=":", lw=1, label="independent members (= 1)")


def model_panels(ds: xr.Dataset) -> int:
    """How many learning-curve panels :func:`plot_models` would draw for ``ds``."""
    return len(model_points(ds).distinct)


def plot_models(ds: xr.Dataset, path: str | os.PathLike | None = None) -> Figure:
    """Learning curves of several data models side by side, one panel per point of the
    other swept axes (e.g. per N; at most :data:`MAX_MODEL_PANELS`), log-log: each
    model's ensemble mean of eg_sim with a light band of +- one standard deviation over
    the runs, and its ``eg_ode`` dashed in the same colour when present (axes labelled
    ``"models:curves"``). With exactly two models (``hmm`` and ``get`` compared in that
    order if both are there) and an ``N`` axis, a last panel ``"models:gaps"`` draws
    :func:`hmmjax.analysis.finite.gep_gaps`'s ``gap``, ``band`` and ``sem`` against N
    with their fitted power laws (:func:`hmmjax.analysis.finite.fit_power`) and a
    N^-1/2 line through the first band point.
    Saved atomically to ``path`` when given.
    """
    m = model_points(ds)
    keys = sorted(m.distinct)
    if len(keys) > MAX_MODEL_PANELS:
        raise ValueError(
            f"model comparison: {len(keys)} points of {', '.join(m.others)}; at most "
            f"{MAX_MODEL_PANELS} panels (select fewer, e.g. ds.isel(...))"
        )
    pair = _gap_pair(m)
    gaps = gep_gaps(ds, *pair) if pair else None
    if gaps is not None and ("N" not in gaps.dims or gaps.sizes["N"] < 2):
        gaps = None
    n = len(keys) + (gaps is not None)
    nrows, ncols = subplot_grid(n, 3)
    fig = Figure(
        figsize=(max(ncols * PANEL_INCHES[0] + 1.2, 6.4), nrows * PANEL_INCHES[1] + 0.8),
        layout="constrained",
    )
    FigureCanvasAgg(fig)
    t = np.asarray(m.g["t"].values, float)
    first: Axes | None = None
    for p, key in enumerate(keys):
        ax = fig.add_subplot(nrows, ncols, p + 1, sharex=first, sharey=first, label="models:curves")
        first = first or ax
        for c, model in enumerate(m.models):
            i = m.index(model, key)
            if i is not None:
                _draw_model(ax, m.g.isel(point=i), t, model, f"C{c}")
        point = dict(zip(m.others, key, strict=True))
        loglog_axes(ax, point_label(point), ylabel="eg" if p % ncols == 0 else "")
        if p == 0:
            ax.legend(fontsize="x-small")
    if gaps is not None:
        _draw_gaps(fig.add_subplot(nrows, ncols, n, label="models:gaps"), gaps)
    title = str(ds.attrs.get("title", "")) or f"models {', '.join(m.models)}"
    fig.suptitle(f"{title}: ensemble mean +- std of eg_sim")
    save_figure(fig, path)
    return fig


MAX_FINAL_PANELS = 8  # plot_model_finals: panels, one per (model, other axes) combination


def plot_model_finals(ds: xr.Dataset, path: str | os.PathLike | None = None) -> Figure:
    """Final eg of a product grid over data models: one panel per model and value of the
    axes other than the x axis (``K`` if swept, else the first axis) and the colour axis
    (the first remaining one, e.g. ``lr``); simulation (ensemble mean of the last finite
    eg_sim, averaged over seeds, error bars: standard deviation over the runs; see
    :func:`hmmjax.analysis.finite.model_finals`) as solid
    lines with markers, ``eg_ode`` dashed with open markers. Panels share the y axis,
    so the models compare at a glance (axes labelled ``"models:finals"``)."""
    swept = [a for a in swept_axes(ds) if a != "seed"]
    if ds.attrs.get("grid_kind", "product") != "product" or "model" not in swept:
        raise ValueError("plot_model_finals: needs a product grid with a model axis")
    rest = [a for a in swept if a != "model"]
    if not rest:
        raise ValueError("plot_model_finals: needs an axis besides model")
    x_axis = "K" if "K" in rest else rest[0]
    colour_axis = next((a for a in rest if a != x_axis), None)
    panel_axes = ["model", *(a for a in rest if a not in (x_axis, colour_axis))]
    panels = grid_points(ds, panel_axes)
    if len(panels) > MAX_FINAL_PANELS:
        raise ValueError(
            f"plot_model_finals: {len(panels)} panels over {', '.join(panel_axes)}; at most "
            f"{MAX_FINAL_PANELS}"
        )
    mean, std, ode = model_finals(ds)
    palette = colours(ds.sizes[colour_axis] if colour_axis else 1)
    nrows, ncols = subplot_grid(len(panels), 4)
    fig = Figure(figsize=(ncols * PANEL_INCHES[0] + 1.2, nrows * PANEL_INCHES[1] + 0.8),
                 layout="constrained")  # fmt: skip
    FigureCanvasAgg(fig)
    x = np.asarray(ds[x_axis].values, float)
    first: Axes | None = None
    for p, panel in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, p + 1, sharey=first, label="models:finals")
        first = first or ax
        for c, colour in enumerate(palette):
            sel = {**panel, **({colour_axis: ds[colour_axis].values[c]} if colour_axis else {})}
            name = f"{colour_axis}={short_value(sel[colour_axis])}" if colour_axis else "simulation"
            y, e = mean.sel(sel).values, std.sel(sel).values
            ax.errorbar(x, y, yerr=e, color=colour, marker="o", ms=4, lw=1.3, capsize=2,
                        label=name)  # fmt: skip
            if ode is not None:
                ax.plot(x, ode.sel(sel).values, color=colour, ls="--", marker="o", ms=4,
                        mfc="none", lw=1)  # fmt: skip
        ax.set_xscale("log" if x.min() > 0 and x.max() > 3 * x.min() else "linear")
        ax.set_xticks(x, labels=[short_value(v) for v in ds[x_axis].values])
        ax.minorticks_off()
        ax.set_yscale("log")
        ax.set_xlabel(x_axis)
        ax.set_ylabel("final eg" if p % ncols == 0 else "")
        ax.set_title(point_label(panel), fontsize="small")
        ax.grid(True, which="major", alpha=0.3)
        if p == 0:
            if ode is not None:
                ax.plot([], [], color=NEUTRAL, ls="--", marker="o", mfc="none", label="ODE")
            ax.legend(fontsize="x-small")
    title = str(ds.attrs.get("title", "")) or "models"
    fig.suptitle(f"{title}: final eg, simulation (mean +- std over runs) and ODE")
    save_figure(fig, path)
    return fig


def _gap_pair(m: ModelPoints) -> tuple[str, str] | None:
    """The two models the gap panel compares: hmm and get if both, else the two models of
    a two-model sweep over N; ``None`` for no gap panel."""
    if len(m.models) != 2 or "N" not in m.others:
        return None
    if set(m.models) == {"hmm", "get"}:
        return "hmm", "get"
    return m.models[0], m.models[1]


def _draw_model(ax: Axes, point: xr.Dataset, t: np.ndarray, model: str, colour: str) -> None:
    """One model's ensemble mean +- std (light band) and its ODE (dashed) at one point."""
    eg = point["eg_sim"].expand_dims("point")
    mean, std, runs = ensemble_stats(eg)
    mean, std = mean[0], std[0]
    lo, hi = mean - std, mean + std
    band = (t > 0) & np.isfinite(lo) & np.isfinite(hi) & (hi > 0)
    if runs[0] > 1 and band.any():
        ax.fill_between(
            t, np.where(lo > 0, lo, mean / 10), hi, where=band, color=colour, alpha=0.15, lw=0
        )
    loglog_line(ax, t, mean, color=colour, lw=1.5, label=f"{model} ({runs[0]:.0f} runs)")
    if "eg_ode" in point:
        ode = ensemble_mean(point["eg_ode"].astype(float)).values
        loglog_line(ax, t, ode, color=colour, lw=1.2, ls="--", label=f"{model} ODE")


def _draw_gaps(ax: Axes, gaps: xr.Dataset) -> None:
    """gap, band and sem against N on log-log axes with fitted power laws."""
    N = np.asarray(gaps["N"].values, float)
    styles = (("gap", "o", "C3"), ("band", "s", "C0"), ("sem", "^", "C2"))
    for name, marker, colour in styles:
        y = np.asarray(gaps[name].values, float)
        slope, se = fit_power(N, y)
        fit = f"{slope:.2f}" + (f" +- {se:.2f}" if np.isfinite(se) else "")
        loglog_line(ax, N, y, color=colour, marker=marker, lw=1.2, label=f"{name}: N^({fit})")
    band = np.asarray(gaps["band"].values, float)
    ok = np.flatnonzero(np.isfinite(band) & (band > 0))
    if ok.size:
        ref = band[ok[0]] * np.sqrt(N[ok[0]] / N)
        ax.plot(N, ref, ls=":", color=NEUTRAL, lw=1, label="N^-1/2")
    loglog_axes(ax, f"gap vs N: {gaps.attrs['a']} - {gaps.attrs['b']}", "RMS over t")
    ax.set_xlabel("N")
    ax.set_xticks(N, labels=[short_value(v) for v in N.tolist()])
    ax.minorticks_off()
    ax.legend(fontsize="x-small")
