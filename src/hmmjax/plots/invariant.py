"""Figure of the invariant-manifold experiment (``ds.attrs["experiment"] ==
"invariant"``, see :mod:`hmmjax.experiments.invariant`); the numbers it draws come from
:mod:`hmmjax.analysis.invariant`.

The dataset has optional grid dims among ``model``, ``alpha``, ``K`` (the width h) and
``P`` (the training set size p), then ``member`` and ``record`` (a swept ``seed`` counts
as more members); the final state of a lane is its last record (lanes that stopped early
repeat their last state). Every number shown is a mean over members (and seeds) with its
standard error, std (ddof 1) / sqrt(runs).

:func:`plot_invariant` chooses its panels from what the dataset holds:

- ``alpha`` swept: the final test error against alpha, and the final compression
  (``ratio`` = g_par / g_perp of the weight growth, ``Lambda`` = w_par / w_perp of the
  weights) against alpha, or for images (no informative directions, no ``ratio``) the
  relative change of the weights;
- ``P`` swept: learning curves, the final test error against P (log-log) per alpha, one
  panel per model, with the fitted power law p^-beta
  (:func:`hmmjax.analysis.invariant.fit_learning_curve`) and the theory's predicted slopes
  (beta_lazy for the largest alpha, beta_feature for the smallest, where the dataset has
  them); and the final ``ratio`` against P where it was measured;
- NTK analyses: the spectrum at initialisation and at the end, the label alignment
  (cumulative fraction of |y|^2 on the top k eigenvectors), and the test errors of kernel
  regression and the kernel SVM with either NTK next to the network's;
- always: training curves, alpha^2 x loss (the mean hinge loss) and the test error
  against gradient-flow time.

:func:`hmmjax.analysis.invariant.invariant_summary` reduces the same data to a flat dict
of floats.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter

from hmmjax.analysis.invariant import (
    InvariantData,
    final_values,
    fit_learning_curve,
    ntk_stage,
    reduce_invariant,
    run_matrix,
    run_stats,
    series_at,
    theory_exponents,
    training_curves,
)
from hmmjax.plots.common import (
    NEUTRAL,
    PANEL_INCHES,
    colours,
    point_label,
    save_figure,
    short_value,
    subplot_grid,
)

__all__ = [
    "MAX_PANELS",
    "MAX_LINES",
    "PANEL_COLS",
    "PANEL_SCALE",
    "STAGES",
    "KERNEL_METHODS",
    "plot_invariant",
]


MAX_PANELS = 12


MAX_LINES = 12  # lines (or groups of points) in one panel


PANEL_COLS = 4


PANEL_SCALE = 1.25  # panels a bit larger than PANEL_INCHES: they carry legends


STAGES = (("init", "--"), ("final", "-"))  # NTK at initialisation / at the end, line style


KERNEL_METHODS = (  # (label, variable, NTK stage, marker, filled)
    ("network", "err_test", None, "*", True),
    ("KR, init NTK", "kr_err", "init", "o", False),
    ("KR, final NTK", "kr_err", "final", "o", True),
    ("SVM, init NTK", "svm_err", "init", "s", False),
    ("SVM, final NTK", "svm_err", "final", "s", True),
)


_Panel = tuple[str, Callable[[Axes], None]]  # (axes label suffix, draw)


def plot_invariant(ds: xr.Dataset, path: str | os.PathLike | None = None) -> Figure:
    """The panels of an invariant-manifold run that ``ds`` has data for (see the module
    docstring), in a grid of at most :data:`PANEL_COLS` columns; axes labelled
    ``"invariant:<panel>"`` with panels ``alpha``, ``compression`` (against alpha),
    ``curves`` (one per model), ``compression_p`` (against P), ``ntk_spectrum``,
    ``ntk_alignment``, ``kernels`` and ``training`` (two: loss and test error). The NTK
    and training panels show the largest P and K. Points are means over members and seeds
    with error bars of one standard error. ``ValueError`` if there would be more than
    :data:`MAX_PANELS` panels or :data:`MAX_LINES` lines in one (select fewer models,
    alphas, ... first, e.g. ``ds.sel(K=[...])``). Saved atomically to ``path`` when given.
    """
    inv = reduce_invariant(ds)
    panels = _plan(inv)
    nrows, ncols = subplot_grid(len(panels), PANEL_COLS)
    width, height = (PANEL_SCALE * x for x in PANEL_INCHES)
    fig = Figure(figsize=(ncols * width + 0.6, nrows * height + 0.8), layout="constrained")
    FigureCanvasAgg(fig)
    for i, (name, draw) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, i + 1, label=f"invariant:{name}")
        draw(ax)
        ax.grid(True, which="major", alpha=0.3)
    title = str(ds.attrs.get("title", "")) or "invariant manifolds"
    runs = f"means over {inv.runs} runs, error bars: standard error" if inv.runs > 1 else ""
    fig.suptitle(f"{title}\n{runs}" if runs else title, fontsize="medium")
    save_figure(fig, path)
    return fig


def _plan(inv: InvariantData) -> list[_Panel]:
    """The panels ``inv`` has data for; ``ValueError`` if there are too many."""
    ds, lines = inv.ds, _LineCount(inv)
    panels: list[_Panel] = []
    if inv.swept("alpha"):
        lines.check("final test error against alpha", "model", "K", "P")
        panels += [("alpha", partial(_draw_alpha, inv))]
        if "ratio" in ds:
            panels += [("compression", partial(_draw_compression_alpha, inv))]
        elif "rel_change" in ds:  # images: no informative directions
            panels += [("weights", partial(_draw_weights_alpha, inv))]
    if inv.swept("P"):
        lines.check("learning curves", "alpha", "K")
        panels += [("curves", partial(_draw_curves, inv, m)) for m in inv.points("model")]
        if "ratio" in ds:
            lines.check("compression against P", "model", "alpha", "K")
            panels += [("compression_p", partial(_draw_compression_p, inv))]
    if "ntk" in ds.dims:
        lines.check("NTK panels", "model", "alpha")
        if "ntk_eig" in ds:
            panels += [("ntk_spectrum", partial(_draw_ntk, inv, "ntk_eig"))]
        if "ntk_align" in ds:
            panels += [("ntk_alignment", partial(_draw_ntk, inv, "ntk_align"))]
        if "kr_err" in ds or "svm_err" in ds:
            panels += [("kernels", partial(_draw_kernels, inv))]
    lines.check("training curves", "model", "alpha")
    panels += [("training", partial(_draw_training, inv, name)) for name in ("loss", "err_test")]
    if len(panels) > MAX_PANELS:
        raise ValueError(
            f"invariant figure: {len(panels)} panels ({_grid_text(inv)}); at most "
            f"{MAX_PANELS} (select fewer models, e.g. ds.sel(model=[...]))"
        )
    return panels


@dataclass(frozen=True)
class _LineCount:
    inv: InvariantData

    def check(self, panel: str, *axes: str) -> None:
        """``ValueError`` if the grid points of ``axes`` are more lines than MAX_LINES."""
        n = len(self.inv.points(*axes))
        if n > MAX_LINES:
            raise ValueError(
                f"invariant figure: {panel} would draw {n} lines, one per value of "
                f"{' x '.join(self.inv.dims(*axes))} ({_grid_text(self.inv)}); at most "
                f"{MAX_LINES} (select fewer, e.g. ds.sel(alpha=[...]))"
            )


def _describe(inv: InvariantData, point: dict[str, Any], axes: Sequence[str]) -> str:
    """``point_label(point)``; for an empty point, the first of ``axes`` that has a scalar
    coordinate (``"alpha=0.01"``), else ``"all"``."""
    if point:
        return point_label(point)
    known = {a: inv.value(point, a) for a in axes}
    return next((point_label({a: v}) for a, v in known.items() if v is not None), "all")


def _grid_text(inv: InvariantData) -> str:
    return " x ".join(f"{inv.ds.sizes[d]} {d}" for d in inv.grid) or "no grid"


def _bar(se: np.ndarray) -> np.ndarray:
    """Error bar half-lengths: the standard errors, 0 where undefined (one run)."""
    return np.nan_to_num(se, nan=0.0)


def _legend(ax: Axes) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="x-small")


class _PlainLogFormatter(LogFormatter):
    """The ticks a LogFormatter labels, as plain numbers (0.2, 3, 0.001)."""

    def __call__(self, x, pos=None) -> str:
        return f"{x:.3g}" if super().__call__(x, pos) else ""


def _log_y(ax: Axes) -> None:
    """A log y axis labelled with plain numbers instead of powers of ten."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(_PlainLogFormatter())
    ax.yaxis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False))


