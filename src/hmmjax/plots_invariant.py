"""Figure and headline numbers of the invariant-manifold experiment
(``ds.attrs["experiment"] == "invariant"``, see :mod:`hmmjax.invariant_run`).

The dataset has optional grid dims among ``model``, ``alpha``, ``K`` (the width h) and
``P`` (the training set size p), then ``member`` and ``record`` (a swept ``seed`` counts
as more members); the final state of a lane is its last record (lanes that stopped early
repeat their last state). Every number shown is a mean over members (and seeds) with its
standard error, std (ddof 1) / sqrt(runs).

:func:`plot_invariant` chooses its panels from what the dataset holds:

- ``alpha`` swept: the final test error against alpha, and the final compression
  (``ratio`` = g_par / g_perp of the weight growth, ``Lambda`` = w_par / w_perp of the
  weights) against alpha;
- ``P`` swept: learning curves, the final test error against P (log-log) per alpha, one
  panel per model, with the fitted power law p^-beta (:func:`hmmjax.invariant.fit_exponent`)
  and THEORY's predicted slopes (beta_lazy for the largest alpha, beta_feature for the
  smallest); and the final ``ratio`` against P;
- NTK analyses: the spectrum at initialisation and at the end, the label alignment
  (cumulative fraction of |y|^2 on the top k eigenvectors), and the test errors of kernel
  regression and the kernel SVM with either NTK next to the network's;
- always: training curves, alpha^2 x loss (the mean hinge loss) and the test error
  against gradient-flow time.

:func:`invariant_summary` reduces the same data to a flat dict of floats.
"""

from __future__ import annotations

import json
import math
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

from hmmjax.invariant import fit_exponent, predicted_exponents
from hmmjax.plots import PANEL_INCHES, _label, _quiet, _save, _short, _subplot_grid
from hmmjax.plots_experiments import NEUTRAL, _colours, _grid_points, _point_key

__all__ = [
    "ALIGN_K",
    "GRID_AXES",
    "MAX_LINES",
    "MAX_PANELS",
    "RUN_DIMS",
    "invariant_summary",
    "plot_invariant",
]

GRID_AXES = ("model", "alpha", "K", "P")  # grid dims: lines and panels
RUN_DIMS = ("seed", "member")  # averaged over: the runs of a grid point
MAX_PANELS = 12
MAX_LINES = 12  # lines (or groups of points) in one panel
PANEL_COLS = 4
PANEL_SCALE = 1.25  # panels a bit larger than plots.PANEL_INCHES: they carry legends
ALIGN_K = 10  # invariant_summary: label alignment on the top ALIGN_K eigenvectors
STAGES = (("init", "--"), ("final", "-"))  # NTK at initialisation / at the end
KERNEL_METHODS = (  # (label, variable, NTK stage, marker, filled)
    ("network", "err_test", None, "*", True),
    ("KR, init NTK", "kr_err", "init", "o", False),
    ("KR, final NTK", "kr_err", "final", "o", True),
    ("SVM, init NTK", "svm_err", "init", "s", False),
    ("SVM, final NTK", "svm_err", "final", "s", True),
)


@dataclass(frozen=True)
class _Inv:
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
        return _grid_points(self.ds, self.dims(*axes))

    def fixed(self) -> dict[str, Any]:
        """The largest P and K: where per-alpha panels (NTK, training) look."""
        return {d: self.ds[d].values.max().item() for d in self.dims("P", "K")}

    def value(self, point: dict[str, Any], axis: str) -> Any:
        """``axis`` at ``point``, else its scalar coordinate, else ``None``."""
        if axis in point:
            return point[axis]
        if axis in self.ds.coords and self.ds[axis].ndim == 0:
            return self.ds[axis].item()
        return None

    def describe(self, point: dict[str, Any], axes: Sequence[str]) -> str:
        """``_label(point)``; for an empty point, the first of ``axes`` that has a scalar
        coordinate (``"alpha=0.01"``), else ``"all"``."""
        if point:
            return _label(point)
        known = {a: self.value(point, a) for a in axes}
        return next((_label({a: v}) for a, v in known.items() if v is not None), "all")


def _reduce(ds: xr.Dataset) -> _Inv:
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
    return _Inv(ds=ds, grid=tuple(d for d in dims if d in GRID_AXES), runs=runs)


