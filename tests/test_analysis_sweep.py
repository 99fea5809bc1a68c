"""Sweeps reduced to numpy (hmmjax.analysis.sweep): grids, ensemble means, last finite
values, diverged points, merged seeds; synthetic numpy data, no matplotlib, no JAX.
The builders here are the data of tests/test_plots_sweep.py too."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from hmmjax.analysis.common import quiet
from hmmjax.analysis.sweep import ensemble_band, reduce_sweep, swept_axes

MEMBERS = 3
N_T = 12
T = np.concatenate([[0.0], np.logspace(-1, 2, N_T - 1)])


def sweep_dataset(
    grid: dict[str, list],
    *,
    sim: bool = True,
    ode: bool = False,
    points: bool = False,
    seed: int = 0,
) -> xr.Dataset:
    """A synthetic sweep: ``grid`` maps each swept axis to its values (one value per point
    for a points grid); eg decays like (1 + t)^-1/2 with a random level per series."""
    rng = np.random.default_rng(seed)
    swept = list(grid)
    if points:
        dims = ["point"]
        shape = (len(next(iter(grid.values()))),)
        coords = {a: ("point", v) for a, v in grid.items()}
    else:
        dims, shape, coords = swept, tuple(len(v) for v in grid.values()), dict(grid)
    decay = (1.0 + T) ** -0.5
    level = np.exp(rng.normal(size=shape))[..., None]
    ds = xr.Dataset(coords={**coords, "t": T})
    ds.attrs = {
        "swept": json.dumps(swept),
        "grid_kind": "points" if points else "product",
        "title": "test sweep",
        "mode": "both" if sim and ode else ("sim" if sim else "ode"),
    }
    if sim:
        noise = np.exp(0.2 * rng.normal(size=(*shape, MEMBERS, 1)))
        eg = level[..., None, :] * noise * decay
        ds["eg_sim"] = ([*dims, "member", "t"], eg)
        ds["eg_sim_mean"] = ([*dims, "t"], eg.mean(axis=-2))
        ds["eg_sim_std"] = ([*dims, "t"], eg.std(axis=-2))
        ds["diverged"] = ([*dims, "member"], np.zeros((*shape, MEMBERS), bool))
        ds["t_diverged"] = ([*dims, "member"], np.full((*shape, MEMBERS), np.nan))
    if ode:
        ds["eg_ode"] = ([*dims, "t"], level * decay)
        ds["diverged_ode"] = (dims, np.zeros(shape, bool))
    return ds


def diverge(ds: xr.Dataset, index: dict[str, int], member: int, step: int) -> None:
    """Member ``member`` at grid point ``index`` diverges at time index ``step``."""
    sel = {**index, "member": member}
    values = ds["eg_sim"].isel(sel).values.copy()
    values[step:] = np.nan
    ds["eg_sim"][sel] = values
    ds["diverged"][sel] = True
    ds["t_diverged"][sel] = T[step]


def last_finite_mean(eg: np.ndarray, ensemble_axes: tuple[int, ...]) -> np.ndarray:
    """Mean over ``ensemble_axes`` of each series' last finite value (a plain loop)."""

    def last(series: np.ndarray) -> float:
        finite = series[np.isfinite(series)]
        return finite[-1] if finite.size else np.nan

    with np.errstate(all="ignore"):
        return np.nanmean(np.apply_along_axis(last, -1, eg), axis=ensemble_axes)


def test_product_grid_reduces_in_c_order():
    ds = sweep_dataset({"lr": [0.01, 0.1, 1.0], "K": [1, 2]}, ode=True)
    s = reduce_sweep(ds)
    assert s.axes == ("lr", "K") and not s.points and s.shape == (3, 2)
    assert s.title == "test sweep (both)" and s.source == "simulation"
    assert s.labels[:3] == [{"lr": 0.01, "K": 1}, {"lr": 0.01, "K": 2}, {"lr": 0.1, "K": 1}]
    np.testing.assert_allclose(s.t, T)
    eg = ds["eg_sim"].values.reshape(6, MEMBERS, N_T)
    np.testing.assert_allclose(s.mean, eg.mean(axis=1))
    np.testing.assert_allclose(s.std, eg.std(axis=1))
    np.testing.assert_allclose(s.ode, ds["eg_ode"].values.reshape(6, N_T))
    np.testing.assert_allclose(s.curves, s.mean)
    np.testing.assert_allclose(s.final, eg[..., -1].mean(axis=-1))
    final, diverged = s.final_grid()
    np.testing.assert_allclose(final, ds["eg_sim"].values[..., -1].mean(-1).T)  # (K, lr)
    assert not diverged.any() and diverged.shape == (2, 3)


