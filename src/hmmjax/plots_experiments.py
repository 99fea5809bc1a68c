"""Figures and headline numbers for two experiments built on top of the sweep engine.

Finite training sets (``ds.attrs["experiment"] == "finite"``, see ``hmmjax.finite``):
a network trained for many passes over P samples is compared with the best *linear*
predictor fitted to the same samples (phenomenon 1: early in training the network agrees
with the linear predictor, then leaves it), and its ensemble members are asked whether
they fit the *same* training samples more often than independent networks would
(phenomenon 2: ``fit_ratio`` = fitted by all / expected if independent, > 1 for shared
"easy examples"). :func:`plot_finite` draws four rows of panels against time (test error,
agreement with the linear predictor, training error, fit ratio), one column per data
model x label kind, one colour per remaining grid point (e.g. K); :func:`finite_summary`
reduces the same curves to the few numbers a write-up quotes.

Model comparison (Gaussian equivalence): online SGD on two data models, e.g. the hidden
manifold model ``hmm`` and its Gaussian equivalent ``get``, swept over N. If the models
are equivalent the difference of their ensemble-mean learning curves is a finite-size
effect that vanishes as N grows. :func:`gep_gaps` measures that difference (RMS over the
recorded log-spaced times) next to the finite-size fluctuation of one run (``band``) and
the error of the ensemble mean (``sem``); :func:`fit_power` fits their power laws in N,
and :func:`plot_models` draws the learning curves per N and the gaps against N.

Figures use matplotlib's Agg canvas and the helpers of :mod:`hmmjax.plots` (atomic
saving, curve colours, ensemble means over ``member`` and ``seed``).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hmmjax.plots import (
    CURVE_CMAP,
    ENSEMBLE_DIMS,
    PANEL_INCHES,
    _check_grid,
    _ensemble_mean,
    _fmt,
    _grid_of,
    _label,
    _last_finite,
    _loglog_axes,
    _loglog_line,
    _quiet,
    _save,
    _short,
    _subplot_grid,
    _swept_axes,
)

__all__ = [
    "COLUMN_AXES",
    "FIT_WINDOW",
    "MAX_FINITE_COLUMNS",
    "MAX_FINAL_PANELS",
    "MAX_MODEL_PANELS",
    "model_panels",
    "finite_summary",
    "fit_power",
    "gep_gaps",
    "plot_finite",
    "plot_model_finals",
    "plot_models",
]

COLUMN_AXES = ("model", "labels")  # finite runs: one column of panels per combination
MAX_FINITE_COLUMNS = 6
MAX_MODEL_PANELS = 6  # model comparison: learning-curve panels, one per non-model point
FIT_WINDOW = (0.05, 0.95)  # fit_ratio is only informative where fit_indep lies inside
NEUTRAL = "0.45"  # grey of reference lines (linear predictor, ratio 1, N^-1/2)

# (variable, panel title, y label) per row of plot_finite
FINITE_ROWS = (
    ("err_test", "A  test error", "test classification error"),
    ("agree_lin", "B  agreement with the linear predictor", "sign agreement with linear"),
    ("err_train", "C  training error", "training classification error"),
    ("fit_ratio", "D  fitted by all / if independent", "fit_all / fit_indep"),
)
FINITE_CURVES = ("eg_mc", "err_test", "err_train", "agree_lin", "fit_ratio", "fit_indep")


# --------------------------------------------------------------------------------------
# Finite training sets
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Finite:
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


def plot_finite(ds: xr.Dataset, path: str | os.PathLike | None = None) -> Figure:
    """Learning on a finite training set against time t (log axis from the first t > 0).

    Rows: (A) test classification error, with the linear predictor's (``err_lin``) as a
    dashed grey line; (B) sign agreement with the linear predictor (``agree_lin``);
    (C) training classification error; (D) ``fit_ratio`` = fraction of samples fitted by
    all members / the fraction expected if they were independent, with a band of
    +-2 ``fit_ratio_se`` and a line at 1. Each curve is the mean over ensemble members
    (and over ``seed`` if swept). Columns: one per value of ``model`` x ``labels`` (those
    that are dims; at most :data:`MAX_FINITE_COLUMNS`); colours: one per value of the
    other grid axes (e.g. K). x is shared within a column, y within a row. Axes are
    labelled ``"finite:<variable>"``. Saved atomically to ``path`` when given.
    """
    f = _reduce_finite(ds)
    ncols = len(f.columns)
    colours = _colours(len(f.curves))
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
        head = f"{_label(f.columns[c])}\n" if r == 0 and f.columns[c] else ""
        ax.set_title(head + title, fontsize="small")
        ax.set_ylabel(ylabel if c == 0 else "")
        ax.grid(True, which="major", alpha=0.3)
        _draw_finite_panel(ax, f, name, c, colours)
        if r == len(FINITE_ROWS) - 1:
            ax.set_xlabel("t (steps / N)")
    handles = {}
    for ax in axs.flat:
        handles.update(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="outside right upper", fontsize="small")
    runs = f" (means over {f.size} runs)" if f.size > 1 else ""
    fig.suptitle((f.title or "finite training set") + runs)
    _save(fig, path)
    return fig


def finite_summary(ds: xr.Dataset) -> dict[str, float]:
    """Headline numbers of a finite-training-set run, per column and curve of
    :func:`plot_finite`, as a flat dict of floats (NaN where undefined).

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
    f = _reduce_finite(ds)
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
        f"{_point_key({**col, **cur})}:{key}": float(values[i, j])
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


