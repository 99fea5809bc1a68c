"""Numbers of the invariant-manifold experiment (hmmjax.analysis.invariant) on synthetic
datasets with known answers (no training, no matplotlib). The builders here are the data
of tests/test_plots_invariant.py too."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import xarray as xr

from hmmjax.analysis.exponents import predicted_exponents
from hmmjax.analysis.invariant import (
    fit_learning_curve,
    invariant_summary,
    reduce_invariant,
    run_stats,
    theory_exponents,
    training_curves,
)

ITER = np.array([0, 1, 3, 10, 30, 100, 300])
SHAPE = np.array([5.0, 4.0, 3.0, 2.0, 1.5, 1.2, 1.0])  # err_test(record) / final err_test
SPREAD = np.array([-1.0, 0.0, 1.0])  # member offsets: mean 0, std (ddof 1) 1
C, BETA = 0.8, 0.5  # final err_test = C P^-BETA (1 + 0.1 log10 alpha) x model factor
EPS = 0.01  # relative member spread of err_test
MODEL_FACTOR = {"stripe": 1.0, "cylinder": 1.2}
N_EIG = 12
D, D_PAR = 5, 1
THEORY = {"stripe": (0.3, 0.7), "cylinder": (0.35, 0.55)}  # by_model (lazy, feature)


def _axis(grid: dict[str, list], name: str, default):
    """The grid values of ``name`` as a DataArray over its dim, else the scalar default."""
    if name in grid:
        return xr.DataArray(np.asarray(grid[name]), coords={name: grid[name]}, dims=name)
    return xr.DataArray(default)


def invariant_dataset(
    grid: dict[str, list],
    *,
    ntk: bool = False,
    members: int = 3,
    noise: np.ndarray | None = None,
    by_model: bool = True,
) -> xr.Dataset:
    """A synthetic invariant-manifold result over the product ``grid`` (dims in the dict's
    order, then member, record). Known finals: err_test = C P^-BETA (1 + 0.1 log10 alpha)
    x model factor x (1 + EPS spread_m) (times ``1 + noise`` if given, shaped like the
    runs), ratio = 1 + 1/(1 + alpha) + 0.1 spread_m, Lambda = 1 + 0.5/(1 + alpha) +
    0.05 spread_m; converged except member 0 at alpha >= 100. NTK: kr_err (0.3, 0.2),
    svm_err (0.25, 0.15) (init, final) + 0.01 spread_m, eigenvalues k^-1 / k^-2, alignment
    1 - 0.8^k / 1 - 0.5^k."""
    offsets = np.resize(SPREAD, members)
    spread = xr.DataArray(offsets - offsets.mean(), dims="member")
    member = xr.DataArray(np.arange(members), dims="member")
    alpha = _axis(grid, "alpha", 1.0)
    P = _axis(grid, "P", 64)
    factor = (
        xr.DataArray([MODEL_FACTOR[m] for m in grid["model"]], dims="model")
        if "model" in grid
        else 1.0
    )
    frac = xr.DataArray(ITER / ITER[-1], dims="record")
    template = xr.DataArray(np.zeros([len(v) for v in grid.values()]), dims=list(grid))
    order = [*grid, "member"]

    def runs(a) -> xr.DataArray:
        """``a`` over every grid dim and member (grid dims first)."""
        return (a + template + 0 * spread).transpose(*order, ...)

    err = runs(C * P**-BETA * (1 + 0.1 * np.log10(alpha)) * factor * (1 + EPS * spread))
    if noise is not None:
        err = err * (1 + noise)
    ratio = runs(1 + 1 / (1 + alpha) + 0.1 * spread)
    lam = runs(1 + 0.5 / (1 + alpha) + 0.05 * spread)
    curve = xr.DataArray(SHAPE, dims="record")
    data = {
        "err_test": err * curve,
        "err_train": runs(0.3 * (1 - frac)),
        "loss": runs(np.exp(-frac * 5) / alpha**2),
        "ratio": 1 + (ratio - 1) * frac,
        "Lambda": 1 + (lam - 1) * frac,
        "time": runs(0.1 * xr.DataArray(ITER, dims="record")),
        "diverged": runs(0 * frac) > 0,
        "converged": runs(xr.where((alpha >= 100) & (member == 0), 1.0, 0.0)) < 0.5,
    }
    data = {k: v.transpose(*order, ...) for k, v in data.items()}
    coords = {**grid, "member": np.arange(members), "iteration": ("record", ITER)}
    coords.update({a: v for a, v in (("alpha", 1.0), ("P", 64), ("K", 32)) if a not in grid})
    if ntk:
        stage = xr.DataArray([0, 1], dims="ntk")
        k = xr.DataArray(np.arange(1, N_EIG + 1), dims="eig")
        data["kr_err"] = runs(0.3 - 0.1 * stage + 0.01 * spread)
        data["svm_err"] = runs(0.25 - 0.1 * stage + 0.01 * spread)
        data["ntk_eig"] = runs(k ** -(1.0 + stage))
        data["ntk_align"] = runs(1 - xr.where(stage == 0, 0.8, 0.5) ** k)
        coords.update(ntk=["init", "final"], eig=np.arange(1, N_EIG + 1))
    ds = xr.Dataset(data, coords=coords)
    beta = predicted_exponents(D, D_PAR)
    ds.attrs = {
        "experiment": "invariant",
        "title": "synthetic invariant run",
        "swept": json.dumps(list(grid)),
        "grid_kind": "product",
        "d": D,
        "d_par": D_PAR,
        "beta_lazy": beta["lazy"],
        "beta_feature": beta["feature"],
    }
    if "model" in grid and by_model:
        ds.attrs["by_model"] = {
            m: {"d": D, "d_par": 1 + i, "beta_lazy": THEORY[m][0], "beta_feature": THEORY[m][1]}
            for i, m in enumerate(grid["model"])
        }
    return ds


# ---- alpha sweeps ----------------------------------------------------------------------

ALPHAS = [0.01, 1.0, 100.0]


def test_alpha_summary_has_the_known_means():
    s = invariant_summary(invariant_dataset({"alpha": ALPHAS}, ntk=True))
    json.dumps(s)  # JSON-able
    assert all(type(v) is float for v in s.values())
    for a in ALPHAS:
        key = f"alpha={a:g}"
        err = C * 64**-BETA * (1 + 0.1 * np.log10(a))
        assert s[f"{key}:err_test"] == pytest.approx(err, rel=1e-12)
        assert s[f"{key}:err_test_se"] == pytest.approx(EPS * err / math.sqrt(3), rel=1e-9)
        assert s[f"{key}:ratio"] == pytest.approx(1 + 1 / (1 + a), rel=1e-12)
        assert s[f"{key}:ratio_se"] == pytest.approx(0.1 / math.sqrt(3), rel=1e-9)
        assert s[f"{key}:Lambda"] == pytest.approx(1 + 0.5 / (1 + a), rel=1e-12)
        assert s[f"{key}:converged"] == pytest.approx(2 / 3 if a >= 100 else 1.0)
        assert s[f"{key}:kr_err_init"] == pytest.approx(0.3)
        assert s[f"{key}:kr_err_final"] == pytest.approx(0.2)
        assert s[f"{key}:svm_err_init"] == pytest.approx(0.25)
        assert s[f"{key}:svm_err_final"] == pytest.approx(0.15)
        assert s[f"{key}:align_init"] == pytest.approx(1 - 0.8**10)
        assert s[f"{key}:align_final"] == pytest.approx(1 - 0.5**10)
    assert s["align_k"] == 10.0
    assert not any(k.endswith(":beta") for k in s)  # no P sweep, no exponent


def test_alignment_falls_back_to_the_largest_k():
    ds = invariant_dataset({"alpha": ALPHAS}, ntk=True).isel(eig=slice(0, 6))
    s = invariant_summary(ds)
    assert s["align_k"] == 6.0
    assert s["alpha=1:align_final"] == pytest.approx(1 - 0.5**6)


def test_alpha_by_K_summary():
    ds = invariant_dataset({"alpha": ALPHAS, "K": [16, 64]})
    s = invariant_summary(ds)
    assert s["alpha=0.01,K=16:err_test"] == pytest.approx(s["alpha=0.01,K=64:err_test"])


# ---- P sweeps (learning curves) --------------------------------------------------------

PS = [16, 32, 64, 128, 256]


def test_exact_power_law_gives_the_imposed_exponent():
    ds = invariant_dataset({"P": PS})
    s = invariant_summary(ds)
    assert s["all:beta"] == pytest.approx(BETA, abs=1e-12)
    assert s["all:beta_lazy"] == pytest.approx(predicted_exponents(D, D_PAR)["lazy"])
    assert s["all:d_par"] == D_PAR


def test_power_law_with_noise_and_seeds():
    rng = np.random.default_rng(0)
    noise = 1e-3 * rng.standard_normal((2, len(PS), 3))
    ds = invariant_dataset({"seed": [0, 1], "P": PS}, noise=noise)
    del ds.attrs["beta_lazy"], ds.attrs["beta_feature"]  # from d and d_par instead
    s = invariant_summary(ds)
    assert s["all:beta"] == pytest.approx(BETA, abs=2e-3)
    assert 0 < s["all:beta_se"] < 1e-2
    assert s["all:beta_feature"] == pytest.approx(predicted_exponents(D, D_PAR)["feature"])
    assert not any(k.startswith("seed=") for k in s)  # seeds are runs
    assert reduce_invariant(ds).runs == 6


def test_models_alphas_and_p_with_ntk():
    """The summary of the grid of tests/test_plots_invariant.py's netCDF round trip, with
    ``by_model`` as JSON (as a results file stores it)."""
    grid = {"model": ["stripe", "cylinder"], "alpha": [0.01, 100.0], "P": PS}
    ds = invariant_dataset(grid, ntk=True)
    ds.attrs["by_model"] = json.dumps(ds.attrs["by_model"])
    s = invariant_summary(ds)
    for model, (lazy, feature) in THEORY.items():
        for a in ("0.01", "100"):
            key = f"model={model},alpha={a}"
            assert s[f"{key}:beta"] == pytest.approx(BETA, abs=1e-9)
            assert s[f"{key}:beta_lazy"] == lazy
            assert s[f"{key}:beta_feature"] == feature
        assert s[f"model={model},alpha=0.01,P=16:kr_err_final"] == pytest.approx(0.2)
    assert s["model=cylinder,alpha=100,P=16:err_test"] == pytest.approx(1.2 * 1.2 * C * 16**-BETA)


def test_by_model_as_json_string_and_missing():
    grid = {"model": ["stripe", "cylinder"], "P": PS}
    ds = invariant_dataset(grid)
    ds.attrs["by_model"] = json.dumps(ds.attrs["by_model"])
    s = invariant_summary(ds)
    assert s["model=cylinder:beta_feature"] == THEORY["cylinder"][1]
    s = invariant_summary(invariant_dataset(grid, by_model=False))  # top-level attrs
    assert s["model=cylinder:beta_lazy"] == pytest.approx(predicted_exponents(D, D_PAR)["lazy"])


# ---- other grids -----------------------------------------------------------------------


def test_single_point_summary():
    s = invariant_summary(invariant_dataset({}, members=1))
    assert s["all:err_test"] == pytest.approx(C * 64**-BETA)
    assert math.isnan(s["all:err_test_se"])  # one run: no standard error


def test_numbers_have_no_line_limit():
    alphas = list(np.logspace(-2, 2, 13))
    s = invariant_summary(invariant_dataset({"alpha": alphas}))
    assert len([k for k in s if k.endswith(":err_test")]) == 13


def test_other_experiments_are_refused():
    ds = invariant_dataset({"alpha": ALPHAS})
    ds.attrs["experiment"] = "finite"
    with pytest.raises(ValueError, match="not an invariant"):
        invariant_summary(ds)
    with pytest.raises(ValueError, match="unknown dims"):
        invariant_summary(invariant_dataset({"alpha": ALPHAS}).expand_dims(D=[1]))


# ---- the reductions the figure draws ---------------------------------------------------


def test_run_stats_fit_and_theory():
    ds = invariant_dataset({"P": PS})
    mean, se = run_stats(ds["err_test"].isel(record=-1))
    np.testing.assert_allclose(mean, C * np.asarray(PS, float) ** -BETA, rtol=1e-12)
    err = C * np.asarray(PS, float) ** -BETA * (1 + EPS * SPREAD[:, None])
    np.testing.assert_allclose(se, EPS * mean / math.sqrt(3), rtol=1e-9)
    beta, stderr, c = fit_learning_curve(np.asarray(PS, float), err)
    assert beta == pytest.approx(BETA, abs=1e-12) and c == pytest.approx(math.log(C))
    assert all(
        math.isnan(v) for v in fit_learning_curve(np.array([1.0, 2.0]), np.full((2, 2), np.nan))
    )
    assert theory_exponents(ds) == {**predicted_exponents(D, D_PAR), "d_par": D_PAR}
    bare = ds.assign_attrs(d=None, d_par=None, beta_lazy=None, beta_feature=None)
    for key in ("d", "d_par", "beta_lazy", "beta_feature"):
        del bare.attrs[key]
    assert all(math.isnan(v) for v in theory_exponents(bare).values())


def test_regime_and_training_curves():
    inv = reduce_invariant(invariant_dataset({"alpha": ALPHAS, "P": [16, 64]}))
    assert [inv.regime(p) for p in inv.points("alpha")] == ["feature", None, "lazy"]
    assert inv.fixed() == {"P": 64}
    assert reduce_invariant(invariant_dataset({"alpha": [0.5]})).regime({"alpha": 0.5}) == "feature"
    assert reduce_invariant(invariant_dataset({})).regime({}) == "lazy"  # scalar alpha = 1
    assert inv.regime({}) is None
    t, loss = training_curves(inv, "loss")
    np.testing.assert_allclose(t.values, np.broadcast_to(0.1 * ITER, (3, ITER.size)))
    np.testing.assert_allclose(loss.values, np.exp(-5 * ITER / ITER[-1]) + 0 * loss.values)
