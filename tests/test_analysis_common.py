"""hmmjax.analysis imports neither matplotlib nor JAX; the shared helpers of
hmmjax.analysis.common (ensemble means, last finite values, grid points and their keys)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import xarray as xr

from hmmjax.analysis.common import (
    divergence_notes,
    ensemble_dims,
    ensemble_mean,
    format_value,
    grid_points,
    last_finite,
    point_key,
    quiet,
)


@pytest.fixture(scope="module")
def imported_by_analysis() -> dict[str, bool]:
    """Which of matplotlib and jax a fresh interpreter has loaded after
    ``import hmmjax.analysis``."""
    code = (
        "import json, sys, hmmjax.analysis; "
        "print(json.dumps({m: m in sys.modules for m in ('matplotlib', 'jax')}))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ["matplotlib", "jax"])
def test_analysis_imports_neither_matplotlib_nor_jax(imported_by_analysis, module):
    assert not imported_by_analysis[module]


def test_format_value_and_point_key():
    assert format_value(0.1) == "0.1"
    assert format_value(1234567.0) == "1.23457e+06"
    assert format_value(np.float32(0.5)) == "0.5"
    assert format_value(3) == "3"
    assert format_value(1 / 3, digits=4) == "0.3333"
    assert format_value("hmm") == "hmm"
    assert point_key({"model": "hmm", "K": 4, "lr": 0.1}) == "model=hmm,K=4,lr=0.1"
    assert point_key({}) == "all"


def test_grid_points_in_c_order():
    ds = xr.Dataset(coords={"model": ["hmm", "iid"], "K": [2, 4, 8]})
    ds["x"] = (("model", "K", "n"), np.zeros((2, 3, 2)))
    points = grid_points(ds, ["model", "K"])
    assert points[:2] == [{"model": "hmm", "K": 2}, {"model": "hmm", "K": 4}]
    assert points[-1] == {"model": "iid", "K": 8} and len(points) == 6
    assert grid_points(ds, ["n"]) == [{"n": 0}, {"n": 1}]  # no coordinate: indices
    assert grid_points(ds, []) == [{}]


def test_last_finite_and_ensemble_mean():
    eg = np.array(
        [
            [[1.0, 0.5, 0.25], [1.0, np.nan, np.nan]],  # member 1 diverged after t = 0
            [[2.0, 1.0, np.nan], [np.nan, np.nan, np.nan]],  # member 1 diverged at the start
        ]
    )
    da = xr.DataArray(eg, dims=("lr", "member", "t"))
    last = last_finite(da)
    assert last.dims == ("lr", "member")
    np.testing.assert_equal(last.values, [[0.25, 1.0], [1.0, np.nan]])
    assert ensemble_dims(da) == ["member"]
    assert ensemble_dims(da.expand_dims(seed=2)) == ["member", "seed"]
    np.testing.assert_allclose(ensemble_mean(last).values, [0.625, 1.0])  # NaN skipped
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # all-NaN slices do not warn
        np.testing.assert_equal(ensemble_mean(da).values[1], [2.0, 1.0, np.nan])


def test_quiet_silences_all_nan_warnings_only_inside():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with quiet():
            assert np.isnan(np.nanmean([np.nan]))
        with pytest.raises(RuntimeWarning):
            np.nanmean([np.nan])


def test_divergence_notes_name_what_diverged_and_from_when():
    t = np.linspace(0, 1, 5)
    grid = {"lr": [0.1, 1.0, 10.0]}
    diverged = np.array([[False, False], [False, True], [True, True]])  # (lr, member)
    t_div = np.where(diverged, [[np.nan] * 2, [np.nan, 0.5], [0.75, 0.25]], np.nan)
    ds = xr.Dataset(
        {
            "eg": (("lr", "member", "t"), np.zeros((3, 2, 5))),
            "diverged": (("lr", "member"), diverged),
            "t_diverged": (("lr", "member"), t_div),
            "diverged_ode": (("lr",), np.array([False, False, True])),
            "t_diverged_ode": (("lr",), np.array([np.nan, np.nan, 0.5])),
        },
        coords={"t": t, **grid},
        attrs={"ode_ok": 0},
    )
    notes = divergence_notes(ds)
    assert notes[0].startswith("3 of 6 students diverged (the first at t = 0.25)")
    assert notes[1].startswith("the ODE diverged at 1 of 3 grid points (the first at t = 0.5)")
    assert "ode_ok = 0" in notes[2] and len(notes) == 3
    fine = ds.assign(diverged=ds.diverged & False, diverged_ode=ds.diverged_ode & False)
    assert divergence_notes(fine.assign_attrs(ode_ok=1)) == []
    assert divergence_notes(xr.Dataset({"eg": ("t", t)})) == []  # nothing recorded
    # a grid run in parts: the solver of one part stopped (its attributes, or as JSON)
    parts = {"hmm": {"ode_ok": 1}, "get": {"by_features": {"dct": {"ode_ok": 0}}}}
    for by in (parts, json.dumps(parts)):
        notes = divergence_notes(fine.assign_attrs(ode_ok=1, by_model=by))
        assert len(notes) == 1 and "ode_ok = 0" in notes[0]
    one = xr.Dataset({"diverged_ode": ((), True), "t_diverged_ode": ((), 2.0)})
    assert divergence_notes(one)[0].startswith("the ODE diverged (the first at t = 2)")