def _log_x(ax: Axes, x: np.ndarray, name: str) -> None:
    """A log x axis ticked at the grid values ``x`` of axis ``name``."""
    ax.set_xscale("log")
    ax.set_xticks(x, labels=[short_value(v) for v in x.tolist()])
    ax.minorticks_off()
    ax.set_xlabel(name)


def _note(inv: InvariantData, fixed: dict[str, Any]) -> str:
    """``" (P=64, K=32)"``: where the per-alpha panels look, if P or K is swept."""
    shown = {d: v for d, v in fixed.items() if inv.swept(d)}
    return f" ({point_label(shown)})" if shown else ""


def _draw_alpha(inv: InvariantData, ax: Axes) -> None:
    """Final test error against alpha, one line per value of the other grid dims."""
    alpha = np.asarray(inv.ds["alpha"].values, float)
    mean, se = run_stats(final_values(inv.ds, "err_test"))
    lines = inv.points("model", "K", "P")
    for point, colour in zip(lines, colours(len(lines)), strict=True):
        ax.errorbar(
            alpha, series_at(mean, point, "alpha"), yerr=_bar(series_at(se, point, "alpha")),
            color=colour, marker="o", ms=4, lw=1.3, capsize=2,
            label=point_label(point) if point else None,
        )  # fmt: skip
    _log_x(ax, alpha, "alpha")
    ax.set_ylabel("final test error")
    ax.set_title("test error against alpha", fontsize="small")
    _legend(ax)