# ---- numbers ---------------------------------------------------------------------------


def _final(ds: xr.Dataset, name: str) -> xr.DataArray:
    """``name`` at the last record (the final state of every lane), as floats."""
    da = ds[name].astype(float)
    return da.isel(record=-1) if "record" in da.dims else da


def _run_stats(da: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Mean and standard error over members and seeds, skipping NaN (NaN se for 1 run)."""
    runs = [d for d in RUN_DIMS if d in da.dims]
    da = da.astype(float)
    with _quiet():
        n = da.notnull().sum(runs)
        se = da.std(runs, ddof=1) / np.sqrt(n.where(n > 0))
        return da.mean(runs), se


def _series(da: xr.DataArray, point: dict[str, Any], *dims: str) -> np.ndarray:
    """``da`` at ``point``, its remaining dims ordered as ``dims``, as floats."""
    return np.asarray(da.sel(point).transpose(*dims).values, float)


def _run_matrix(da: xr.DataArray, x: str) -> np.ndarray:
    """``da`` (runs and ``x`` only) as an array (run, x)."""
    runs = [d for d in RUN_DIMS if d in da.dims]
    if not runs:
        return np.asarray(da.transpose(x).values, float)[None]
    return np.asarray(da.stack(run=runs).transpose("run", x).values, float)


def _fit(p: np.ndarray, runs: np.ndarray) -> tuple[float, float, float]:
    """err ~ exp(c) p^-beta fitted to the runs (run, p) by ``fit_exponent`` (mean over
    runs, weighted by its standard errors with several runs): ``(beta, stderr, c)``;
    runs with a non-finite value are left out; NaN if fewer than two points remain."""
    runs = runs[np.isfinite(runs).all(axis=1)]
    if not len(runs):
        return math.nan, math.nan, math.nan
    try:
        with _quiet():
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


def _theory(ds: xr.Dataset, model: Any = None) -> dict[str, float]:
    """THEORY's ``lazy`` and ``feature`` exponents and ``d_par`` of ``model`` (from
    ``attrs["by_model"][model]``, else the attributes; computed from d and d_par when the
    exponents are missing); NaN where unknown."""
    attrs = {**ds.attrs, **_by_model(ds).get(str(model), {})}
    lazy, feature = attrs.get("beta_lazy"), attrs.get("beta_feature")
    if (lazy is None or feature is None) and "d" in attrs and "d_par" in attrs:
        pred = predicted_exponents(int(attrs["d"]), int(attrs["d_par"]))
        lazy, feature = pred["lazy"], pred["feature"]
    return {
        "lazy": math.nan if lazy is None else float(lazy),
        "feature": math.nan if feature is None else float(feature),
        "d_par": float(attrs.get("d_par", math.nan)),
    }


def _regime(inv: _Inv, point: dict[str, Any]) -> str | None:
    """Which predicted slope a learning curve is compared with: ``"lazy"`` at the largest
    alpha, ``"feature"`` at the smallest (one alpha: lazy iff alpha >= 1), else None."""
    alpha = inv.value(point, "alpha")
    if alpha is None:
        return None
    if not inv.swept("alpha"):
        return "lazy" if alpha >= 1 else "feature"
    values = inv.ds["alpha"].values
    return "lazy" if alpha == values.max() else "feature" if alpha == values.min() else None


def _stage(da: xr.DataArray, stage: str) -> xr.DataArray:
    """``da`` with the NTK at ``"init"`` or ``"final"`` (index 0 or 1 without labels)."""
    if "ntk" in da.coords:
        return da.sel(ntk=stage)
    return da.isel(ntk=[s for s, _ in STAGES].index(stage))


def _align_k(ds: xr.Dataset) -> int:
    """The k of the summary's label alignment: ALIGN_K, or the largest k available."""
    n = ds.sizes["eig"]
    k = ds["eig"].values if "eig" in ds.coords else np.arange(1, n + 1)
    return int(ALIGN_K if ALIGN_K in k else k.max())


def _align_at(ds: xr.Dataset, k: int) -> xr.DataArray:
    da = ds["ntk_align"]
    return da.sel(eig=k) if "eig" in ds.coords else da.isel(eig=k - 1)


