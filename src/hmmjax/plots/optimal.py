"""The figure of ``hmmjax optimise``: the optimised schedule against the best constant
rate (lr against t), the learning curves of both (ODE lines; simulation means with their
standard-error bands when the run checked them), and the objective over the
optimisation steps. A grid draws one colour per point."""

from __future__ import annotations

import os

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from hmmjax.analysis.common import grid_points
from hmmjax.analysis.optimal import schedule_gain
from hmmjax.plots.common import (
    NEUTRAL,
    PANEL_INCHES,
    colours,
    loglog_axes,
    loglog_line,
    point_label,
    save_figure,
)

__all__ = ["plot_schedule"]

_NEEDED = ("lr_opt", "lr_const", "eg_ode_opt", "eg_ode_const", "objective", "objective_const")


def plot_schedule(ds: xr.Dataset, path: str | os.PathLike | None = None) -> Figure:
    """Three panels: lr(t), eg(t), objective over the optimisation steps."""
    missing = [v for v in _NEEDED if v not in ds]
    if missing:
        raise ValueError(f"an optimise results file needs {', '.join(missing)}")
    dims = list(ds["lr_const"].dims)
    points = grid_points(ds, dims)
    cs = colours(len(points))
    fig = Figure(figsize=(3 * PANEL_INCHES[0] * 1.15, PANEL_INCHES[1] * 1.3), layout="constrained")
    ax_lr, ax_eg, ax_obj = fig.subplots(1, 3)
    t = ds["t"].values
    sim = "eg_sim_opt" in ds
    for point, c in zip(points, cs, strict=True):
        p = ds.sel(point) if point else ds
        label = point_label(point) if point else None
        ax_lr.plot(t, p["lr_opt"].values, color=c, label=label or "optimised")
        ax_lr.axhline(float(p["lr_const"]), color=c, ls="--", lw=1,
                      label=None if label else "best constant")  # fmt: skip
        c_opt, c_const = (c, c) if label else ("C0", "C3")
        loglog_line(ax_eg, t, p["eg_ode_opt"].values, color=c_opt,
                    label=label or "ODE, optimised")  # fmt: skip
        loglog_line(ax_eg, t, p["eg_ode_const"].values, color=c_const, ls="--",
                    label=None if label else "ODE, best constant")  # fmt: skip
        best = float(p["objective_const"].min())  # the best constant rate's objective
        ax_obj.plot(p["step"].values, p["objective"].values / best, color=c, label=label)
    if sim:
        for name, c in (("opt", "C0"), ("const", "C3")):
            eg = ds[f"eg_sim_{name}"]
            E = eg.sizes["member"]
            mean, se = eg.mean("member").values, (eg.std("member") / np.sqrt(E)).values
            ax_eg.fill_between(t, mean - se, mean + se, color=c, alpha=0.25, lw=0)
            label = f"simulation ({E} students, +- 1 s.e.)" if name == "opt" else None
            ax_eg.plot(t, mean, color=c, marker=".", ls="none", ms=3, label=label)
    ax_lr.set_yscale("log")
    ax_lr.set_xlabel("t (steps / N)")
    ax_lr.set_ylabel("eta(t)")
    ax_lr.set_title("learning rate", fontsize="small")
    ax_lr.grid(True, alpha=0.3)
    loglog_axes(ax_eg, _eg_title(ds) if sim else "generalisation error")
    ax_obj.axhline(1.0, color=NEUTRAL, ls="--", lw=1)
    ax_obj.set_xlabel("optimisation step")
    ax_obj.set_ylabel(f"objective ({ds.attrs.get('objective', '?')} eg) / best constant's")
    ax_obj.set_title("through the ODE", fontsize="small")
    ax_obj.grid(True, alpha=0.3)
    for ax in (ax_lr, ax_eg):
        ax.legend(fontsize="x-small")
    fig.suptitle(str(ds.attrs.get("title", "optimal schedule")), fontsize="small")
    save_figure(fig, path)
    return fig


def _eg_title(ds: xr.Dataset) -> str:
    g = schedule_gain(ds)
    return (f"final eg: {g['eg_opt']:.4g} +- {g['eg_opt_se']:.2g} (optimised), "
            f"{g['eg_const']:.4g} +- {g['eg_const_se']:.2g} (constant)")  # fmt: skip