def _draw_compression(
    inv: InvariantData, ax: Axes, x_axis: str, lines: list[dict[str, Any]], names: Sequence[str]
) -> None:
    """Final ``names`` (ratio solid, Lambda dashed) against ``x_axis``, one colour per
    line, log-log, with a line at 1 (no compression)."""
    x = np.asarray(inv.ds[x_axis].values, float)
    styles = {"ratio": ("-", "o", r"ratio $g_\parallel/g_\perp$"),
              "Lambda": ("--", "s", r"$\Lambda = w_\parallel/w_\perp$"),
              "rel_change": ("-", "o", r"$|w - w_0| / |w_0|$ at the end")}  # fmt: skip
    for name in names:
        ls, marker, text = styles[name]
        mean, se = run_stats(final_values(inv.ds, name))
        for point, colour in zip(lines, colours(len(lines)), strict=True):
            first = name == names[0] and bool(point)
            ax.errorbar(
                x, series_at(mean, point, x_axis), yerr=_bar(series_at(se, point, x_axis)),
                color=colour, ls=ls, marker=marker, ms=4, lw=1.3, capsize=2,
                label=point_label(point) if first else None,
            )  # fmt: skip
        if len(names) > 1:
            ax.plot([], [], color=NEUTRAL, ls=ls, marker=marker, ms=4, label=text)
    if "rel_change" not in names:
        ax.axhline(1.0, color=NEUTRAL, ls=":", lw=1)
    _log_x(ax, x, x_axis)
    _log_y(ax)
    ax.set_ylabel("final compression" if len(names) > 1 else styles[names[0]][2])
    _legend(ax)


def _draw_compression_alpha(inv: InvariantData, ax: Axes) -> None:
    _draw_compression(inv, ax, "alpha", inv.points("model", "K", "P"), ("ratio", "Lambda"))
    ax.set_title("compression against alpha (1 = none)", fontsize="small")