def invariant_summary(ds: xr.Dataset) -> dict[str, float]:
    """Headline numbers of an invariant-manifold run as a flat dict of floats (NaN where
    undefined). Keys are ``"<point>:<quantity>"`` with ``<point>`` like
    ``"model=stripe,alpha=0.01"`` (``"all"`` without grid dims). Means are over members
    and seeds, ``_se`` their standard errors.

    - per grid point: ``err_test``, ``err_test_se``, ``ratio``, ``ratio_se``, ``Lambda``,
      ``Lambda_se`` (final values) and ``converged`` (the fraction of runs);
    - with the NTK analyses, per grid point: ``kr_err_init``, ``kr_err_final``,
      ``svm_err_init``, ``svm_err_final`` and ``align_init``, ``align_final``: the label
      alignment on the top k eigenvectors, k = ``"align_k"`` (ALIGN_K or the largest k);
    - with P swept, per (model, alpha, K): ``beta`` and ``beta_se`` fitted to the final
      test error against P (:func:`hmmjax.invariant.fit_exponent`), THEORY's
      ``beta_lazy`` and ``beta_feature`` and ``d_par``.
    """
    inv = _reduce(ds)
    out: dict[str, float] = {}
    _summary_finals(inv, out)
    if "ntk" in ds.dims:
        _summary_ntk(inv, out)
    if inv.swept("P"):
        _summary_exponents(inv, out)
    return out


def _summary_finals(inv: _Inv, out: dict[str, float]) -> None:
    stats = {name: _run_stats(_final(inv.ds, name)) for name in ("err_test", "ratio", "Lambda")}
    if "converged" in inv.ds:
        stats["converged"] = (_run_stats(inv.ds["converged"])[0], None)
    for point in inv.points(*GRID_AXES):
        key = _point_key(point)
        for name, (mean, se) in stats.items():
            out[f"{key}:{name}"] = float(mean.sel(point))
            if se is not None:
                out[f"{key}:{name}_se"] = float(se.sel(point))


def _summary_ntk(inv: _Inv, out: dict[str, float]) -> None:
    ds = inv.ds
    values = {
        f"{name}_{stage}": _run_stats(_stage(ds[name], stage))[0]
        for name in ("kr_err", "svm_err")
        if name in ds
        for stage, _ in STAGES
    }
    if "ntk_align" in ds:
        k = _align_k(ds)
        out["align_k"] = float(k)
        for stage, _ in STAGES:
            values[f"align_{stage}"] = _run_stats(_stage(_align_at(ds, k), stage))[0]
    for point in inv.points(*GRID_AXES):
        for name, mean in values.items():
            out[f"{_point_key(point)}:{name}"] = float(mean.sel(point))


def _summary_exponents(inv: _Inv, out: dict[str, float]) -> None:
    err = _final(inv.ds, "err_test")
    p = np.asarray(inv.ds["P"].values, float)
    for point in inv.points("model", "alpha", "K"):
        beta, stderr, _ = _fit(p, _run_matrix(err.sel(point), "P"))
        theory = _theory(inv.ds, point.get("model"))
        key = _point_key(point)
        out[f"{key}:beta"], out[f"{key}:beta_se"] = beta, stderr
        out[f"{key}:beta_lazy"] = theory["lazy"]
        out[f"{key}:beta_feature"] = theory["feature"]
        out[f"{key}:d_par"] = theory["d_par"]


# ---- the figure ------------------------------------------------------------------------

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
    inv = _reduce(ds)
    panels = _plan(inv)
    nrows, ncols = _subplot_grid(len(panels), PANEL_COLS)
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
    _save(fig, path)
    return fig


def _plan(inv: _Inv) -> list[_Panel]:
    """The panels ``inv`` has data for; ``ValueError`` if there are too many."""
    ds, lines = inv.ds, _LineCount(inv)
    panels: list[_Panel] = []
    if inv.swept("alpha"):
        lines.check("final test error against alpha", "model", "K", "P")
        panels += [("alpha", partial(_draw_alpha, inv))]
        panels += [("compression", partial(_draw_compression_alpha, inv))]
    if inv.swept("P"):
        lines.check("learning curves", "alpha", "K")
        lines.check("compression against P", "model", "alpha", "K")
        panels += [("curves", partial(_draw_curves, inv, m)) for m in inv.points("model")]
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
    inv: _Inv

    def check(self, panel: str, *axes: str) -> None:
        """``ValueError`` if the grid points of ``axes`` are more lines than MAX_LINES."""
        n = len(self.inv.points(*axes))
        if n > MAX_LINES:
            raise ValueError(
                f"invariant figure: {panel} would draw {n} lines, one per value of "
                f"{' x '.join(self.inv.dims(*axes))} ({_grid_text(self.inv)}); at most "
                f"{MAX_LINES} (select fewer, e.g. ds.sel(alpha=[...]))"
            )


