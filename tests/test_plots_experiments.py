"""Figures of the finite-training-set and model-comparison experiments
(hmmjax.plots.experiments) on synthetic numpy/xarray data with known answers (no JAX; the
data are those of tests/test_analysis_experiments.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_analysis_experiments import T, finite_dataset, models_dataset

from hmmjax.plots.experiments import plot_finite, plot_model_finals, plot_models
from hmmjax.plots.results import plot_results


@pytest.mark.parametrize(
    "grid, columns",
    [
        ({}, 1),
        ({"K": [1, 2, 4]}, 1),
        ({"model": ["hmm", "iid"]}, 2),
        ({"model": ["hmm", "iid", "digits"], "K": [2, 8]}, 3),
        ({"model": ["hmm", "iid"], "labels": ["teacher", "sign", "random"], "K": [2, 4]}, 6),
        ({"K": [2, 4], "seed": [0, 1]}, 1),
    ],
)
def test_plot_finite_writes_png(tmp_path, grid, columns):
    path = tmp_path / "finite.png"
    fig = plot_finite(finite_dataset(grid), path)
    assert path.stat().st_size > 10_000
    labels = [ax.get_label() for ax in fig.axes]
    assert labels.count("finite:err_test") == columns
    assert labels.count("finite:fit_ratio") == columns
    assert fig.legends  # one legend for the whole figure


def test_plot_finite_refuses_too_many_columns_and_points():
    ds = finite_dataset({"model": ["hmm", "iid", "digits"], "labels": ["sign", "random", "x"]})
    with pytest.raises(ValueError, match="9 columns"):
        plot_finite(ds)
    with pytest.raises(ValueError, match="product grid"):
        plot_finite(finite_dataset({}, points=True))
    with pytest.raises(ValueError, match="not a finite"):
        plot_finite(finite_dataset({}).assign_attrs(experiment="online"))


# ---- model comparison ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, curves, gaps",
    [
        ({}, 3, True),
        ({"points": True}, 3, True),
        ({"points": True, "seeds": 2, "ode": False}, 3, True),
        ({"Ns": [500]}, 1, False),
        ({"models": ("iid", "hmm"), "Ns": [100, 1000]}, 2, True),
        ({"models": ("iid", "hmm", "get")}, 3, False),
    ],
)
def test_plot_models_writes_png(tmp_path, kwargs, curves, gaps):
    path = tmp_path / "models.png"
    fig = plot_models(models_dataset(**kwargs), path)
    assert path.stat().st_size > 10_000
    labels = [ax.get_label() for ax in fig.axes]
    assert labels.count("models:curves") == curves
    assert labels.count("models:gaps") == int(gaps)


def test_plot_models_without_n_axis(tmp_path):
    ds = models_dataset(Ns=[100, 200]).rename(N="lr")
    ds.attrs["swept"] = json.dumps(["model", "lr"])
    fig = plot_models(ds, tmp_path / "lr.png")
    assert [ax.get_label() for ax in fig.axes].count("models:gaps") == 0


def test_plot_models_refuses_too_many_panels():
    with pytest.raises(ValueError, match="7 points of N"):
        plot_models(models_dataset(Ns=[100 * 2**i for i in range(7)]))


def test_plot_finite_missing_variables_and_diverged_member(tmp_path):
    ds = finite_dataset({"K": [2, 4]}).drop_vars(["agree_lin", "fit_ratio_se"])
    ds["err_test"][{"K": 0, "member": 0}] = np.where(T > 10, np.nan, 0.3)  # diverges
    plot_finite(ds, tmp_path / "missing.png")
    assert (tmp_path / "missing.png").stat().st_size > 10_000


def test_plot_model_finals_draws_the_last_values(tmp_path):
    """More points than plot_models shows: final eg against N per model, and the values
    drawn are the ensemble means of the last finite eg_sim."""
    ds = models_dataset(models=("iid", "hmm"), Ns=[100 * 2**i for i in range(7)])
    fig = plot_results(ds, tmp_path / "finals.png")  # dispatch: too many for plot_models
    axes = [ax for ax in fig.axes if ax.get_label() == "models:finals"]
    assert len(axes) == 2
    line = axes[1].lines[0]  # model hmm, simulation
    expected = ds.eg_sim.sel(model="hmm").isel(t=-1).mean("member").values
    np.testing.assert_allclose(line.get_ydata(), expected)
    with pytest.raises(ValueError, match="product grid with a model axis"):
        plot_model_finals(models_dataset(points=True))
