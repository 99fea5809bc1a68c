"""A grid over data models (and label kinds): one compiled computation per model, the
parts put together along ``model`` with the numbers of the separate runs."""

import numpy as np
import pytest
from conftest import small_config

from hmmjax.cli import main
from hmmjax.config.schema import ConfigError
from hmmjax.experiments.driver import simulate
from hmmjax.io.results import read_dataset

# on top of conftest's SMALL (hmm data, N = 30, D = 10): simulation and ODE together
BOTH = {
    "sgd": {"lr": 0.5},
    "run": {"n_times": 6, "test_size": 100, "mode": "both", "same_init": True},
    "ode": {"nodes": 5},
}


@pytest.fixture(scope="module")
def hmm_get():
    return simulate(small_config(BOTH, grid={"model": ["hmm", "get"], "K": [1, 2]}), progress=False)


def test_model_axis_equals_the_separate_runs(hmm_get):
    ds = hmm_get
    assert ds.eg_sim.dims == ("model", "K", "member", "t")
    assert list(ds.model.values) == ["hmm", "get"]
    for model in ("hmm", "get"):
        cfg = small_config(BOTH, data={"model": model}, grid={"K": [1, 2]})
        alone = simulate(cfg, progress=False)
        for name in ("eg_sim", "eg_ode", "Q"):
            np.testing.assert_allclose(ds[name].sel(model=model), alone[name], rtol=1e-6)
    assert set(ds.attrs["by_model"]) == {"hmm", "get"}


def test_same_weights_teacher_and_latents_give_close_curves(hmm_get):
    # the same F, teacher, initial weights and latent stream c: at t = 0 the two
    # models' students and teachers are the same, so their ODEs start equal
    ds = hmm_get
    np.testing.assert_allclose(ds.eg_ode.sel(model="hmm").isel(t=0),
                               ds.eg_ode.sel(model="get").isel(t=0), rtol=1e-6)  # fmt: skip


def test_points_over_models_keep_the_grid_order_and_pad_units():
    points = [{"model": "get", "K": 2}, {"model": "iid", "K": 1}, {"model": "get", "K": 1}]
    ds = simulate(small_config(BOTH, grid={"points": points}), progress=False)
    assert list(ds.model.values) == ["get", "iid", "get"]
    assert list(ds.K.values) == [2, 1, 1]
    assert ds.sizes["k"] == 2
    assert np.isnan(ds.Q.isel(point=1, k=1)).all()  # K = 1: the padded unit is NaN
    single = simulate(small_config(BOTH, data={"model": "iid"}, student={"K": 1}), progress=False)
    np.testing.assert_allclose(ds.eg_sim.isel(point=1), single.eg_sim, rtol=1e-6)


def test_string_axes_are_checked():
    with pytest.raises(ConfigError, match=r'grid.model\[1\] = "hmx"'):
        small_config(BOTH, grid={"model": ["hmm", "hmx"]})
    with pytest.raises(ConfigError, match="expected a non-empty list of strings"):
        small_config(BOTH, grid={"model": "hmm"})
    with pytest.raises(ConfigError, match=r"grid.labels\[0\] = 1"):
        small_config(BOTH, grid={"labels": [1]})


def test_cli_run_plot_and_per_model_checkpoints(tmp_path, capsys):
    cfg = tmp_path / "models.toml"
    cfg.write_text(
        '[data]\nmodel = "hmm"\nN = 30\nD = 8\n[run]\nt_max = 1.0\nn_times = 4\n'
        'ensemble = 2\ntest_size = 50\nchunk = 1\n[grid]\nmodel = ["iid", "hmm"]\nK = [1, 2]\n'
    )
    out = tmp_path / "m.nc"
    assert main(["run", str(cfg), "--out", str(out), "-q"]) == 0
    assert out.exists() and out.with_suffix(".png").exists()
    assert not list(tmp_path.glob("*.ckpt.npz"))  # every model's checkpoint is removed
    ds = read_dataset(out)
    assert list(ds.model.values) == ["iid", "hmm"]
    assert main(["plot", str(out), "--out", str(tmp_path / "again.png")]) == 0


@pytest.mark.parametrize(
    "grid, finite, words",
    [
        ({"P": [10, 20]}, 0, "grid.P: not an axis of online runs"),
        ({"alpha": [1.0, 2.0]}, 0, "grid.alpha: not an axis of online runs"),
        ({"labels": ["sign", "random"]}, 0, "grid.labels: not an axis of online runs"),
        ({"P": [10, 20]}, 20, "grid.P: not an axis of finite-set runs"),
    ],
)
def test_axes_of_other_experiments_are_refused_before_work(grid, finite, words):
    """Refused by the config itself (``hmmjax config FILE`` and ``hmmjax run`` alike)."""
    with pytest.raises(ConfigError, match=words):
        small_config(BOTH, run={"mode": "sim"}, finite={"P": finite}, grid=grid)


def test_invariant_and_other_models_do_not_mix():
    grid = {"model": ["hmm", "stripe"]}
    with pytest.raises(ConfigError, match=r'grid.model = \["hmm", "stripe"\]: invariant'):
        small_config(BOTH, run={"mode": "sim"}, finite={"P": 20}, grid=grid)
