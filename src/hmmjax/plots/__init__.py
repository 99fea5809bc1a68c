"""Figures (matplotlib, Agg): they only draw what ``hmmjax.analysis`` computes."""

from __future__ import annotations

from hmmjax.plots.common import (
    CURVE_CMAP,
    FIGURE_FORMATS,
    NEUTRAL,
    PANEL_INCHES,
    check_figure_path,
    colours,
    loglog_axes,
    loglog_line,
    point_label,
    save_figure,
    short_value,
    subplot_grid,
)
from hmmjax.plots.experiments import (
    FINITE_ROWS,
    MAX_FINAL_PANELS,
    MAX_MODEL_PANELS,
    model_panels,
    plot_finite,
    plot_model_finals,
    plot_models,
)
from hmmjax.plots.invariant import (
    KERNEL_METHODS,
    MAX_LINES,
    MAX_PANELS,
    PANEL_COLS,
    PANEL_SCALE,
    STAGES,
    plot_invariant,
)
from hmmjax.plots.optimal import plot_schedule
from hmmjax.plots.results import plot_results
from hmmjax.plots.sweep import (
    MAX_ANNOTATED_CELLS,
    MAX_COMPARE_PANELS,
    MAX_CURVE_PANELS,
    SIMULATION_CURVES,
    plot_learning_curves,
    plot_sweep,
)

__all__ = [
    "CURVE_CMAP",
    "FIGURE_FORMATS",
    "FINITE_ROWS",
    "KERNEL_METHODS",
    "MAX_ANNOTATED_CELLS",
    "MAX_COMPARE_PANELS",
    "MAX_CURVE_PANELS",
    "MAX_FINAL_PANELS",
    "MAX_LINES",
    "MAX_MODEL_PANELS",
    "MAX_PANELS",
    "NEUTRAL",
    "PANEL_COLS",
    "PANEL_INCHES",
    "PANEL_SCALE",
    "SIMULATION_CURVES",
    "STAGES",
    "check_figure_path",
    "colours",
    "loglog_axes",
    "loglog_line",
    "model_panels",
    "plot_finite",
    "plot_invariant",
    "plot_learning_curves",
    "plot_model_finals",
    "plot_models",
    "plot_results",
    "plot_schedule",
    "plot_sweep",
    "point_label",
    "save_figure",
    "short_value",
    "subplot_grid",
]
