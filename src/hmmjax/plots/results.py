"""The figure of a results file: :func:`plot_results` picks the figure module that fits
what the dataset holds (it is the only module that imports the figure modules)."""

from __future__ import annotations

import os

import xarray as xr
from matplotlib.figure import Figure

from hmmjax.analysis.sweep import swept_axes
from hmmjax.plots.experiments import (
    MAX_MODEL_PANELS,
    model_panels,
    plot_finite,
    plot_model_finals,
    plot_models,
)
from hmmjax.plots.invariant import plot_invariant
from hmmjax.plots.optimal import plot_schedule
from hmmjax.plots.sweep import plot_learning_curves, plot_sweep

__all__ = ["plot_results"]


def plot_results(ds: xr.Dataset, path: str | os.PathLike | None = None) -> Figure:
    """The figure of a results file, chosen from what it holds:

    - invariant manifolds (``attrs["experiment"] == "invariant"``): ``plot_invariant``;
    - finite training sets (``attrs["experiment"] == "finite"``): ``plot_finite``;
    - optimised schedules (``attrs["experiment"] == "optimise"``): ``plot_schedule``;
    - a sweep over data models with at most ``MAX_MODEL_PANELS`` points per model:
      ``plot_models`` (the models side by side, the gap against N); with more, a
      product grid: ``plot_model_finals`` (final eg against K per model);
    - other sweeps (a non-empty ``swept`` attribute): ``plot_sweep``;
    - a single run: ``plot_learning_curves``; ``ValueError`` if ``ds`` has none of the
      ``_LEARNING_CURVES`` (or they are not numbers): not a results file of hmmjax.

    Saved atomically to ``path`` (format from its suffix) when given.
    """
    try:
        swept = swept_axes(ds)
    except ValueError as err:
        raise ValueError(
            f"attribute swept = {ds.attrs.get('swept')!r} is not a JSON list of axis names ({err})"
        ) from None
    if ds.attrs.get("experiment") == "invariant":
        plot = plot_invariant
    elif ds.attrs.get("experiment") == "finite":
        plot = plot_finite
    elif ds.attrs.get("experiment") == "optimise":
        plot = plot_schedule
    elif "model" in swept and model_panels(ds) <= MAX_MODEL_PANELS:
        plot = plot_models
    elif "model" in swept and ds.attrs.get("grid_kind") == "product" and "eg_sim" in ds:
        plot = plot_model_finals
    else:
        plot = plot_sweep if swept else plot_learning_curves
    if plot is plot_learning_curves:
        _check_curves(ds)
    return plot(ds, path)


_LEARNING_CURVES = ("eg", "eg_mc", "eg_ode")  # the variables of a single run's figure


def _check_curves(ds: xr.Dataset) -> None:
    """``ValueError`` unless ``ds`` has a learning curve to draw: one of
    ``_LEARNING_CURVES``, numeric (a dataset that no figure fits, e.g. not from hmmjax)."""
    names = [name for name in _LEARNING_CURVES if name in ds]
    if not names:
        raise ValueError(
            "not a results file of hmmjax (expected one of the variables "
            f"{', '.join(_LEARNING_CURVES)} over t, or the attribute experiment = 'finite' "
            f"or 'invariant', or swept; found the variables {sorted(map(str, ds.data_vars))} "
            f"and the attributes {sorted(map(str, ds.attrs))})"
        )
    for name in names:
        if ds[name].dtype.kind not in "iuf":
            raise ValueError(f"{name} has dtype {ds[name].dtype}, expected numbers")