def _grid_text(inv: _Inv) -> str:
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
    ax.set_xticks(x, labels=[_short(v) for v in x.tolist()])
    ax.minorticks_off()
    ax.set_xlabel(name)


def _note(inv: _Inv, fixed: dict[str, Any]) -> str:
    """``" (P=64, K=32)"``: where the per-alpha panels look, if P or K is swept."""
    shown = {d: v for d, v in fixed.items() if inv.swept(d)}
    return f" ({_label(shown)})" if shown else ""


def _draw_alpha(inv: _Inv, ax: Axes) -> None:
    """Final test error against alpha, one line per value of the other grid dims."""
    alpha = np.asarray(inv.ds["alpha"].values, float)
    mean, se = _run_stats(_final(inv.ds, "err_test"))
    lines = inv.points("model", "K", "P")
    for point, colour in zip(lines, _colours(len(lines)), strict=True):
        ax.errorbar(
            alpha, _series(mean, point, "alpha"), yerr=_bar(_series(se, point, "alpha")),
            color=colour, marker="o", ms=4, lw=1.3, capsize=2,
            label=_label(point) if point else None,
        )  # fmt: skip
    _log_x(ax, alpha, "alpha")
    ax.set_ylabel("final test error")
    ax.set_title("test error against alpha", fontsize="small")
    _legend(ax)


def _draw_compression(
    inv: _Inv, ax: Axes, x_axis: str, lines: list[dict[str, Any]], names: Sequence[str]
) -> None:
    """Final ``names`` (ratio solid, Lambda dashed) against ``x_axis``, one colour per
    line, log-log, with a line at 1 (no compression)."""
    x = np.asarray(inv.ds[x_axis].values, float)
    styles = {"ratio": ("-", "o", r"ratio $g_\parallel/g_\perp$"),
              "Lambda": ("--", "s", r"$\Lambda = w_\parallel/w_\perp$")}  # fmt: skip
    for name in names:
        ls, marker, text = styles[name]
        mean, se = _run_stats(_final(inv.ds, name))
        for point, colour in zip(lines, _colours(len(lines)), strict=True):
            first = name == names[0] and bool(point)
            ax.errorbar(
                x, _series(mean, point, x_axis), yerr=_bar(_series(se, point, x_axis)),
                color=colour, ls=ls, marker=marker, ms=4, lw=1.3, capsize=2,
                label=_label(point) if first else None,
            )  # fmt: skip
        if len(names) > 1:
            ax.plot([], [], color=NEUTRAL, ls=ls, marker=marker, ms=4, label=text)
    ax.axhline(1.0, color=NEUTRAL, ls=":", lw=1)
    _log_x(ax, x, x_axis)
    _log_y(ax)
    ax.set_ylabel("final compression" if len(names) > 1 else styles[names[0]][2])
    _legend(ax)


def _draw_compression_alpha(inv: _Inv, ax: Axes) -> None:
    _draw_compression(inv, ax, "alpha", inv.points("model", "K", "P"), ("ratio", "Lambda"))
    ax.set_title("compression against alpha (1 = none)", fontsize="small")


def _draw_compression_p(inv: _Inv, ax: Axes) -> None:
    _draw_compression(inv, ax, "P", inv.points("model", "alpha", "K"), ("ratio",))
    ax.set_title(r"growth compression $g_\parallel/g_\perp$ against P", fontsize="small")


