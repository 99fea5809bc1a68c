"""Figure and numbers of the invariant-manifold experiment (hmmjax.plots_invariant) on
synthetic datasets with known answers (no training)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import xarray as xr

from hmmjax.invariant import predicted_exponents
from hmmjax.plots_invariant import MAX_LINES, MAX_PANELS, invariant_summary, plot_invariant
from hmmjax.results import read_dataset, write_dataset

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


def labels(fig) -> list[str]:
    return [ax.get_label() for ax in fig.axes]


def legend_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def is_png(path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- alpha sweeps ----------------------------------------------------------------------

ALPHAS = [0.01, 1.0, 100.0]


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


def test_alpha_by_K_without_ntk():
    ds = invariant_dataset({"alpha": ALPHAS, "K": [16, 64]})
    fig = plot_invariant(ds)
    assert "invariant:kernels" not in labels(fig)
    assert labels(fig)[:2] == ["invariant:alpha", "invariant:compression"]
    assert legend_texts(fig.axes[0]) == ["K=16", "K=64"]
    assert "(K=64)" in fig.axes[2].get_title()  # training panels: the largest K
    s = invariant_summary(ds)
    assert s["alpha=0.01,K=16:err_test"] == pytest.approx(s["alpha=0.01,K=64:err_test"])


# ---- P sweeps (learning curves) --------------------------------------------------------

PS = [16, 32, 64, 128, 256]


def test_exact_power_law_gives_the_imposed_exponent(tmp_path):
    ds = invariant_dataset({"P": PS})
    s = invariant_summary(ds)
    assert s["all:beta"] == pytest.approx(BETA, abs=1e-12)
    assert s["all:beta_lazy"] == pytest.approx(predicted_exponents(D, D_PAR)["lazy"])
    assert s["all:d_par"] == D_PAR
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
    s = invariant_summary(ds)
    assert s["all:beta"] == pytest.approx(BETA, abs=2e-3)
    assert 0 < s["all:beta_se"] < 1e-2
    assert s["all:beta_feature"] == pytest.approx(predicted_exponents(D, D_PAR)["feature"])
    assert not any(k.startswith("seed=") for k in s)  # seeds are runs
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


def test_single_point_shows_training_only():
    ds = invariant_dataset({}, members=1)
    fig = plot_invariant(ds)
    assert labels(fig) == ["invariant:training", "invariant:training"]
    s = invariant_summary(ds)
    assert s["all:err_test"] == pytest.approx(C * 64**-BETA)
    assert math.isnan(s["all:err_test_se"])  # one run: no standard error


def test_too_many_panels_or_lines_are_refused():
    models = [f"m{i}" for i in range(MAX_PANELS)]
    ds = invariant_dataset({"model": ["stripe"], "P": PS}, by_model=False)
    many = xr.concat([ds.isel(model=[0])] * len(models), "model").assign_coords(model=models)
    with pytest.raises(ValueError, match="panels"):
        plot_invariant(many)
    alphas = list(np.logspace(-2, 2, MAX_LINES + 1))
    with pytest.raises(ValueError, match="lines"):
        plot_invariant(invariant_dataset({"alpha": alphas}))
    invariant_summary(invariant_dataset({"alpha": alphas}))  # numbers have no limit


def test_other_experiments_are_refused():
    ds = invariant_dataset({"alpha": ALPHAS})
    ds.attrs["experiment"] = "finite"
    with pytest.raises(ValueError, match="not an invariant"):
        plot_invariant(ds)
    with pytest.raises(ValueError, match="not an invariant"):
        invariant_summary(ds)