def _draw_weights_alpha(inv: InvariantData, ax: Axes) -> None:
    _draw_compression(inv, ax, "alpha", inv.points("model", "K", "P"), ("rel_change",))
    ax.set_title("relative change of the weights against alpha", fontsize="small")


def _draw_compression_p(inv: InvariantData, ax: Axes) -> None:
    _draw_compression(inv, ax, "P", inv.points("model", "alpha", "K"), ("ratio",))
    ax.set_title(r"growth compression $g_\parallel/g_\perp$ against P", fontsize="small")


def _draw_curves(inv: InvariantData, panel: dict[str, Any], ax: Axes) -> None:
    """Learning curves of one model: final test error against P per alpha (and K), the
    fitted power laws (solid) and the theory's slopes anchored at the first point of the
    curve at the largest (lazy, dotted) and smallest (feature, dash-dot) alpha."""
    p = np.asarray(inv.ds["P"].values, float)
    err = final_values(inv.ds, "err_test")
    mean, se = run_stats(err)
    theory = theory_exponents(inv.ds, panel.get("model"))
    lines = inv.points("alpha", "K")
    anchored: set[str] = set()
    for point, colour in zip(lines, colours(len(lines)), strict=True):
        sel = {**panel, **point}
        y = series_at(mean, sel, "P")
        beta, stderr, c = fit_learning_curve(p, run_matrix(err.sel(sel), "P"))
        regime = inv.regime(point)
        text = f"{_describe(inv, point, ('alpha', 'K'))}: " + _beta_text(beta, stderr)
        if regime and np.isfinite(theory[regime]):
            text += f" ({regime} theory {theory[regime]:.2f})"
        ax.errorbar(p, y, yerr=_bar(series_at(se, sel, "P")), color=colour, marker="o", ms=4,
                    ls="none", capsize=2)  # fmt: skip
        if np.isfinite(beta):
            ax.plot(p, np.exp(c) * p**-beta, color=colour, lw=1.3, label=text)
        else:
            ax.plot([], [], color=colour, marker="o", ls="none", label=text)
        if regime and regime not in anchored and np.isfinite(theory[regime]):
            anchored.add(regime)
            _draw_theory(ax, p, y, theory[regime], regime)
    _log_x(ax, p, "P")
    _log_y(ax)
    ax.set_ylabel("final test error")
    model = f"{panel['model']}: " if "model" in panel else ""
    ax.set_title(f"{model}learning curves, fit p^-β", fontsize="small")
    _legend(ax)


def _beta_text(beta: float, stderr: float) -> str:
    if not np.isfinite(beta):
        return "no fit"
    return f"β = {beta:.2f}" + (f" ± {stderr:.2f}" if np.isfinite(stderr) else "")


def _draw_theory(ax: Axes, p: np.ndarray, y: np.ndarray, beta: float, regime: str) -> None:
    """p^-beta through the first finite positive point of ``y``."""
    ok = np.flatnonzero(np.isfinite(y) & (y > 0))
    if ok.size:
        ref = y[ok[0]] * (p / p[ok[0]]) ** -beta
        ls = ":" if regime == "lazy" else "-."
        ax.plot(p, ref, color=NEUTRAL, ls=ls, lw=1.2, label=f"theory {regime}: β = {beta:.2f}")