def _point_key(point: dict[str, Any]) -> str:
    """``"model=hmm,K=4"`` (``"all"`` without axes): the prefix of finite_summary keys."""
    return ",".join(f"{a}={_fmt(v)}" for a, v in point.items()) or "all"


def _reduce_finite(ds: xr.Dataset) -> _Finite:
    """Check a finite-training-set dataset and reduce it to a :class:`_Finite`."""
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
    _check_grid(ds, _swept_axes(ds), points=False)
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
    return _Finite(
        title=str(ds.attrs.get("title", "")),
        columns=_grid_points(ds, cols),
        curves=_grid_points(ds, others),
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
        da = _ensemble_mean(da.astype(float))
        da = da.expand_dims({d: self.ds.sizes[d] for d in grid if d not in da.dims})
        values = da.transpose(*grid, ...).values
        n_cols = math.prod(self.ds.sizes[d] for d in self.cols)
        return values.reshape(n_cols, -1, *values.shape[len(grid) :])


def _seed_combined_se(se: xr.DataArray | None) -> xr.DataArray | None:
    """The standard error of a mean over ``seed`` of independent estimates with standard
    errors ``se``: sqrt(mean(se^2) / n); ``se`` itself without a seed dim."""
    if se is None or "seed" not in se.dims:
        return se
    with _quiet():
        return np.sqrt((se**2).mean("seed") / se.notnull().sum("seed"))


def _grid_points(ds: xr.Dataset, dims: Sequence[str]) -> list[dict[str, Any]]:
    """Every combination of the ``dims`` values, in C order (one empty dict without dims)."""
    values = [(ds[d].values if d in ds.coords else np.arange(ds.sizes[d])).tolist() for d in dims]
    return [dict(zip(dims, v, strict=True)) for v in itertools.product(*values)]


def _colours(n: int) -> list:
    """One colour per curve: C0 alone, else evenly spread over the curve colour map."""
    return ["C0"] if n == 1 else [CURVE_CMAP(x) for x in np.linspace(0.0, 1.0, n)]


def _draw_finite_panel(ax: Axes, f: _Finite, name: str, col: int, colours: list) -> None:
    """One panel of :func:`plot_finite`: the curves of ``name`` in column ``col``."""
    ax.set_xscale("log")
    if not np.isfinite(f.curve[name][col]).any():
        ax.text(0.5, 0.5, f"no finite {name}", ha="center", transform=ax.transAxes)
        return
    shown = f.t > 0
    t = f.t[shown]
    for j, (point, colour) in enumerate(zip(f.curves, colours, strict=True)):
        y = f.curve[name][col, j, shown]
        if name == "fit_ratio":  # informative only where some but not all are fitted
            indep = f.curve["fit_indep"][col, j, shown]
            y = np.where((indep > FIT_WINDOW[0]) & (indep < FIT_WINDOW[1]), y, np.nan)
        label = _label(point) if point else "network"
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


# --------------------------------------------------------------------------------------
# Model comparison (Gaussian equivalence)
# --------------------------------------------------------------------------------------

MODEL_VARS = ("eg_sim", "eg_ode", "diverged")


@dataclass(frozen=True)
class _Models:
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
    m = _model_points(ds)
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
    mean_a, std_a, n_a = _ensemble_stats(eg.isel(point=ia))
    mean_b, std_b, n_b = _ensemble_stats(eg.isel(point=ib))
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
        ode = _ensemble_mean(m.g["eg_ode"].astype(float)).transpose("point", "t").values
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


def model_panels(ds: xr.Dataset) -> int:
    """How many learning-curve panels :func:`plot_models` would draw for ``ds``."""
    return len(_model_points(ds).distinct)


def plot_models(ds: xr.Dataset, path: str | os.PathLike | None = None) -> Figure:
    """Learning curves of several data models side by side, one panel per point of the
    other swept axes (e.g. per N; at most :data:`MAX_MODEL_PANELS`), log-log: each
    model's ensemble mean of eg_sim with a light band of +- one standard deviation over
    the runs, and its ``eg_ode`` dashed in the same colour when present (axes labelled
    ``"models:curves"``). With exactly two models (``hmm`` and ``get`` compared in that
    order if both are there) and an ``N`` axis, a last panel ``"models:gaps"`` draws
    :func:`gep_gaps`'s ``gap``, ``band`` and ``sem`` against N with their fitted power
    laws (:func:`fit_power`) and a N^-1/2 line through the first band point.
    Saved atomically to ``path`` when given.
    """
    m = _model_points(ds)
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
    nrows, ncols = _subplot_grid(n, 3)
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
        _loglog_axes(ax, _label(point), ylabel="eg" if p % ncols == 0 else "")
        if p == 0:
            ax.legend(fontsize="x-small")
    if gaps is not None:
        _draw_gaps(fig.add_subplot(nrows, ncols, n, label="models:gaps"), gaps)
    title = str(ds.attrs.get("title", "")) or f"models {', '.join(m.models)}"
    fig.suptitle(f"{title}: ensemble mean +- std of eg_sim")
    _save(fig, path)
    return fig


MAX_FINAL_PANELS = 8  # plot_model_finals: panels, one per (model, other axes) combination


def plot_model_finals(ds: xr.Dataset, path: str | os.PathLike | None = None) -> Figure:
    """Final eg of a product grid over data models: one panel per model and value of the
    axes other than the x axis (``K`` if swept, else the first axis) and the colour axis
    (the first remaining one, e.g. ``lr``); simulation (ensemble mean of the last finite
    eg_sim, averaged over seeds, error bars: standard deviation over the runs) as solid
    lines with markers, ``eg_ode`` dashed with open markers. Panels share the y axis,
    so the models compare at a glance (axes labelled ``"models:finals"``)."""
    swept = [a for a in _swept_axes(ds) if a != "seed"]
    if ds.attrs.get("grid_kind", "product") != "product" or "model" not in swept:
        raise ValueError("plot_model_finals: needs a product grid with a model axis")
    rest = [a for a in swept if a != "model"]
    if not rest:
        raise ValueError("plot_model_finals: needs an axis besides model")
    x_axis = "K" if "K" in rest else rest[0]
    colour_axis = next((a for a in rest if a != x_axis), None)
    panel_axes = ["model", *(a for a in rest if a not in (x_axis, colour_axis))]
    panels = _grid_points(ds, panel_axes)
    if len(panels) > MAX_FINAL_PANELS:
        raise ValueError(
            f"plot_model_finals: {len(panels)} panels over {', '.join(panel_axes)}; at most "
            f"{MAX_FINAL_PANELS}"
        )
    with _quiet():
        runs = _last_finite(ds["eg_sim"])  # (grid..., member)
        mean = runs.mean([d for d in ("member", "seed") if d in runs.dims])
        std = runs.std([d for d in ("member", "seed") if d in runs.dims])
        ode = (
            _last_finite(ds["eg_ode"]).mean("seed")
            if "seed" in ds.dims and "eg_ode" in ds
            else (_last_finite(ds["eg_ode"]) if "eg_ode" in ds else None)
        )
    colours = _colours(ds.sizes[colour_axis] if colour_axis else 1)
    nrows, ncols = _subplot_grid(len(panels), 4)
    fig = Figure(figsize=(ncols * PANEL_INCHES[0] + 1.2, nrows * PANEL_INCHES[1] + 0.8),
                 layout="constrained")  # fmt: skip
    FigureCanvasAgg(fig)
    x = np.asarray(ds[x_axis].values, float)
    first: Axes | None = None
    for p, panel in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, p + 1, sharey=first, label="models:finals")
        first = first or ax
        for c, colour in enumerate(colours):
            sel = {**panel, **({colour_axis: ds[colour_axis].values[c]} if colour_axis else {})}
            name = f"{colour_axis}={_short(sel[colour_axis])}" if colour_axis else "simulation"
            y, e = mean.sel(sel).values, std.sel(sel).values
            ax.errorbar(x, y, yerr=e, color=colour, marker="o", ms=4, lw=1.3, capsize=2,
                        label=name)  # fmt: skip
            if ode is not None:
                ax.plot(x, ode.sel(sel).values, color=colour, ls="--", marker="o", ms=4,
                        mfc="none", lw=1)  # fmt: skip
        ax.set_xscale("log" if x.min() > 0 and x.max() > 3 * x.min() else "linear")
        ax.set_xticks(x, labels=[_short(v) for v in ds[x_axis].values])
        ax.minorticks_off()
        ax.set_yscale("log")
        ax.set_xlabel(x_axis)
        ax.set_ylabel("final eg" if p % ncols == 0 else "")
        ax.set_title(_label(panel), fontsize="small")
        ax.grid(True, which="major", alpha=0.3)
        if p == 0:
            if ode is not None:
                ax.plot([], [], color=NEUTRAL, ls="--", marker="o", mfc="none", label="ODE")
            ax.legend(fontsize="x-small")
    title = str(ds.attrs.get("title", "")) or "models"
    fig.suptitle(f"{title}: final eg, simulation (mean +- std over runs) and ODE")
    _save(fig, path)
    return fig


