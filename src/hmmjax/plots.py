"""Figures of learning curves: simulation ensembles (mean and band) and ODE predictions.

Figures are built on matplotlib's Agg canvas directly (no pyplot, no GUI, no global
figure registry), so this works the same on a laptop, a headless node and in tests.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hmmjax.results import atomic_write_bytes

__all__ = ["ENSEMBLE_DIMS", "FIGURE_FORMATS", "check_figure_path", "plot_learning_curves"]

ENSEMBLE_DIMS = ("member", "seed")  # averaged over; every other extra dim is one curve
FIGURE_FORMATS = tuple(sorted(FigureCanvasAgg.get_supported_filetypes()))
SIMULATION_CURVES = (("eg", "analytic"), ("eg_mc", "Monte Carlo"))


def check_figure_path(path: str | os.PathLike) -> Path:
    """``path`` if matplotlib can write its format (from the suffix), else ``ValueError``."""
    path = Path(path)
    fmt = path.suffix[1:].lower()
    if fmt not in FIGURE_FORMATS:
        raise ValueError(
            f"figure {str(path)!r}: cannot write format {fmt or '(no suffix)'!r}; "
            f"use one of .{', .'.join(FIGURE_FORMATS)}"
        )
    return path


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
    if path is not None:
        path = check_figure_path(path)
        buf = io.BytesIO()
        fig.savefig(buf, format=path.suffix[1:].lower(), dpi=150)
        atomic_write_bytes(path, buf.getvalue())
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
        suffix = ", ".join(f"{d}={_fmt(curve[d].item())}" for d in other if d in curve.coords)
        yield curve.drop_vars(["_curve", *other], errors="ignore"), ", " + suffix


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, int | float | np.number) else str(value)


def _times(curve: xr.DataArray) -> np.ndarray:
    t = _time_dim(curve)
    return np.asarray(curve[t].values if t in curve.coords else np.arange(curve.sizes[t]), float)


def _line(ax, curve: xr.DataArray, **kwargs) -> bool:
    x, y = _times(curve), np.asarray(curve.values, float)
    ok = (x > 0) & np.isfinite(y) & (y > 0)  # what a log-log plot can show
    if not ok.any():
        return False
    ax.plot(x[ok], y[ok], **kwargs)
    return True


def _draw_ensemble(ax, da: xr.DataArray, label: str, index: int, style: str, n_vars: int) -> bool:
    ens = [d for d in da.dims if d in ENSEMBLE_DIMS]
    size = int(np.prod([da.sizes[d] for d in ens])) if ens else 1
    drawn = False
    curves = list(_curves(da, tuple(ens)))
    for j, (curve, suffix) in enumerate(curves):
        color = f"C{j if len(curves) > 1 else index}"
        ls = style if len(curves) > 1 or n_vars > 1 else "-"
        t = _time_dim(curve)
        values = np.asarray(curve.transpose(..., t).values, float).reshape(-1, curve.sizes[t])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN times of diverged runs
            mean = np.nanmean(values, axis=0)
            lo, hi = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
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