def _draw_ntk(inv: InvariantData, name: str, ax: Axes) -> None:
    """NTK spectrum (``ntk_eig``) or label alignment (``ntk_align``) against the
    eigen-index, at initialisation (dashed) and at the end (solid), per model and alpha."""
    fixed = inv.fixed_ntk()
    da = inv.ds[name].sel(fixed)
    k = np.asarray(inv.ds["eig"].values if "eig" in inv.ds.coords else
                   np.arange(1, inv.ds.sizes["eig"] + 1), float)  # fmt: skip
    lines = inv.points("model", "alpha")
    for stage, ls in STAGES:
        mean = run_stats(ntk_stage(da, stage))[0]
        for point, colour in zip(lines, colours(len(lines)), strict=True):
            text = _describe(inv, point, ("model", "alpha")) if stage == "final" else None
            ax.plot(k, series_at(mean, point, "eig"), color=colour, ls=ls, lw=1.3, label=text)
        ax.plot([], [], color=NEUTRAL, ls=ls, label=f"{stage} NTK")
    ax.set_xlabel("k (eigen-index)")
    if name == "ntk_eig":
        _log_y(ax)
        ax.set_ylabel(r"$\lambda_k / \lambda_1$")
        ax.set_title(f"NTK spectrum{_note(inv, fixed)}", fontsize="small")
    else:
        ax.set_ylim(0, 1.02)
        ax.set_ylabel(r"fraction of $|y|^2$ on top k")
        ax.set_title(f"label alignment{_note(inv, fixed)}", fontsize="small")
    _legend(ax)


def _draw_kernels(inv: InvariantData, ax: Axes) -> None:
    """Test errors per model and alpha: the network (final), kernel regression and the
    kernel SVM with the NTK at initialisation (open) and at the end (filled)."""
    fixed = inv.fixed_ntk()
    groups = inv.points("model", "alpha")
    methods = [m for m in KERNEL_METHODS if m[1] in inv.ds]
    width = 0.8 / len(methods)
    for i, (text, name, stage, marker, filled) in enumerate(methods):
        da = final_values(inv.ds, name).sel(fixed)
        mean, se = run_stats(da if stage is None else ntk_stage(da, stage))
        x = np.arange(len(groups)) + (i - (len(methods) - 1) / 2) * width
        y = np.array([float(mean.sel(g)) for g in groups])
        e = np.array([float(se.sel(g)) for g in groups])
        colour = "k" if stage is None else f"C{i // 2}"
        ax.errorbar(x, y, yerr=_bar(e), ls="none", marker=marker, ms=6 if stage else 9,
                    color=colour, mfc=colour if filled else "none", capsize=2,
                    label=text)  # fmt: skip
    labels = [_describe(inv, g, ("model", "alpha")) for g in groups]
    rotate = {"rotation": 20, "ha": "right", "rotation_mode": "anchor"} if len(groups) > 3 else {}
    ax.set_xticks(np.arange(len(groups)), labels=labels, fontsize="x-small", **rotate)
    top = ax.get_ylim()[1]
    ax.set_ylim(0, 1.4 * top)  # room for the legend above the points
    ax.set_ylabel("test error")
    ax.set_title(f"network vs NTK kernels{_note(inv, fixed)}", fontsize="small")
    ax.legend(fontsize="x-small", loc="upper center", ncols=3)


def _draw_training(inv: InvariantData, name: str, ax: Axes) -> None:
    """alpha^2 x loss (the mean hinge loss; log) or the test error against gradient-flow
    time (the iteration without ``time``), per model and alpha, means over runs."""
    ds, fixed = inv.ds, inv.fixed()
    t_mean, y_mean = training_curves(inv, name)
    lines = inv.points("model", "alpha")
    for point, colour in zip(lines, colours(len(lines)), strict=True):
        t, y = series_at(t_mean, point, "record"), series_at(y_mean, point, "record")
        ok = (t > 0) & np.isfinite(y) & ((y > 0) if name == "loss" else True)
        ax.plot(t[ok], y[ok], color=colour, lw=1.3, label=_describe(inv, point, ("model", "alpha")))
    ax.set_xscale("log")
    ax.set_xlabel("gradient-flow time" if "time" in ds else "iteration")
    if name == "loss":
        _log_y(ax)
        ax.set_ylabel(r"$\alpha^2 \times$ loss (mean hinge)" if "alpha" in ds.coords else "loss")
        ax.set_title(f"training loss{_note(inv, fixed)}", fontsize="small")
    else:
        ax.set_ylabel("test error")
        ax.set_title(f"test error during training{_note(inv, fixed)}", fontsize="small")
    _legend(ax)
