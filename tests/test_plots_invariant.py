"""Figure of the invariant-manifold experiment (hmmjax.plots.invariant) on synthetic
datasets with known answers (no training; the data are those of
tests/test_analysis_invariant.py)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from test_analysis_invariant import (
    ALPHAS,
    BETA,
    D_PAR,
    PS,
    THEORY,
    C,
    D,
    invariant_dataset,
)

from hmmjax.analysis.exponents import predicted_exponents
from hmmjax.analysis.invariant import invariant_summary
from hmmjax.io.results import read_dataset, write_dataset
from hmmjax.plots.invariant import MAX_LINES, MAX_PANELS, plot_invariant


def labels(fig) -> list[str]:
    return [ax.get_label() for ax in fig.axes]


def legend_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def is_png(path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- alpha sweeps ----------------------------------------------------------------------


def test_alpha_sweep_with_ntk_draws_every_panel(tmp_path):
    ds = invariant_dataset({"alpha": ALPHAS}, ntk=True)
    fig = plot_invariant(ds, tmp_path / "alpha.png")
    assert is_png(tmp_path / "alpha.png")
    assert labels(fig) == [
        "invariant:alpha",
        "invariant:compression",
        "invariant:ntk_spectrum",
        "invariant:ntk_alignment",
        "invariant:kernels",
        "invariant:training",
        "invariant:training",
    ]
    ax = fig.axes[0]
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(x, ALPHAS)
    np.testing.assert_allclose(y, C * 64**-BETA * (1 + 0.1 * np.log10(ALPHAS)), rtol=1e-12)
    loss = fig.axes[5]  # alpha^2 x loss: the same mean hinge for every alpha
    curves = [line.get_ydata() for line in loss.lines]
    np.testing.assert_allclose(curves[0], curves[2], rtol=1e-12)
    assert loss.get_yscale() == "log" and loss.get_xscale() == "log"


def test_alpha_by_K_without_ntk():
    ds = invariant_dataset({"alpha": ALPHAS, "K": [16, 64]})
    fig = plot_invariant(ds)
    assert "invariant:kernels" not in labels(fig)
    assert labels(fig)[:2] == ["invariant:alpha", "invariant:compression"]
    assert legend_texts(fig.axes[0]) == ["K=16", "K=64"]
    assert "(K=64)" in fig.axes[2].get_title()  # training panels: the largest K


# ---- P sweeps (learning curves) --------------------------------------------------------


def test_exact_power_law_gives_the_imposed_exponent(tmp_path):
    ds = invariant_dataset({"P": PS})
    fig = plot_invariant(ds, tmp_path / "p.png")
    assert is_png(tmp_path / "p.png")
    assert labels(fig) == [
        "invariant:curves",
        "invariant:compression_p",
        "invariant:training",
        "invariant:training",
    ]
    ax = fig.axes[0]
    texts = legend_texts(ax)
    assert texts[0].startswith(f"alpha=1: β = {BETA:.2f} ± ")
    lazy = predicted_exponents(D, D_PAR)["lazy"]
    assert texts[0].endswith(f"(lazy theory {lazy:.2f})")  # one alpha >= 1: lazy
    assert f"theory lazy: β = {lazy:.2f}" in texts
    fit = next(line for line in ax.lines if line.get_label() == texts[0])
    mean = C * np.asarray(PS, float) ** -BETA
    np.testing.assert_allclose(fit.get_ydata(), mean, rtol=1e-10)  # the fit goes through
    ref = next(line for line in ax.lines if line.get_label().startswith("theory lazy"))
    np.testing.assert_allclose(ref.get_ydata(), mean[0] * (np.array(PS) / PS[0]) ** -lazy)


def test_power_law_with_noise_and_seeds():
    rng = np.random.default_rng(0)
    noise = 1e-3 * rng.standard_normal((2, len(PS), 3))
    ds = invariant_dataset({"seed": [0, 1], "P": PS}, noise=noise)
    del ds.attrs["beta_lazy"], ds.attrs["beta_feature"]  # from d and d_par instead
    fig = plot_invariant(ds)
    assert "6 runs" in fig.get_suptitle()


def test_models_alphas_and_p_with_ntk(tmp_path):
    grid = {"model": ["stripe", "cylinder"], "alpha": [0.01, 100.0], "P": PS}
    ds = invariant_dataset(grid, ntk=True)
    write_dataset(ds, tmp_path / "models.nc")  # by_model goes through JSON
    ds = read_dataset(tmp_path / "models.nc")
    fig = plot_invariant(ds, tmp_path / "models.png")
    assert is_png(tmp_path / "models.png")
    assert labels(fig) == [
        "invariant:alpha",
        "invariant:compression",
        "invariant:curves",
        "invariant:curves",
        "invariant:compression_p",
        "invariant:ntk_spectrum",
        "invariant:ntk_alignment",
        "invariant:kernels",
        "invariant:training",
        "invariant:training",
    ]
    curves = [ax for ax in fig.axes if ax.get_label() == "invariant:curves"]
    for ax, model in zip(curves, grid["model"], strict=True):
        lazy, feature = THEORY[model]
        texts = legend_texts(ax)
        assert ax.get_title().startswith(model)
        assert texts[0].endswith(f"(feature theory {feature:.2f})")  # smallest alpha
        assert f"theory lazy: β = {lazy:.2f}" in texts
    # the numbers survive the round trip (test_analysis_invariant checks their values)
    np.testing.assert_equal(
        invariant_summary(ds), invariant_summary(invariant_dataset(grid, ntk=True))
    )


# ---- other grids -----------------------------------------------------------------------


def test_single_point_shows_training_only():
    ds = invariant_dataset({}, members=1)
    fig = plot_invariant(ds)
    assert labels(fig) == ["invariant:training", "invariant:training"]


def test_too_many_panels_or_lines_are_refused():
    models = [f"m{i}" for i in range(MAX_PANELS)]
    ds = invariant_dataset({"model": ["stripe"], "P": PS}, by_model=False)
    many = xr.concat([ds.isel(model=[0])] * len(models), "model").assign_coords(model=models)
    with pytest.raises(ValueError, match="panels"):
        plot_invariant(many)
    alphas = list(np.logspace(-2, 2, MAX_LINES + 1))
    with pytest.raises(ValueError, match="lines"):
        plot_invariant(invariant_dataset({"alpha": alphas}))


def test_other_experiments_are_refused():
    ds = invariant_dataset({"alpha": ALPHAS})
    ds.attrs["experiment"] = "finite"
    with pytest.raises(ValueError, match="not an invariant"):
        plot_invariant(ds)
