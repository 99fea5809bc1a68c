"""The experiment driver: determinism, ensembles, precision, the Dataset's layout."""

import jax
import numpy as np
import pytest
from conftest import small_config

import hmmjax.sweep.setup as sweep_setup
from hmmjax.experiments.driver import simulate

# on top of conftest's SMALL (hmm data)
SIM = {
    "data": {"N": 60, "D": 12, "f": "sign"},
    "student": {"K": 2},
    "sgd": {"lr": 0.5},
    "run": {"t_max": 3.0, "n_times": 12, "ensemble": 3, "test_size": 300, "chunk": 4},
}


@pytest.fixture(scope="module")
def base():
    return simulate(small_config(SIM), progress=False)


def test_same_config_and_seed_give_the_same_numbers(base):
    again = simulate(small_config(SIM), progress=False)
    for name in ("eg", "eg_mc", "Q", "R", "v"):
        np.testing.assert_array_equal(again[name].values, base[name].values)


def test_the_chunk_size_changes_no_number(base):
    """``run.chunk`` only groups recording intervals into compiled calls (a checkpoint and a
    progress tick each): one interval per call gives the same numbers as four."""
    one = simulate(small_config(SIM, run={"chunk": 1}), progress=False)
    for name in ("eg", "eg_mc", "Q", "R", "v"):
        np.testing.assert_array_equal(one[name].values, base[name].values)


def test_another_seed_gives_other_numbers(base):
    other = simulate(small_config(SIM, run={"seed": 1}), progress=False)
    assert not np.allclose(other.eg_mc.values, base.eg_mc.values)


def test_dataset_layout(base):
    assert base.eg.dims == ("member", "t")
    assert base.Q.shape == (3, base.sizes["t"], 2, 2)
    assert base.t.values[0] == 0.0 and base.t.values[-1] == pytest.approx(3.0)
    np.testing.assert_array_equal(base.step.values, np.round(base.t.values * 60))
    assert np.all(np.isfinite(base.eg.values)) and np.all(np.isfinite(base.eg_mc.values))
    assert base.attrs["precision"] == "float32"
    # members differ (independent initial weights and streams)
    assert not np.allclose(base.eg_mc.values[0], base.eg_mc.values[1])


def test_independent_features_and_teacher_per_member(base):
    indep = simulate(small_config(SIM, data={"shared": False}), progress=False)
    assert indep.eg.shape == base.eg.shape
    assert not np.allclose(indep.eg_mc.values, base.eg_mc.values)


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_runs_are_traced_with_full_float32_products(monkeypatch, precision):
    """The driver traces a run's draws with float32 matrix products in full float32
    (``hmmjax.sweep.numerics``; JAX's default on NVIDIA GPUs rounds them to TF32) and
    x64 as ``run.precision`` says. Recorded while the draw is traced (an N of its own, so
    that no earlier test's compiled draw is reused)."""
    seen = []

    def dtype_of(cfg):
        seen.append((jax.config.jax_default_matmul_precision, jax.config.jax_enable_x64))
        return real(cfg)

    real = sweep_setup.dtype_of
    monkeypatch.setattr(sweep_setup, "dtype_of", dtype_of)
    cfg = small_config(SIM, data={"N": 37}, run={"t_max": 0.5, "n_times": 2,
                                                 "precision": precision})  # fmt: skip
    simulate(cfg, progress=False)
    assert seen and set(seen) == {("float32", precision == "float64")}


def test_an_ode_run_draws_no_test_set(monkeypatch):
    """``run.mode = "ode"`` draws the data model and the students but no test set (at
    N = 2^20 the test set was 11.7 GiB of a set-up the ODE never reads), and what it draws
    is, bit for bit, what a run with its test set draws."""
    import hmmjax.sweep.ode as sweep_ode

    drawn = []
    real = sweep_ode.build

    def build(cfg, test=True):
        drawn.append(real(cfg, test=test))
        return drawn[-1]

    monkeypatch.setattr(sweep_ode, "build", build)
    cfg = small_config(SIM, run={"mode": "ode", "t_max": 0.5, "n_times": 2})
    ds = simulate(cfg, progress=False)
    assert np.isfinite(ds.eg_ode.values).all()
    assert len(drawn) == 1 and drawn[0].test is None
    full = sweep_setup.build(cfg)
    assert full.test is not None
    for a, b in zip(jax.tree.leaves((drawn[0].model, drawn[0].students)),
                    jax.tree.leaves((full.model, full.students)), strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)


def test_float64_runs_and_agrees_early(base):
    ds = simulate(small_config(SIM, run={"precision": "float64"}), progress=False)
    assert ds.eg.dtype == np.float64
    np.testing.assert_allclose(ds.eg.values[:, :4], base.eg.values[:, :4], rtol=1e-4)


def test_the_engine_tells_the_trainer_its_members(monkeypatch, realised_steps):
    """``AbstractTrainer.batched`` gets the members of a lane (``run.ensemble``), not the
    lanes a device runs (which depend on the devices and the memory plan): 17 members are
    past ``STEP_INPUTS_MIN`` and take SGD's per-step inputs, 20 lanes of one member do not."""
    from hmmjax.train.online import SGD

    seen, batched = [], SGD.batched

    def spy(self, members):
        seen.append(members)
        return batched(self, members)

    monkeypatch.setattr(SGD, "batched", spy)
    ds = simulate(small_config(SIM, run={"ensemble": 17, "t_max": 0.5}), progress=False)
    assert set(seen) == {17} and () in realised_steps  # some step realised on its own
    assert np.all(np.isfinite(ds.eg.values))
    seen.clear()
    grid = small_config(SIM, run={"ensemble": 1, "t_max": 0.2}, grid={"seed": list(range(20))})
    simulate(grid, progress=False)
    assert set(seen) == {1}
