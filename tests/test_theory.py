"""The ODE against simulation, and the ODE experiment layer (CLI, Datasets, configs)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hmmjax.cli import main
from hmmjax.config.schema import ConfigError
from hmmjax.config.settings import config_from_dict
from hmmjax.data.base import make_data_model
from hmmjax.experiments.driver import simulate
from hmmjax.io.results import read_dataset
from hmmjax.io.state import state_arrays
from hmmjax.io.times import read_times
from hmmjax.models.two_layer import init_network
from hmmjax.observables.order_params import overlaps
from hmmjax.ode import IIDArgs, IIDState, hmm_overlaps, hmm_problem, hmm_rhs, iid_rhs
from hmmjax.ode.times import save_times
from hmmjax.train.online import SGD


def test_cli_ode_reproduces_the_published_integrator(reference_dir, tmp_path):
    ref = np.loadtxt(reference_dir / "hmm_ode_case1_eg.csv", delimiter=",", skiprows=1)
    times = tmp_path / "times.txt"
    np.savetxt(times, ref[:, 0])
    out = tmp_path / "ode.nc"
    state = reference_dir / "hmm_ode_case1_state.npz"
    args = [str(state), "--lr", "0.3", "--t-max", "100", "--save-times", str(times)]
    assert main(["ode", *args, "--out", str(out), "--figure", str(tmp_path / "f.png")]) == 0
    ds = read_dataset(out)
    assert ds.attrs["teacher_term"] == "averaged"  # the reference file has no beta
    np.testing.assert_array_equal(ds.t.values, ref[:, 0])
    np.testing.assert_allclose(ds.eg_ode.values, ref[:, 1], rtol=1e-5)


def test_save_times():
    t = save_times(10.0, 50, "log", "euler", 0.01)
    assert t[0] == 0 and t[-1] == pytest.approx(10.0)
    np.testing.assert_allclose(t / 0.01, np.rint(t / 0.01), atol=1e-9)
    assert np.all(np.diff(t) > 0)
    t = save_times(10.0, 50, "linear", "tsit5")
    assert len(t) == 51 and t[1] == pytest.approx(0.2)


def test_read_times_rejects_bad_files(tmp_path):
    (tmp_path / "ok.txt").write_text("0, 0.5\n1.0 2\n")
    np.testing.assert_array_equal(read_times(tmp_path / "ok.txt"), [0, 0.5, 1, 2])
    (tmp_path / "bad.txt").write_text("0 2 1")
    with pytest.raises(ValueError, match="increasing"):
        read_times(tmp_path / "bad.txt")


SMALL = {
    "data": {"model": "hmm", "N": 200, "D": 100, "f": "sign"},
    "sgd": {"lr": 0.5},
    "run": {"t_max": 2.0, "n_times": 10, "ensemble": 2, "test_size": 200, "mode": "both"},
    "ode": {"teacher_term": "exact"},
}


def test_mode_both_puts_sim_and_ode_on_the_same_times():
    ds = simulate(config_from_dict(SMALL), progress=False)
    assert ds.eg.dims == ("member", "t") and ds.eg_ode.dims == ("t",)
    # Euler saves whole steps: each ODE value is from the nearest multiple of dt
    assert np.all(np.abs(ds.t_ode.values - ds.t.values) <= 0.005 + 1e-12)
    assert ds.attrs["ode_ok"] == 1 and ds.attrs["mode"] == "both"
    # same initial state: the ODE's eg at t = 0 is the simulation's member 0
    assert float(ds.eg_ode[0]) == pytest.approx(float(ds.eg[0, 0]), rel=1e-5)


def test_mode_ode_alone_and_iid():
    cfg = config_from_dict({**SMALL, "data": {"model": "iid", "N": 100}, "run": {
        **SMALL["run"], "mode": "ode"}})  # fmt: skip
    ds = simulate(cfg, progress=False)
    assert "eg" not in ds and "eg_ode" in ds
    assert float(ds.eg_ode[-1]) < float(ds.eg_ode[0])


# --- ODE against simulation ----------------------------------------------------------

N_BIG, D_BIG = 2000, 1000


@pytest.mark.parametrize("N", [1000, pytest.param(N_BIG, marks=pytest.mark.slow)])
def test_hmm_ode_follows_the_simulation_within_the_finite_size_band(N):
    """Same F, theta and initial weights; E = 8 data streams at N = 1000 (2000 under the
    slow marker), delta = 0.5.

    The ensemble mean must lie within 4 standard errors (std over members / sqrt(E)) of
    the ODE, plus 0.5% for the O(1/N) bias of a finite system (THEORY 6: a few 1e-3
    with the exact teacher term). Measured beyond the 4 standard errors: at most 0.06% of
    the ODE at N = 1000 (seeds 0-2), 0.11% at N = 2000 (seed 0)."""
    cfg = config_from_dict(
        {
            "data": {"model": "hmm", "N": N, "D": N // 2, "f": "sign"},
            "sgd": {"lr": 0.2},
            "run": {"t_max": 10.0, "n_times": 15, "ensemble": 8, "test_size": 100,
                    "mode": "both", "same_init": True, "chunk": 16},
            "ode": {"teacher_term": "exact"},
        }
    )  # fmt: skip
    ds = simulate(cfg, progress=False)
    mean, std = ds.eg.mean("member").values, ds.eg.std("member").values
    ode = ds.eg_ode.values
    se = std / math.sqrt(ds.sizes["member"])
    dev = np.abs(mean - ode)
    assert ode[-1] < 0.5 * ode[0]  # it learned something
    assert np.all(dev <= 4 * se + 5e-3 * ode), np.c_[ds.t.values, mean, ode, se]


def _averaged_step_drift(student, model, lr, n_samples, key):
    """N * E[Delta(Q, R)] over single SGD steps from the same state: the finite-difference
    estimate of d(Q, R)/dt, averaged over fresh samples."""
    data = model.sample(key, n_samples, noise=False)
    sgd = SGD.create(lr, dtype=jnp.float64)

    def one(x, y, z):
        from hmmjax.data.base import Batch

        new = sgd.step(student, Batch(x=x[None], y=y[None], z=z[None]))
        ov = overlaps(new.w, model)
        return ov.Q, ov.R

    Q1, R1 = jax.lax.map(lambda b: one(*b), (data.x, data.y, data.z), batch_size=4096)
    ov = overlaps(student.w, model)
    N = student.input_dim
    dQ, dR = N * (Q1 - ov.Q), N * (R1 - ov.R)
    se = lambda a: np.asarray(a.std(0)) / math.sqrt(n_samples)  # noqa: E731
    return np.asarray(dQ.mean(0)), se(dQ), np.asarray(dR.mean(0)), se(dR)


@pytest.mark.slow  # 2e5 samples per average
def test_iid_rhs_matches_averaged_simulation_steps():
    N, K, M, lr = 500, 2, 2, 0.8
    with jax.enable_x64(True):
        model = make_data_model(jax.random.PRNGKey(0), "iid", N=N, M=M, dtype=jnp.float64)
        student = init_network(jax.random.PRNGKey(1), K, N, dtype=jnp.float64)
        dQ, seQ, dR, seR = _averaged_step_drift(student, model, lr, 200_000, jax.random.PRNGKey(2))
        ov = overlaps(student.w, model)
        args = IIDArgs(T=ov.T, A=model.teacher.v, lr=jnp.asarray(lr), kappa=jnp.asarray(0.0),
                       noise=jnp.asarray(0.0))  # fmt: skip
        rhs = iid_rhs(0.0, IIDState(Q=ov.Q, R=ov.R, v=student.v), args)
    # finite-N corrections are O(1/N) relative (|x|^2 / N fluctuates)
    assert np.all(np.abs(np.asarray(rhs.Q) - dQ) <= 4 * seQ + 2e-3 * np.abs(dQ).max())
    assert np.all(np.abs(np.asarray(rhs.R) - dR) <= 4 * seR + 2e-3 * np.abs(dR).max())


@pytest.mark.slow
def test_hmm_rhs_matches_averaged_simulation_steps():
    K, M, lr = 2, 2, 0.8
    with jax.enable_x64(True):
        model = make_data_model(
            jax.random.PRNGKey(0), "hmm", N=N_BIG, M=M, D=D_BIG, f="sign", dtype=jnp.float64
        )
        student = init_network(jax.random.PRNGKey(1), K, N_BIG, dtype=jnp.float64)
        dQ, seQ, dR, seR = _averaged_step_drift(student, model, lr, 200_000, jax.random.PRNGKey(2))
        y0, args = hmm_problem(state_arrays(student, model), lr=lr, f="sign", teacher="exact")
        dy = hmm_rhs(0.0, y0, args)
        # d/dt of Q = zeta W + mu1^2 sum_j sigma_j and R = mu1 sum_j r_j: the overlaps'
        # map applied to the derivative, by linearity
        dQ_ode, dR_ode = hmm_overlaps(dy, args)
        Q, _ = hmm_overlaps(y0, args)
        np.testing.assert_allclose(Q, overlaps(student.w, model).Q, rtol=1e-10)
    scale = np.abs(dQ).max()
    assert np.all(np.abs(np.asarray(dQ_ode) - dQ) <= 4 * seQ + 0.02 * scale), (dQ_ode, dQ, seQ)
    assert np.all(np.abs(np.asarray(dR_ode) - dR) <= 4 * seR + 0.02 * np.abs(dR).max())


# --- the spectral engine in the experiment layer ----------------------------------------


def test_ode_nodes_in_configs_and_the_limit_source():
    ds = simulate(config_from_dict({**SMALL, "ode": {"nodes": 12}}), progress=False)
    assert ds.attrs["ode_points"] == 12 and ds.attrs["ode_source"] == "sample"
    full = simulate(
        config_from_dict(
            {**SMALL, "run": {**SMALL["run"], "mode": "ode"}, "ode": {"nodes": "full"}}
        ),
        progress=False,
    )
    assert full.attrs["ode_points"] == 100  # D eigenvalues
    np.testing.assert_allclose(ds.eg_ode, full.eg_ode, rtol=1e-6)
    limit = simulate(
        config_from_dict({**SMALL, "run": {**SMALL["run"], "mode": "ode"},
                          "ode": {"source": "limit", "nodes": 9}}),
        progress=False,
    )  # fmt: skip
    assert limit.attrs["ode_source"] == "limit" and limit.attrs["ode_points"] == 9
    # the limit starts from the initialisation law: Q = <f^2> I (w ~ N(0, 1)), R = 0, T = I
    np.testing.assert_allclose(limit.Q_ode[0], np.eye(2), atol=1e-12)
    np.testing.assert_allclose(limit.R_ode[0], 0.0, atol=1e-15)
    assert float(limit.eg_ode[-1]) < float(limit.eg_ode[0])


def test_cli_ode_nodes(reference_dir, tmp_path, capsys):
    state = str(reference_dir / "hmm_ode_case1_state.npz")
    out = tmp_path / "ode.nc"
    args = ["ode", state, "--lr", "0.3", "--t-max", "5", "--n-times", "5"]
    assert main([*args, "--nodes", "12", "--out", str(out)]) == 0
    ds = read_dataset(out)
    assert ds.attrs["ode_points"] == 12 and ds.attrs["nodes"] == "12"
    assert main([*args, "--nodes", "full", "--out", str(out)]) == 0
    np.testing.assert_allclose(read_dataset(out).eg_ode, ds.eg_ode, rtol=1e-6)
    for bad in ("1", "x"):
        assert main([*args, "--nodes", bad, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"hmmjax: error: --nodes = {bad}: expected auto, full or an "
                              "integer 2 <= p <= 321 (")  # fmt: skip


@pytest.mark.parametrize("n", [1, 2, 7])
@pytest.mark.parametrize("spacing", ["log", "linear"])
@pytest.mark.parametrize("solver", ["euler", "tsit5"])
@pytest.mark.parametrize("t_max", [1.0, 0.7, 5.0, 30.0, 2.0 / 3.0])
def test_save_times_start_at_0_and_end_at_t_max(n, spacing, solver, t_max):
    """Exactly at t_max, whatever n (np.logspace with one point gives its start) and
    whatever the rounding of 10^log10(t_max) or of round(t_max / dt) dt."""
    t = save_times(t_max, n, spacing, solver, 0.01)
    assert t[0] == 0 and t[-1] == t_max and np.all(np.diff(t) > 0), t
    assert len(t) <= n + 1
    if solver == "euler":  # the state after whole steps: every time but t_max on the grid
        np.testing.assert_allclose(t[:-1] / 0.01, np.rint(t[:-1] / 0.01), atol=1e-9)


def test_save_times_refuse_an_euler_step_beyond_t_max():
    with pytest.raises(ValueError, match=r"dt = 1000.0: the Euler step is longer than t_max = 1"):
        save_times(1.0, 3, "log", "euler", 1000.0)


def test_cli_ode_with_one_save_time_reaches_t_max(reference_dir, tmp_path):
    state = str(reference_dir / "hmm_ode_case1_state.npz")
    out = tmp_path / "ode.nc"
    args = ["ode", state, "--lr", "0.3", "--t-max", "1", "--n-times", "1", "--nodes", "4"]
    assert main([*args, "--out", str(out), "--figure", str(tmp_path / "f.png")]) == 0
    ds = read_dataset(out)
    np.testing.assert_array_equal(ds.t.values, [0.0, 1.0])
    np.testing.assert_allclose(ds.t_ode.values, [0.0, 1.0], rtol=1e-12)
    assert ds.attrs["ode_num_steps"] == 100


@pytest.mark.parametrize("mode", ["ode", "both"])
def test_mode_ode_refuses_an_euler_step_beyond_t_max(mode):
    """ode.dt > run.t_max: the Euler ODE would take no step and save t = 0 only; refused
    with the config, before anything is drawn or simulated (also in mode "both")."""
    with pytest.raises(ConfigError) as err:
        config_from_dict({**SMALL, "run": {**SMALL["run"], "mode": mode}, "ode": {"dt": 10.0}})
    assert str(err.value) == (
        "ode.dt = 10.0: the Euler step is longer than run.t_max = 2.0; expected ode.dt <= run.t_max"
    )
    config_from_dict({**SMALL, "run": {**SMALL["run"], "mode": "sim"}, "ode": {"dt": 10.0}})