def _model_points(ds: xr.Dataset) -> _Models:
    """Check a sweep over ``model`` and bring it to the points layout of :class:`_Models`."""
    swept = _swept_axes(ds)
    if "model" not in swept:
        raise ValueError(f"not a model comparison: 'model' is not among the swept axes {swept}")
    if "eg_sim" not in ds:
        raise ValueError("model comparison needs the simulation's 'eg_sim' (grid..., member, t)")
    g, axes, points = _grid_of(ds, MODEL_VARS, swept)
    if not points:
        g = g.stack(point=list(axes), create_index=False)
    others = tuple(x for x in axes if x != "model")
    n = g.sizes["point"]
    keys = [tuple(g[x].values[i].item() for x in others) for i in range(n)]
    where = {(str(x), k): i for i, (x, k) in enumerate(zip(g["model"].values, keys, strict=True))}
    if len(where) < n:
        raise ValueError("model comparison: some (model, point) appears twice in the grid")
    models = list(dict.fromkeys(str(x) for x in g["model"].values))
    return _Models(g=g, others=others, models=models, keys=keys, where=where)


def _ensemble_stats(eg: xr.DataArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per point: the ensemble mean and standard deviation (ddof 1) over time, skipping
    NaN, and the number of runs with some finite value; arrays (point, t) and (point,)."""
    ens = [d for d in ENSEMBLE_DIMS if d in eg.dims]
    eg = eg.astype(float)
    with _quiet():
        mean = eg.mean(ens, skipna=True).transpose("point", "t").values
        std = eg.std(ens, ddof=1, skipna=True).transpose("point", "t").values
    runs = eg.notnull().any("t").sum(ens).transpose("point").values
    return mean, std, runs.astype(float)


def _rms_over_time(t: np.ndarray):
    """A function: the root mean square over the last axis at the times t > 0 (NaN
    values skipped), each recorded time weighted equally."""
    later = t > 0

    def rms(a: np.ndarray) -> np.ndarray:
        with _quiet():
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


def _gap_pair(m: _Models) -> tuple[str, str] | None:
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
    mean, std, runs = _ensemble_stats(eg)
    mean, std = mean[0], std[0]
    lo, hi = mean - std, mean + std
    band = (t > 0) & np.isfinite(lo) & np.isfinite(hi) & (hi > 0)
    if runs[0] > 1 and band.any():
        ax.fill_between(
            t, np.where(lo > 0, lo, mean / 10), hi, where=band, color=colour, alpha=0.15, lw=0
        )
    _loglog_line(ax, t, mean, color=colour, lw=1.5, label=f"{model} ({runs[0]:.0f} runs)")
    if "eg_ode" in point:
        ode = _ensemble_mean(point["eg_ode"].astype(float)).values
        _loglog_line(ax, t, ode, color=colour, lw=1.2, ls="--", label=f"{model} ODE")


def _draw_gaps(ax: Axes, gaps: xr.Dataset) -> None:
    """gap, band and sem against N on log-log axes with fitted power laws."""
    N = np.asarray(gaps["N"].values, float)
    styles = (("gap", "o", "C3"), ("band", "s", "C0"), ("sem", "^", "C2"))
    for name, marker, colour in styles:
        y = np.asarray(gaps[name].values, float)
        slope, se = fit_power(N, y)
        fit = f"{slope:.2f}" + (f" +- {se:.2f}" if np.isfinite(se) else "")
        _loglog_line(ax, N, y, color=colour, marker=marker, lw=1.2, label=f"{name}: N^({fit})")
    band = np.asarray(gaps["band"].values, float)
    ok = np.flatnonzero(np.isfinite(band) & (band > 0))
    if ok.size:
        ref = band[ok[0]] * np.sqrt(N[ok[0]] / N)
        ax.plot(N, ref, ls=":", color=NEUTRAL, lw=1, label="N^-1/2")
    _loglog_axes(ax, f"gap vs N: {gaps.attrs['a']} - {gaps.attrs['b']}", "RMS over t")
    ax.set_xlabel("N")
    ax.set_xticks(N, labels=[_short(v) for v in N.tolist()])
    ax.minorticks_off()
    ax.legend(fontsize="x-small")
