"""Invariant-manifold experiments from configs: checks, the Dataset, NTK analyses, CLI."""

import numpy as np
import pytest

from hmmjax.config.schema import ConfigError
from hmmjax.config.settings import config_from_dict
from hmmjax.experiments.driver import simulate
from hmmjax.experiments.invariant import SEED_STRIDE, member_seeds
from hmmjax.sweep.lanes import point_configs

BASE = {
    "data": {"model": "stripe", "N": 4},
    "student": {"K": 32, "g": "relu"},
    "finite": {"P": 32},
    "run": {"ensemble": 2, "n_times": 6, "test_size": 300},
    "invariant": {"max_steps": 20000, "ntk": True, "ntk_top": 8},
}


def _cfg(grid=None, **sections):
    d = {k: dict(v) for k, v in BASE.items()}
    for k, v in sections.items():
        d[k] = {**d.get(k, {}), **v}
    return config_from_dict({**d, "grid": grid or {}})


@pytest.fixture(scope="module")
def grid_ds():
    return simulate(_cfg({"alpha": [0.01, 100.0], "P": [16, 32]}), progress=False)


def test_dataset_layout(grid_ds):
    ds = grid_ds
    assert ds.attrs["experiment"] == "invariant"
    assert ds.err_test.dims == ("alpha", "P", "member", "record")
    assert ds.kr_err.dims == ("alpha", "P", "member", "ntk")
    assert ds.ntk_align.sizes["eig"] == 8
    assert list(ds.ntk.values) == ["init", "final"]
    assert float(ds.K) == 32  # a non-swept axis is a scalar coordinate
    np.testing.assert_allclose(ds.attrs["beta_lazy"], 4 / 10)


def test_training_reaches_zero_loss_and_feature_learning_compresses(grid_ds):
    ds = grid_ds
    assert bool(ds.converged.all())
    final = ds.isel(record=-1)
    assert np.all(final.err_train == 0)
    # the weights grow more along x_1 than along the others, more so at small alpha
    ratio = final.ratio.mean("member")
    assert np.all(ratio.sel(alpha=0.01) > ratio.sel(alpha=100.0))
    # alignment is a cumulative fraction in [0, 1]
    assert np.all(np.diff(ds.ntk_align, axis=-1) >= -1e-12)
    assert float(ds.ntk_align.max()) <= 1 + 1e-9


def test_grid_split_over_P_equals_one_computation(grid_ds):
    """invariant.by_p (the default) runs one part per P; every lane padded to the grid's
    largest P in one computation gives the same training, to the bit (the padded samples
    are masked; only the recorded loss, computed in float32 from margins close to 1 on a
    padded set, may differ in its last digits), and the same layout and attributes."""
    whole = simulate(
        _cfg({"alpha": [0.01, 100.0], "P": [16, 32]}, invariant={"by_p": False}), progress=False
    )
    assert "by_P" in grid_ds.attrs and "by_P" not in whole.attrs
    assert set(grid_ds.data_vars) == set(whole.data_vars)
    for name in whole.data_vars:
        assert grid_ds[name].dims == whole[name].dims, name
        if name == "loss":
            np.testing.assert_allclose(grid_ds[name], whole[name], rtol=1e-4, err_msg=name)
        else:
            np.testing.assert_array_equal(grid_ds[name], whole[name], err_msg=name)
    for key in ("experiment", "d", "d_par", "beta_lazy", "beta_feature", "threshold"):
        assert grid_ds.attrs[key] == whole.attrs[key], key


def test_a_checkpoint_of_the_whole_grid_is_refused_by_a_split_run(tmp_path):
    """A run stopped with invariant.by_p = false (or before the key existed) left one
    checkpoint for the whole grid; the split run would ignore it and then delete it."""
    ckpt = tmp_path / "run.nc.ckpt.npz"
    ckpt.write_bytes(b"a whole-grid checkpoint")
    with pytest.raises(ConfigError, match="whole grid.*invariant.by_p = false.*--fresh"):
        simulate(_cfg({"P": [16, 32]}), progress=False, checkpoint=ckpt)
    assert ckpt.read_bytes() == b"a whole-grid checkpoint"


def test_seeds_of_members():
    cfg = _cfg({"seed": [3, 4]})
    expected = np.array([[3, 3], [4, 4]]) * SEED_STRIDE + np.array([0, 1])
    np.testing.assert_array_equal(member_seeds(point_configs(cfg)), expected)


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"finite": {"P": 0}}, r'finite.P = 0: data.model = "stripe" needs'),
        ({"student": {"g": "sign"}}, r'student.g = "sign": data.model = "stripe" needs'),
        ({"data": {"model": "cylinder", "N": 2}}, r'data.N = 2: data.model = "cylinder"'),
        ({"run": {"mode": "ode"}}, r'run.mode = "ode"'),
        ({"invariant": {"alpha": 0}}, r"invariant.alpha = 0"),
    ],
)
def test_config_errors(kw, words):
    with pytest.raises(ConfigError, match=words):
        _cfg(**kw)


@pytest.mark.parametrize(
    "grid, words",
    [
        ({"lr": [0.1, 0.2]}, 'grid.lr: not an axis of data.model = "stripe"; it sweeps alpha'),
        ({"points": [{"alpha": 1.0}, {"alpha": 2.0}]}, "grid.points: invariant experiments"),
    ],
)
def test_grids_it_does_not_run_are_refused_before_work(grid, words):
    with pytest.raises(ConfigError, match=words):  # by the config itself
        _cfg(grid)


def test_cli_run_and_plot(tmp_path):
    from hmmjax.cli import main
    from hmmjax.io.results import read_dataset

    cfg = tmp_path / "stripe.toml"
    cfg.write_text(
        '[data]\nmodel = "stripe"\nN = 4\n[student]\nK = 16\ng = "relu"\n[finite]\nP = 16\n'
        "[invariant]\nmax_steps = 2000\n[run]\nensemble = 2\nn_times = 5\ntest_size = 200\n"
        "[grid]\nalpha = [0.1, 10.0]\n"
    )
    out = tmp_path / "stripe.nc"
    assert main(["run", str(cfg), "--out", str(out), "-q"]) == 0
    assert out.with_suffix(".png").stat().st_size > 10_000
    assert read_dataset(out).attrs["experiment"] == "invariant"
    assert main(["plot", str(out), "--out", str(tmp_path / "again.png")]) == 0