def _draw_curves(inv: _Inv, panel: dict[str, Any], ax: Axes) -> None:
    """Learning curves of one model: final test error against P per alpha (and K), the
    fitted power laws (solid) and THEORY's slopes anchored at the first point of the
    curve at the largest (lazy, dotted) and smallest (feature, dash-dot) alpha."""
    p = np.asarray(inv.ds["P"].values, float)
    err = _final(inv.ds, "err_test")
    mean, se = _run_stats(err)
    theory = _theory(inv.ds, panel.get("model"))
    lines = inv.points("alpha", "K")
    anchored: set[str] = set()
    for point, colour in zip(lines, _colours(len(lines)), strict=True):
        sel = {**panel, **point}
        y = _series(mean, sel, "P")
        beta, stderr, c = _fit(p, _run_matrix(err.sel(sel), "P"))
        regime = _regime(inv, point)
        text = f"{inv.describe(point, ('alpha', 'K'))}: " + _beta_text(beta, stderr)
        if regime:
            text += f" ({regime} theory {theory[regime]:.2f})"
        ax.errorbar(p, y, yerr=_bar(_series(se, sel, "P")), color=colour, marker="o", ms=4,
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


def _draw_ntk(inv: _Inv, name: str, ax: Axes) -> None:
    """NTK spectrum (``ntk_eig``) or label alignment (``ntk_align``) against the
    eigen-index, at initialisation (dashed) and at the end (solid), per model and alpha."""
    fixed = inv.fixed()
    da = inv.ds[name].sel(fixed)
    k = np.asarray(inv.ds["eig"].values if "eig" in inv.ds.coords else
                   np.arange(1, inv.ds.sizes["eig"] + 1), float)  # fmt: skip
    lines = inv.points("model", "alpha")
    for stage, ls in STAGES:
        mean = _run_stats(_stage(da, stage))[0]
        for point, colour in zip(lines, _colours(len(lines)), strict=True):
            text = inv.describe(point, ("model", "alpha")) if stage == "final" else None
            ax.plot(k, _series(mean, point, "eig"), color=colour, ls=ls, lw=1.3, label=text)
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


def _draw_kernels(inv: _Inv, ax: Axes) -> None:
    """Test errors per model and alpha: the network (final), kernel regression and the
    kernel SVM with the NTK at initialisation (open) and at the end (filled)."""
    fixed = inv.fixed()
    groups = inv.points("model", "alpha")
    methods = [m for m in KERNEL_METHODS if m[1] in inv.ds]
    width = 0.8 / len(methods)
    for i, (text, name, stage, marker, filled) in enumerate(methods):
        da = _final(inv.ds, name).sel(fixed)
        mean, se = _run_stats(da if stage is None else _stage(da, stage))
        x = np.arange(len(groups)) + (i - (len(methods) - 1) / 2) * width
        y = np.array([float(mean.sel(g)) for g in groups])
        e = np.array([float(se.sel(g)) for g in groups])
        colour = "k" if stage is None else f"C{i // 2}"
        ax.errorbar(x, y, yerr=_bar(e), ls="none", marker=marker, ms=6 if stage else 9,
                    color=colour, mfc=colour if filled else "none", capsize=2,
                    label=text)  # fmt: skip
    labels = [inv.describe(g, ("model", "alpha")) for g in groups]
    rotate = {"rotation": 20, "ha": "right", "rotation_mode": "anchor"} if len(groups) > 3 else {}
    ax.set_xticks(np.arange(len(groups)), labels=labels, fontsize="x-small", **rotate)
    top = ax.get_ylim()[1]
    ax.set_ylim(0, 1.4 * top)  # room for the legend above the points
    ax.set_ylabel("test error")
    ax.set_title(f"network vs NTK kernels{_note(inv, fixed)}", fontsize="small")
    ax.legend(fontsize="x-small", loc="upper center", ncols=3)


def _draw_training(inv: _Inv, name: str, ax: Axes) -> None:
    """alpha^2 x loss (the mean hinge loss; log) or the test error against gradient-flow
    time (the iteration without ``time``), per model and alpha, means over runs."""
    ds, fixed = inv.ds, inv.fixed()
    da = ds[name].astype(float)
    if name == "loss" and "alpha" in ds.coords:
        da = da * ds["alpha"] ** 2
    clock = ds["time"] if "time" in ds else ds["iteration"].broadcast_like(da)
    y_mean = _run_stats(da.sel(fixed))[0]
    t_mean = _run_stats(clock.sel(fixed))[0]
    lines = inv.points("model", "alpha")
    for point, colour in zip(lines, _colours(len(lines)), strict=True):
        t, y = _series(t_mean, point, "record"), _series(y_mean, point, "record")
        ok = (t > 0) & np.isfinite(y) & ((y > 0) if name == "loss" else True)
        ax.plot(t[ok], y[ok], color=colour, lw=1.3, label=inv.describe(point, ("model", "alpha")))
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
