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
