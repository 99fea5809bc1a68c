"""Sweep figures: panel groups chosen from the data, heat-map values, diverged points,
seed averaging, points grids and the plot_results dispatcher (numpy data, no JAX; the
data are those of tests/test_analysis_sweep.py)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from matplotlib.image import imread
from test_analysis_sweep import T, diverge, last_finite_mean, sweep_dataset

from hmmjax.plots.results import plot_results
from hmmjax.plots.sweep import plot_sweep


def panels(fig, name: str) -> list:
    return [ax for ax in fig.axes if ax.get_label() == f"sweep:{name}"]


def heatmap(fig) -> np.ndarray:
    (ax,) = panels(fig, "final")
    (image,) = ax.images
    return np.ma.filled(image.get_array().astype(float), np.nan)


def final_line(fig) -> tuple[np.ndarray, np.ndarray]:
    (ax,) = panels(fig, "final")
    assert not ax.images
    line = next(line for line in ax.get_lines() if line.get_label() == "final eg")
    return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)


def check_png(fig, path) -> None:
    image = imread(path)
    width, height = fig.get_size_inches() * 150
    assert image.shape[:2] == (round(height), round(width))


def test_product_sim_only_heatmap_and_png(tmp_path):
    ds = sweep_dataset({"lr": [0.01, 0.1, 1.0], "K": [1, 2]})
    path = tmp_path / "figs" / "sweep.png"
    fig = plot_sweep(ds, path)
    check_png(fig, path)
    assert len(panels(fig, "curves")) == 2  # one per K
    assert len(panels(fig, "compare")) == 0  # no ODE
    assert [ax.get_title() for ax in panels(fig, "curves")] == ["K=1", "K=2"]
    assert all(len(ax.get_lines()) == 3 for ax in panels(fig, "curves"))  # one per lr
    values = heatmap(fig)
    assert values.shape == (2, 3)  # rows: K (y), columns: lr (x)
    expected = ds["eg_sim"].values[..., -1].mean(axis=-1)
    np.testing.assert_allclose(values, expected.T)
    (ax,) = panels(fig, "final")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.01", "0.1", "1"]
    assert len(ax.texts) == 6  # small grid: every cell annotated
    assert "diverged" not in ax.get_title()
    assert any(ax.get_label() == "<colorbar>" and ax.get_ylabel() == "lr" for ax in fig.axes)


def test_sim_and_ode_small_multiples(tmp_path):
    ds = sweep_dataset({"D": [10, 100], "lr": [0.1, 0.5, 1.0]}, ode=True)
    fig = plot_results(ds, tmp_path / "both.png")
    check_png(fig, tmp_path / "both.png")
    compare = panels(fig, "compare")
    assert len(compare) == 6
    assert compare[0].get_title() == "D=10, lr=0.1"
    assert compare[-1].get_title() == "D=100, lr=1"
    for ax, (i, j) in zip(compare, np.ndindex(2, 3), strict=True):
        ode = next(line for line in ax.get_lines() if line.get_label() == "ODE")
        assert ode.get_color() == "k"
        np.testing.assert_allclose(ode.get_ydata(), ds["eg_ode"].values[i, j, 1:])
        assert ax.collections  # the mean +- std band
    np.testing.assert_allclose(heatmap(fig), ds["eg_sim"].values[..., -1].mean(-1).T)


def test_ode_only_uses_the_ode():
    ds = sweep_dataset({"lr": [0.1, 1.0], "K": [1, 2, 3]}, sim=False, ode=True)
    fig = plot_sweep(ds)
    assert len(panels(fig, "compare")) == 0
    np.testing.assert_allclose(heatmap(fig), ds["eg_ode"].values[..., -1].T)
    assert "(ODE)" in panels(fig, "final")[0].get_title()


def test_one_axis_sweep_draws_final_against_the_axis(tmp_path):
    lrs = [0.01, 0.1, 1.0, 3.0]
    fig = plot_sweep(sweep_dataset({"lr": lrs}), tmp_path / "one.png")
    check_png(fig, tmp_path / "one.png")
    ds = sweep_dataset({"lr": lrs})
    (ax,) = panels(fig, "final")
    assert ax.get_xscale() == "log"  # lr spans more than 10x
    x, y = final_line(fig)
    np.testing.assert_allclose(x, lrs)
    np.testing.assert_allclose(y, ds["eg_sim"].values[..., -1].mean(-1))
    assert len(panels(fig, "curves")) == 1


def test_one_axis_narrow_range_stays_linear():
    fig = plot_sweep(sweep_dataset({"K": [1, 2, 3]}))
    assert panels(fig, "final")[0].get_xscale() == "linear"


def test_points_grid(tmp_path):
    grid = {"lr": [0.1, 0.2, 0.5, 0.1, 0.2], "K": [1, 1, 1, 4, 4]}
    ds = sweep_dataset(grid, points=True)
    fig = plot_sweep(ds, tmp_path / "points.png")
    check_png(fig, tmp_path / "points.png")
    x, y = final_line(fig)
    np.testing.assert_allclose(x, np.arange(5))
    np.testing.assert_allclose(y, ds["eg_sim"].values[..., -1].mean(-1))
    (ax,) = panels(fig, "final")
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["lr=0.1, K=1", "lr=0.2, K=1", "lr=0.5, K=1", "lr=0.1, K=4", "lr=0.2, K=4"]
    curves = panels(fig, "curves")
    assert [ax.get_title() for ax in curves] == ["K=1", "K=4"]
    assert [len(ax.get_lines()) for ax in curves] == [3, 2]


def test_seed_swept_product_is_averaged():
    ds = sweep_dataset({"lr": [0.1, 1.0, 5.0], "seed": [0, 1]})
    fig = plot_sweep(ds)
    _, y = final_line(fig)
    expected = ds["eg_sim"].values[..., -1].mean(axis=(1, 2))  # over seed and member
    np.testing.assert_allclose(y, expected)
    assert len(panels(fig, "curves")[0].get_lines()) == 3  # one line per lr, not per seed


def test_seed_swept_points_merge_unequal_seed_counts():
    grid = {"lr": [0.1, 0.1, 0.1, 1.0, 1.0], "seed": [0, 1, 2, 0, 1]}
    ds = sweep_dataset(grid, points=True, ode=True)
    fig = plot_sweep(ds)
    x, y = final_line(fig)
    last = ds["eg_sim"].values[..., -1]  # (point, member)
    np.testing.assert_allclose(y, [last[:3].mean(), last[3:].mean()])
    compare = panels(fig, "compare")
    assert [ax.get_title() for ax in compare] == ["lr=0.1", "lr=1"]
    assert "diverged" not in panels(fig, "final")[0].get_title()  # padding is not divergence


def test_diverged_points_use_last_finite_values():
    ds = sweep_dataset({"lr": [0.1, 1.0, 2.0], "K": [1, 2]})
    diverge(ds, {"lr": 2, "K": 0}, member=0, step=5)
    diverge(ds, {"lr": 2, "K": 0}, member=2, step=8)
    diverge(ds, {"lr": 1, "K": 1}, member=1, step=1)
    fig = plot_sweep(ds)
    expected = last_finite_mean(ds["eg_sim"].values, ensemble_axes=(2,))
    naive = np.nanmean(ds["eg_sim"].values[..., -1], axis=-1)
    assert not np.allclose(expected, naive)  # the test can tell the two apart
    values = heatmap(fig)
    np.testing.assert_allclose(values, expected.T)
    (ax,) = panels(fig, "final")
    assert "x = diverged (2 of 6)" in ax.get_title()
    marks = [line for line in ax.get_lines() if line.get_marker() == "x"]
    cells = {(round(x), round(y)) for m in marks for x, y in zip(m.get_xdata(), m.get_ydata())}
    assert cells == {(2, 0), (1, 1)}  # (lr index, K index)


def test_all_members_diverged_at_start_gives_nan_cell():
    ds = sweep_dataset({"lr": [0.1, 1.0], "K": [1, 2]})
    ds["eg_sim"][1, 1] = np.nan
    ds["diverged"][1, 1] = True
    values = heatmap(plot_sweep(ds))
    assert np.isnan(values[1, 1])
    assert np.isfinite(values[[0, 0, 1], [0, 1, 0]]).all()


def test_diverged_ode_is_marked_on_the_line():
    ds = sweep_dataset({"lr": [0.1, 1.0, 10.0]}, sim=False, ode=True)
    ds["eg_ode"][2, 4:] = np.nan
    ds["diverged_ode"][2] = True
    fig = plot_sweep(ds)
    _, y = final_line(fig)
    np.testing.assert_allclose(y[2], ds["eg_ode"].values[2, 3])
    (ax,) = panels(fig, "final")
    assert "1 of 3" in ax.get_title()
    (mark,) = [line for line in ax.get_lines() if line.get_label() == "diverged"]
    np.testing.assert_allclose(mark.get_xdata(), [10.0])


def test_large_grids_subset_and_fall_back():
    ds = sweep_dataset({"lr": list(np.linspace(0.1, 1, 3)), "K": list(range(1, 10))}, ode=True)
    fig = plot_sweep(ds)
    assert len(panels(fig, "curves")) == 1  # 9 K values: one panel, all overlaid
    assert len(panels(fig, "curves")[0].get_lines()) == 27
    assert len(panels(fig, "compare")) == 16
    assert "16 of 27 grid points" in fig.subfigs[2].get_suptitle()
    big = sweep_dataset({"lr": list(np.linspace(0.1, 1, 9)), "K": list(range(1, 9))})
    (ax,) = panels(plot_sweep(big), "final")
    assert not ax.texts  # 72 cells: no annotations


def test_three_axes_heatmap_averages_the_third():
    ds = sweep_dataset({"lr": [0.1, 1.0], "K": [1, 2, 3], "D": [10, 20]})
    fig = plot_sweep(ds)
    expected = ds["eg_sim"].values[..., -1].mean(axis=(2, 3))  # over D and member
    np.testing.assert_allclose(heatmap(fig), expected.T)
    assert "mean over D" in panels(fig, "final")[0].get_xlabel()


@pytest.mark.parametrize("swept", [None, "", "[]"])
def test_plot_results_without_sweep_draws_learning_curves(swept):
    ds = xr.Dataset({"eg": (("member", "t"), np.tile((1 + T) ** -0.5, (2, 1)))}, coords={"t": T})
    if swept is not None:
        ds.attrs["swept"] = swept
    fig = plot_results(ds)
    assert len(fig.axes) == 1
    assert not any(ax.get_label().startswith("sweep:") for ax in fig.axes)


def test_plot_results_dispatches_sweeps():
    fig = plot_results(sweep_dataset({"lr": [0.1, 1.0], "K": [1, 2]}))
    assert len(panels(fig, "final")) == 1


def test_svg_bad_suffix_and_bad_grid(tmp_path):
    ds = sweep_dataset({"lr": [0.1, 1.0]})
    plot_sweep(ds, tmp_path / "s.svg")
    assert b"<svg" in (tmp_path / "s.svg").read_bytes()[:1000]
    with pytest.raises(ValueError, match="cannot write format"):
        plot_sweep(ds, tmp_path / "s.xyz")
    assert not (tmp_path / "s.xyz").exists()
    ds.attrs["swept"] = '["lr", "K"]'
    with pytest.raises(ValueError, match=r"lacks \['K'\]"):
        plot_sweep(ds)


def test_seeds_only_sweep_and_no_finite_curve():
    ds = sweep_dataset({"seed": [0, 1, 2]}, ode=True)
    fig = plot_sweep(ds)
    (curves,) = panels(fig, "curves")
    np.testing.assert_allclose(
        curves.get_lines()[0].get_ydata(), ds["eg_sim"].values.mean(axis=(0, 1))[1:]
    )
    assert not panels(fig, "final")
    assert len(panels(fig, "compare")) == 1
    ds["eg_sim"][:] = np.nan
    ds = ds.drop_vars(["eg_ode", "eg_sim_mean"])
    fig = plot_sweep(ds)
    assert fig.axes[0].texts[0].get_text() == "no finite learning curve"
