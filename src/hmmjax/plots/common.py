"""Helpers shared by the figure modules: figure formats and atomic saving, panel sizes,
colours, labels of grid points, log-log lines and axes, subplot grids.

Figures are built on matplotlib's Agg canvas directly (no pyplot, no GUI, no global
figure registry), so this works the same on a laptop, a headless node and in tests.
"""

from __future__ import annotations

import io
import math
import os
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from hmmjax.analysis.common import format_value
from hmmjax.core.files import atomic_write_bytes

__all__ = [
    "FIGURE_FORMATS",
    "PANEL_INCHES",
    "CURVE_CMAP",
    "NEUTRAL",
    "check_figure_path",
    "save_figure",
    "short_value",
    "point_label",
    "subplot_grid",
    "colours",
    "loglog_line",
    "loglog_axes",
]


FIGURE_FORMATS = tuple(sorted(FigureCanvasAgg.get_supported_filetypes()))


PANEL_INCHES = (3.3, 2.6)  # width, height of one subplot


CURVE_CMAP = ListedColormap(colormaps["viridis"](np.linspace(0.0, 0.85, 256)), "viridis_dark")


NEUTRAL = "0.45"  # grey of reference lines (linear predictor, ratio 1, N^-1/2)


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


def save_figure(fig: Figure, path: str | os.PathLike | None) -> None:
    """Write ``fig`` atomically to ``path`` (format from its suffix); nothing if ``None``."""
    if path is not None:
        path = check_figure_path(path)
        buf = io.BytesIO()
        fig.savefig(buf, format=path.suffix[1:].lower(), dpi=150)
        atomic_write_bytes(path, buf.getvalue())


short_value = partial(format_value, digits=4)  # axis values in labels and ticks


def point_label(point: dict[str, Any]) -> str:
    """``"lr=0.1, K=2"`` for a grid point (``"all"`` for a seeds-only sweep)."""
    return ", ".join(f"{a}={short_value(v)}" for a, v in point.items()) or "all"


def subplot_grid(n: int, max_cols: int) -> tuple[int, int]:
    """Rows and columns for ``n`` subplots, at most ``max_cols`` a row."""
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def colours(n: int) -> list:
    """One colour per curve: C0 alone, else evenly spread over the curve colour map."""
    return ["C0"] if n == 1 else [CURVE_CMAP(x) for x in np.linspace(0.0, 1.0, n)]


def loglog_line(ax: Axes, x: np.ndarray, y: np.ndarray, **kwargs) -> bool:
    """Plot the points of ``(x, y)`` a log-log plot can show; ``False`` if there are none."""
    ok = (x > 0) & np.isfinite(y) & (y > 0)
    if not ok.any():
        return False
    ax.plot(x[ok], y[ok], **kwargs)
    return True


def loglog_axes(ax: Axes, title: str, ylabel: str = "eg") -> None:
    """Log-log axes against t, titled ``title`` (small), with a light major grid."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("t (steps / N)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize="small")
    ax.grid(True, which="major", alpha=0.3)