def test_diverged_members_use_their_last_finite_values():
    ds = sweep_dataset({"lr": [0.1, 1.0, 2.0], "K": [1, 2]})
    diverge(ds, {"lr": 2, "K": 0}, member=0, step=5)
    diverge(ds, {"lr": 2, "K": 0}, member=2, step=8)
    diverge(ds, {"lr": 1, "K": 1}, member=1, step=1)
    s = reduce_sweep(ds)
    expected = last_finite_mean(ds["eg_sim"].values, ensemble_axes=(2,))
    assert not np.allclose(expected, np.nanmean(ds["eg_sim"].values[..., -1], axis=-1))
    np.testing.assert_allclose(s.final, expected.ravel())
    final, diverged = s.final_grid()
    np.testing.assert_allclose(final, expected.T)
    assert set(zip(*np.nonzero(diverged.T), strict=True)) == {(2, 0), (1, 1)}  # (lr, K)


def test_three_axes_final_grid_averages_the_third():
    ds = sweep_dataset({"lr": [0.1, 1.0], "K": [1, 2, 3], "D": [10, 20]})
    ds["eg_sim"][1, 2, 0] = np.nan  # every member of one point diverged at the start
    ds["diverged"][1, 2, 0] = True
    final, diverged = reduce_sweep(ds).final_grid()
    last = ds["eg_sim"].values[..., -1]
    with quiet():
        expected = np.nanmean(np.nanmean(last, axis=-1), axis=2)  # over member, then D
    np.testing.assert_allclose(final, expected.T)
    assert diverged.T.tolist() == [[False] * 3, [False, False, True]]


def test_ode_only_and_all_diverged_point():
    ds = sweep_dataset({"lr": [0.1, 1.0, 10.0]}, sim=False, ode=True)
    ds["eg_ode"][2, 4:] = np.nan
    ds["diverged_ode"][2] = True
    s = reduce_sweep(ds)
    assert s.source == "ODE" and s.mean is None and s.std is None
    np.testing.assert_allclose(s.curves, ds["eg_ode"].values)
    np.testing.assert_allclose(s.final[2], ds["eg_ode"].values[2, 3])
    assert s.diverged.tolist() == [False, False, True]
    assert s.coords["lr"].tolist() == [0.1, 1.0, 10.0]


def test_seed_swept_product_and_points_are_one_ensemble():
    ds = sweep_dataset({"lr": [0.1, 1.0, 5.0], "seed": [0, 1]})
    s = reduce_sweep(ds)
    assert s.axes == ("lr",) and s.labels == [{"lr": 0.1}, {"lr": 1.0}, {"lr": 5.0}]
    np.testing.assert_allclose(s.final, ds["eg_sim"].values[..., -1].mean(axis=(1, 2)))
    grid = {"lr": [0.1, 0.1, 0.1, 1.0, 1.0], "seed": [0, 1, 2, 0, 1]}
    ds = sweep_dataset(grid, points=True, ode=True)
    s = reduce_sweep(ds)
    assert s.points and s.shape == (2,) and s.labels == [{"lr": 0.1}, {"lr": 1.0}]
    last = ds["eg_sim"].values[..., -1]  # (point, member)
    np.testing.assert_allclose(s.final, [last[:3].mean(), last[3:].mean()])
    assert not s.diverged.any()  # padding of the shorter seed list is not divergence


def test_points_grid_labels_and_means():
    grid = {"lr": [0.1, 0.2, 0.5, 0.1, 0.2], "K": [1, 1, 1, 4, 4]}
    ds = sweep_dataset(grid, points=True)
    s = reduce_sweep(ds)
    assert s.points and s.coords == {} and s.shape == (5,)
    assert s.labels[3] == {"lr": 0.1, "K": 4}
    np.testing.assert_allclose(s.final, ds["eg_sim"].values[..., -1].mean(-1))


def test_without_finite_curves_and_bad_grids():
    ds = sweep_dataset({"seed": [0, 1, 2]})
    ds["eg_sim"][:] = np.nan
    s = reduce_sweep(ds.drop_vars("eg_sim_mean"))
    assert s.curves is None and s.axes == () and np.isnan(s.final).all()
    ds = sweep_dataset({"lr": [0.1, 1.0]})
    ds.attrs["swept"] = '["lr", "K"]'
    with pytest.raises(ValueError, match=r"lacks \['K'\]"):
        reduce_sweep(ds)
    with pytest.raises(ValueError, match="not a sweep"):
        reduce_sweep(ds.assign_attrs(swept="[]"))


@pytest.mark.parametrize(
    "swept, axes", [(None, ()), ("", ()), ("[]", ()), ('["lr", "K"]', ("lr", "K")), (["N"], ("N",))]
)
def test_swept_axes(swept, axes):
    ds = xr.Dataset()
    if swept is not None:
        ds.attrs["swept"] = swept
    assert swept_axes(ds) == axes


def test_ensemble_band_skips_nan():
    values = np.array([[1.0, 2.0, np.nan], [3.0, np.nan, np.nan]])
    curve = xr.DataArray(values, dims=("member", "t"))
    mean, lo, hi = ensemble_band(curve.transpose("t", "member"), "t")
    np.testing.assert_equal(mean, [2.0, 2.0, np.nan])
    np.testing.assert_equal(lo, [1.0, 2.0, np.nan])
    np.testing.assert_equal(hi, [3.0, 2.0, np.nan])
