"""Numbers of the finite-training-set and model-comparison experiments
(hmmjax.analysis.finite) on synthetic numpy/xarray data with known answers (no JAX,
no matplotlib). The builders here are the data of tests/test_plots_experiments.py too."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import xarray as xr

from hmmjax.analysis.finite import finite_summary, reduce_finite
from hmmjax.analysis.models import ensemble_stats, fit_power, gep_gaps, model_finals, model_points

T = np.concatenate([[0.0], np.logspace(-1, 2, 11)])
MEMBERS = 3
SPREAD = np.array([-1.0, 0.0, 1.0])  # member offsets: mean 0, std (ddof 1) 1
P = 8


# ---- finite training sets -------------------------------------------------------------

# fit_indep falls from 1 to 0; only indices 3..7 lie in (0.05, 0.95). fit_ratio is
# largest (9) at index 1, outside the window; inside, its maximum is 2.5 at index 5.
FIT_INDEP = np.array([1.0, 0.99, 0.97, 0.9, 0.7, 0.5, 0.3, 0.1, 0.04, 0.01, 0.0, 0.0])
FIT_RATIO = np.array([1.0, 9.0, 3.0, 1.2, 1.8, 2.5, 2.0, 1.5, 4.0, 6.0, np.nan, np.nan])
FIT_SE = np.linspace(0.01, 0.12, T.size)
AGREE = np.array([0.6, 0.7, 0.8, 0.9, 0.95, 0.93, 0.9, 0.85, 0.8, 0.78, 0.77, 0.76])


def finite_dataset(grid: dict[str, list], points: bool = False) -> xr.Dataset:
    """A synthetic finite-training-set result over the product ``grid``; the ensemble
    means are known: err_test = 0.3 e^(-t/50) + 0.01 K, eg_mc = 0.4 e^(-t/50), err_train =
    0.2 e^(-t/10), agree_lin = AGREE, fit_ratio = FIT_RATIO (+- FIT_SE) with fit_indep =
    FIT_INDEP, err_lin = 0.25, eg_lin = 0.35."""
    dims = list(grid)
    shape = tuple(len(v) for v in grid.values())
    K = xr.DataArray(grid["K"], coords={"K": grid["K"]}) if "K" in grid else 0
    template = xr.DataArray(np.zeros(shape), coords=grid, dims=dims)
    offsets = xr.DataArray(0.01 * SPREAD, dims="member")  # mean 0 over members

    def over_t(curve) -> xr.DataArray:
        return template + xr.DataArray(curve, dims="t")

    def per_member(curve) -> xr.DataArray:
        return (over_t(curve) + offsets).transpose(*dims, "member", "t")

    ds = xr.Dataset(
        {
            "eg_mc": per_member(0.4 * np.exp(-T / 50)),
            "err_test": per_member(0.3 * np.exp(-T / 50)) + 0.01 * K,
            "loss_train": per_member(0.3 * np.exp(-T / 10)),
            "err_train": per_member(0.2 * np.exp(-T / 10)),
            "agree_lin": per_member(AGREE),
            "mse_lin": per_member(0.1 + 0 * T),
            "fitted": (
                [*dims, "member", "t", "sample"],
                np.zeros((*shape, MEMBERS, T.size, P), np.uint8),
            ),
            "t_fitted": ([*dims, "member", "sample"], np.full((*shape, MEMBERS, P), np.nan)),
            "fit_all": over_t(FIT_RATIO * FIT_INDEP),
            "fit_indep": over_t(FIT_INDEP),
            "fit_ratio": over_t(FIT_RATIO),
            "fit_ratio_se": over_t(FIT_SE),
            "eg_lin": template + 0.35,
            "err_lin": template + 0.25,
        },
        coords={"member": np.arange(MEMBERS), "t": T, "epoch": ("t", T * 2)},
    )
    ds["err_test"] = ds["err_test"].transpose(*dims, "member", "t")
    ds.attrs = {
        "experiment": "finite",
        "title": "finite test",
        "swept": json.dumps(dims),
        "grid_kind": "points" if points else "product",
        "config": "{}",
    }
    return ds


def test_finite_summary_single_run():
    s = finite_summary(finite_dataset({}))
    assert all(key.startswith("all:") for key in s)
    assert all(isinstance(v, float) for v in s.values())
    assert s["all:err_test_final"] == pytest.approx(0.3 * math.exp(-2))
    assert s["all:err_train_final"] == pytest.approx(0.2 * math.exp(-10))
    assert s["all:eg_test_final"] == pytest.approx(0.4 * math.exp(-2))
    assert s["all:err_lin"] == pytest.approx(0.25)
    assert s["all:eg_lin"] == pytest.approx(0.35)
    assert s["all:agree_lin_first"] == pytest.approx(0.7)
    assert s["all:t_agree_first"] == pytest.approx(T[1])
    assert s["all:agree_lin_max"] == pytest.approx(0.95)
    assert s["all:t_agree_max"] == pytest.approx(T[4])
    assert s["all:agree_lin_final"] == pytest.approx(0.76)
    # the window 0.05 < fit_indep < 0.95 excludes the larger ratios at indices 1 and 9
    assert s["all:fit_ratio_max"] == pytest.approx(2.5)
    assert s["all:t_fit_ratio_max"] == pytest.approx(T[5])
    assert s["all:fit_ratio_max_se"] == pytest.approx(FIT_SE[5])
    assert s["all:fit_indep_at_max"] == pytest.approx(0.5)
    json.dumps(s)


def test_finite_summary_keys_per_column_and_curve():
    ds = finite_dataset({"model": ["hmm", "iid"], "K": [2, 4]})
    s = finite_summary(ds)
    assert s["model=hmm,K=4:err_test_final"] == pytest.approx(0.3 * math.exp(-2) + 0.04)
    assert s["model=iid,K=2:err_test_final"] == pytest.approx(0.3 * math.exp(-2) + 0.02)
    assert s["model=iid,K=2:fit_ratio_max"] == pytest.approx(2.5)
    assert len({key.split(":")[0] for key in s}) == 4


def test_finite_summary_window_empty_and_seed_average():
    ds = finite_dataset({"K": [2], "seed": [0, 1]})
    ds["fit_indep"] = ds["fit_indep"] * 0 + 0.99  # nothing in the window
    ds["err_test"] = ds["err_test"] + xr.DataArray([0.0, 0.1], dims="seed")
    s = finite_summary(ds)
    assert math.isnan(s["K=2:fit_ratio_max"]) and math.isnan(s["K=2:fit_ratio_max_se"])
    assert s["K=2:err_test_final"] == pytest.approx(0.3 * math.exp(-2) + 0.02 + 0.05)


def test_finite_summary_seed_combines_standard_errors():
    s = finite_summary(finite_dataset({"seed": [0, 1, 2, 3]}))
    assert s["all:fit_ratio_max_se"] == pytest.approx(FIT_SE[5] / 2)


# ---- model comparison ----------------------------------------------------------------

NS = [100, 400, 1600]
GAP_C, STD_C, ODE_D = 0.3, 0.5, 0.02
BASE = (1.0 + T) ** -0.5


def model_means(N: float) -> dict[str, np.ndarray]:
    """Ensemble means per model: get = BASE, hmm = BASE + GAP_C / sqrt(N), iid = 2 BASE."""
    return {"hmm": BASE + GAP_C / np.sqrt(N), "get": BASE, "iid": 2 * BASE}


def model_eg(model: str, N: float) -> np.ndarray:
    """(member, t): the mean plus member offsets with std (ddof 1) STD_C / sqrt(N)."""
    return model_means(N)[model] + (STD_C / np.sqrt(N)) * SPREAD[:, None]


def models_dataset(models=("hmm", "get"), Ns=NS, points=False, ode=True, seeds=1) -> xr.Dataset:
    """A model-comparison sweep: product over (model, N) or points over (model, N, D)
    listed in a scrambled order (get before hmm, N descending), optionally with seeds."""
    if points:
        combos = [(m, N, s) for N in Ns[::-1] for m in models[::-1] for s in range(seeds)]
        eg = np.stack([model_eg(m, N) for m, N, _ in combos])
        ds = xr.Dataset(
            {
                "eg_sim": (["point", "member", "t"], eg),
                "diverged": (["point", "member"], np.zeros(eg.shape[:2], bool)),
            },
            coords={
                "model": ("point", [c[0] for c in combos]),
                "N": ("point", [c[1] for c in combos]),
                "D": ("point", [c[1] // 2 for c in combos]),
                "seed": ("point", [c[2] for c in combos]),
                "t": T,
            },
        )
        if ode:
            ds["eg_ode"] = (["point", "t"], eg.mean(axis=1) - ODE_D)
        swept = ["model", "N", "D"] + (["seed"] if seeds > 1 else [])
        if seeds == 1:
            ds = ds.drop_vars("seed")
    else:
        eg = np.stack([np.stack([model_eg(m, N) for N in Ns]) for m in models])
        ds = xr.Dataset(
            {
                "eg_sim": (["model", "N", "member", "t"], eg),
                "diverged": (["model", "N", "member"], np.zeros(eg.shape[:3], bool)),
            },
            coords={"model": list(models), "N": Ns, "t": T},
        )
        if ode:
            ds["eg_ode"] = (["model", "N", "t"], eg.mean(axis=2) - ODE_D)
        swept = ["model", "N"]
    ds["eg_sim_mean"] = ds["eg_sim"].mean("member")
    ds["eg_sim_std"] = ds["eg_sim"].std("member")
    ds.attrs = {"swept": json.dumps(swept), "grid_kind": "points" if points else "product"}
    ds.attrs["title"] = "hmm vs get"
    return ds


@pytest.mark.parametrize("points", [False, True])
def test_gep_gaps_known_values(points):
    gaps = gep_gaps(models_dataset(points=points))
    N = np.array(NS, float)
    assert gaps["gap"].dims == ("N",)
    assert gaps["N"].values.tolist() == NS and gaps["N"].dtype.kind == "i"
    np.testing.assert_allclose(gaps["gap"], GAP_C / np.sqrt(N), rtol=1e-12)
    rel = np.sqrt(np.mean((GAP_C / np.sqrt(N)[:, None] / BASE[1:]) ** 2, axis=1))
    np.testing.assert_allclose(gaps["gap_rel"], rel, rtol=1e-12)
    np.testing.assert_allclose(gaps["band"], STD_C / np.sqrt(N), rtol=1e-12)
    np.testing.assert_allclose(gaps["n_runs"], MEMBERS)
    np.testing.assert_allclose(gaps["sem"], STD_C / np.sqrt(N * MEMBERS), rtol=1e-12)
    np.testing.assert_allclose(gaps["ode_gap_a"], ODE_D, rtol=1e-9)
    np.testing.assert_allclose(gaps["ode_gap_b"], ODE_D, rtol=1e-9)
    if points:
        assert gaps["D"].values.tolist() == [N // 2 for N in NS]
    slope, se = fit_power(gaps["N"], gaps["gap"])
    assert slope == pytest.approx(-0.5, abs=1e-12) and se == pytest.approx(0, abs=1e-12)


def test_gep_gaps_layouts_agree_and_swapped_models():
    product, points = gep_gaps(models_dataset()), gep_gaps(models_dataset(points=True))
    for name in ("gap", "gap_rel", "band", "sem", "ode_gap_a", "ode_gap_b"):
        np.testing.assert_allclose(product[name], points[name], rtol=1e-12)
    swapped = gep_gaps(models_dataset(), a="get", b="hmm")
    np.testing.assert_allclose(swapped["gap"], product["gap"], rtol=1e-12)
    assert "ode_gap_a" not in gep_gaps(models_dataset(ode=False))


def test_gep_gaps_seeds_are_one_ensemble():
    gaps = gep_gaps(models_dataset(points=True, seeds=2))
    np.testing.assert_allclose(gaps["n_runs"], 2 * MEMBERS)
    np.testing.assert_allclose(gaps["gap"], GAP_C / np.sqrt(NS), rtol=1e-12)
    # 6 runs with offsets s * (-1, 0, 1, -1, 0, 1): std (ddof 1) = s sqrt(4 / 5)
    np.testing.assert_allclose(gaps["band"], STD_C / np.sqrt(NS) * np.sqrt(0.8), rtol=1e-12)


def test_gep_gaps_diverged_member_and_errors():
    ds = models_dataset()
    ds["eg_sim"][{"model": 0, "N": 0, "member": 2}] = np.where(T > 1, np.nan, 1.0)
    gaps = gep_gaps(ds)
    assert np.isfinite(gaps["gap"]).all()
    with pytest.raises(ValueError, match="'iid' not in"):
        gep_gaps(ds, a="iid")
    with pytest.raises(ValueError, match="not a model comparison"):
        gep_gaps(ds.assign_attrs(swept=json.dumps(["N"])))


def test_fit_power():
    N = np.array([10.0, 100.0, 1000.0, 10000.0])
    slope, se = fit_power(N, 3 * N**-0.5)
    assert slope == pytest.approx(-0.5) and se == pytest.approx(0, abs=1e-12)
    slope, se = fit_power(N[:2], 2 * N[:2] ** 1.5)
    assert slope == pytest.approx(1.5) and math.isnan(se)
    # slope of log y = log(N) * b + noise e with e known: the textbook formula
    e = np.array([0.1, -0.2, 0.05, 0.0])
    x = np.log(N)
    slope, se = fit_power(N, N**-1 * np.exp(e))
    b, a = np.polyfit(x, -x + e, 1)
    resid = -x + e - (a + b * x)
    assert slope == pytest.approx(b)
    expected = math.sqrt(resid @ resid / 2 / ((x - x.mean()) @ (x - x.mean())))
    assert se == pytest.approx(expected)
    assert all(math.isnan(v) for v in fit_power([10.0], [1.0]))


def test_gep_gaps_without_n_axis():
    ds = models_dataset(Ns=[100, 200]).rename(N="lr")
    ds.attrs["swept"] = json.dumps(["model", "lr"])
    assert gep_gaps(ds)["gap"].dims == ("lr",)


def test_finite_summary_missing_variables_and_diverged_member():
    ds = finite_dataset({"K": [2, 4]}).drop_vars(["agree_lin", "fit_ratio_se"])
    ds["err_test"][{"K": 0, "member": 0}] = np.where(T > 10, np.nan, 0.3)  # diverges
    s = finite_summary(ds)
    assert math.isnan(s["K=2:agree_lin_max"]) and math.isnan(s["K=2:fit_ratio_max_se"])
    assert s["K=2:fit_ratio_max"] == pytest.approx(2.5)
    # the diverged member is left out of the final mean: members 1 and 2 remain
    final = 0.3 * math.exp(-2) + 0.02 + 0.01 * SPREAD[1:].mean()
    assert s["K=2:err_test_final"] == pytest.approx(final)


def test_reduce_finite_columns_curves_and_limits():
    ds = finite_dataset({"model": ["hmm", "iid"], "labels": ["sign", "random"], "K": [2, 4]})
    f = reduce_finite(ds)
    assert f.columns[1] == {"model": "hmm", "labels": "random"} and len(f.columns) == 4
    assert f.curves == [{"K": 2}, {"K": 4}] and f.size == MEMBERS
    assert f.curve["err_test"].shape == (4, 2, T.size)
    np.testing.assert_allclose(f.curve["err_test"][3, 1], 0.3 * np.exp(-T / 50) + 0.04)
    np.testing.assert_allclose(f.err_lin, 0.25)
    ds = finite_dataset({"model": ["hmm", "iid", "digits"], "labels": ["sign", "random", "x"]})
    with pytest.raises(ValueError, match="9 columns"):
        reduce_finite(ds)
    with pytest.raises(ValueError, match="product grid"):
        finite_summary(finite_dataset({}, points=True))
    with pytest.raises(ValueError, match="not a finite"):
        finite_summary(finite_dataset({}).assign_attrs(experiment="online"))


def test_model_points_and_ensemble_stats():
    m = model_points(models_dataset(points=True))
    assert m.models == ["get", "hmm"] and m.others == ("N", "D")  # order of appearance
    assert m.distinct == [(1600, 800), (400, 200), (100, 50)]
    i = m.index("hmm", (400, 200))
    mean, std, runs = ensemble_stats(m.g["eg_sim"].isel(point=[i]))
    np.testing.assert_allclose(mean[0], model_means(400)["hmm"], rtol=1e-12)
    np.testing.assert_allclose(std[0], STD_C / np.sqrt(400), rtol=1e-12)
    assert runs.tolist() == [MEMBERS]
    assert m.index("iid", (400, 200)) is None


def test_model_finals_are_the_last_finite_values():
    ds = models_dataset(models=("iid", "hmm"), Ns=[100 * 2**i for i in range(7)])
    ds["eg_sim"][{"model": 0, "N": 1, "member": 0}] = np.where(T > 1, np.nan, 1.0)  # diverges
    mean, std, ode = model_finals(ds)
    last = ds.eg_sim.isel(t=-1).values
    last[0, 1, 0] = 1.0  # its last finite value
    np.testing.assert_allclose(mean.transpose("model", "N").values, last.mean(-1))
    np.testing.assert_allclose(std.transpose("model", "N").values, last.std(-1))
    np.testing.assert_allclose(ode.values, ds.eg_ode.isel(t=-1).values)
    assert model_finals(models_dataset(ode=False))[2] is None
