"""Learning-rate schedules (``hmmjax.core.schedules``, ``sgd.schedule``): the tables and
their errors, the rate of each SGD step and of the ODE at each time, gradients through
the ODE with respect to a schedule, and simulation against the ODE under a schedule."""

from __future__ import annotations

import tomllib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import small_config

from hmmjax.config.schema import SCHEDULES as CONFIG_SCHEDULES
from hmmjax.config.schema import ConfigError
from hmmjax.config.settings import config_from_dict
from hmmjax.core.schedules import SCHEDULES, Piecewise, Power, learning_rate, make_schedule
from hmmjax.core.tables import read_table
from hmmjax.data.base import make_data_model
from hmmjax.experiments.driver import simulate
from hmmjax.models.two_layer import init_network
from hmmjax.ode import solve_hmm_limit, solve_iid
from hmmjax.ode.iid import IIDArgs, IIDState, iid_rhs
from hmmjax.sweep.checkpoint import describe_config, fingerprint
from hmmjax.sweep.lanes import config_schedule
from hmmjax.train.online import SGD, advance, draw_block


def test_the_config_and_the_library_name_the_same_schedules():
    assert CONFIG_SCHEDULES == SCHEDULES


def test_power_and_piecewise_values():
    s = Power(2.0, 1.5)
    np.testing.assert_allclose(s(jnp.array([0.0, 2.0, 6.0])), [1.0, 2**-1.5, 4**-1.5], rtol=1e-6)
    p = Piecewise([0.0, 1.0, 3.0], [1.0, 0.5, 0.1])
    np.testing.assert_allclose(p(jnp.array([0.0, 0.5, 2.0, 3.0, 10.0])),
                               [1.0, 0.75, 0.3, 0.1, 0.1], rtol=1e-6)  # fmt: skip
    assert learning_rate(0.3, None, 5.0) == 0.3  # no schedule: lr itself


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "equal length >= 1"),
        ("0 1\n1\n", "line 2: expected two numbers"),
        ("0 1\nx 2\n", "line 2: expected two numbers"),
        ("0 1\n1 nan\n", "finite"),
        ("0.5 1\n1 1\n", "start at 0"),
        ("0 1\n2 1\n1 1\n", "increase strictly"),
        ("0 1\n1 -0.5\n", ">= 0"),
        ("0 1\n1 1e31\n", "<= 1e\\+30"),
        ("0 1\n1 1\n1.0000001 2\n", "float32 would merge them"),
    ],
)
def test_bad_tables_are_refused_with_their_line(tmp_path, text, match):
    path = tmp_path / "s.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_table(path)
    with pytest.raises(ConfigError, match="sgd.schedule_file") as err:
        small_config(sgd={"schedule": "file", "schedule_file": str(path)})
    assert "\n" not in str(err.value)


def test_table_files_with_comments_and_commas(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("\ufeff# t, factor\n0, 1.0\n2.5, 0.25  # late\n\n", encoding="utf-8")
    assert read_table(path) == ((0.0, 2.5), (1.0, 0.25))  # a byte-order mark is fine
    with pytest.raises(ValueError, match="not a regular file"):
        read_table(tmp_path)
    (tmp_path / "bin").write_bytes(bytes(range(256)))
    with pytest.raises(ValueError, match="cannot be read"):
        read_table(tmp_path / "bin")
    assert float(make_schedule("file", path=path)(1.25)) == pytest.approx(0.625)


PIECEWISE = {"schedule": "piecewise", "schedule_times": [0, 1, 2], "schedule_values": [1, 0.5, 0]}


@pytest.mark.parametrize(
    ("sgd", "match"),
    [
        ({"schedule": "file"}, "set sgd.schedule_file"),
        ({"schedule": "file", "schedule_file": "/no/such/file"}, "cannot be read"),
        ({"tau": 3.0}, 'sgd.tau = 3.0: used by sgd.schedule = "power" only'),
        ({"schedule": "power", "schedule_file": "x"}, "sgd.schedule_file"),
        ({"schedule": "power", "tau": 0.0}, "sgd.tau"),
        ({"schedule": "power", "tau": 1e-50}, "sgd.tau = 1e-50: expected a number in"),
        ({"schedule": "power", "power": float("nan")}, "sgd.power"),
        ({"schedule": "cosine"}, "sgd.schedule"),
        ({"schedule_times": [0.0, 1.0]}, 'used by sgd.schedule = "piecewise" only'),
        ({"schedule": "piecewise"}, "equal length >= 1"),
        (PIECEWISE | {"schedule_times": [0, 2, 1]}, "increase strictly"),
        (PIECEWISE | {"schedule_values": [1]}, "equal length"),
        (PIECEWISE | {"schedule_values": [1, -1, 0]}, ">= 0"),
        (PIECEWISE | {"schedule_times": [0, "a", 2]}, "expected a list of finite numbers"),
        (PIECEWISE | {"schedule_times": [0, float("nan"), 2]}, "sgd.schedule_times = "),
        (PIECEWISE | {"schedule_times": [0, True, 2]}, "expected a list of finite numbers"),
        (PIECEWISE | {"schedule_values": 3.0}, r"sgd.schedule_values = 3.0 \(a number\)"),
    ],
)
def test_bad_schedule_keys(sgd, match):
    with pytest.raises(ConfigError, match=match):
        small_config(sgd=sgd)


def test_schedules_are_for_online_runs():
    with pytest.raises(ConfigError, match="online runs"):
        small_config(sgd={"schedule": "power"}, finite={"P": 20}, run={"mode": "sim"})
    with pytest.raises(ConfigError, match="online runs"):
        small_config(sgd={"schedule": "power"}, data={"model": "stripe", "N": 5})


def test_a_changed_table_file_changes_the_fingerprint(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("0 1\n1 0.5\n")
    cfg = small_config(sgd={"schedule": "file", "schedule_file": str(path)})
    before = fingerprint(cfg)
    path.write_text("0 1\n1 0.4\n")
    assert fingerprint(cfg) != before
    # a constant rate keeps the fingerprint checkpoints had before schedules existed, the
    # power and file schedules the one they had before the piecewise keys existed
    assert "schedule" not in describe_config(small_config())
    assert "schedule_times" not in describe_config(cfg)
    table = small_config(sgd=PIECEWISE)
    assert fingerprint(table) != fingerprint(small_config(sgd=PIECEWISE | {"schedule_values":
                                                                       [1, 0.5, 0.1]}))  # fmt: skip
    assert config_from_dict(tomllib.loads(table.to_toml())) == table  # lists round-trip


# --- the rate of every SGD step -----------------------------------------------------------


@pytest.fixture(scope="module")
def stream():
    N, block = 40, 8
    model = make_data_model(jax.random.PRNGKey(0), "iid", N=N, M=2)
    student = init_network(jax.random.PRNGKey(1), 2, N)
    return model, student, jax.random.PRNGKey(2), N, block


def test_each_step_runs_at_its_scheduled_rate(stream):
    """advance with a schedule = SGD.step one after another at lr * s(step / N), on the
    same samples (exactly: the same operations)."""
    model, student, key, N, block = stream
    sched = Piecewise([0.0, 0.5, 1.0], [1.0, 0.2, 0.6])
    sgd = SGD.create(0.5, schedule=sched)
    start, stop = 3, 3 + 2 * block + 5  # across blocks, from inside one
    got = advance(student, sgd, model, key, start, stop, block)
    net = student
    for s in range(start, stop):
        b0 = (s // block) * block
        data = jax.tree.map(lambda a, i=s - b0: a[i], draw_block(model, key, b0, block, 1))
        net = SGD.create(float(0.5 * sched(s / N))).step(net, data)
    np.testing.assert_allclose(got.w, net.w, rtol=2e-6, atol=1e-7)
    plain = advance(student, SGD.create(0.5), model, key, start, stop, block)
    assert not np.allclose(plain.w, got.w)  # the schedule changed the run


def test_the_block_update_follows_the_schedule(stream):
    """Many students (``advance_many``'s block update, ``delayed_block``) against each one
    advanced step by step, with a schedule and both layers trained."""
    model, student, key, N, block = stream
    Q = 8  # Q K >= block: the delayed block update
    students = jax.tree.map(lambda a: jnp.stack([a] * Q), student)
    lrs = jnp.linspace(0.2, 0.9, Q)
    sched = Power(0.3, 1.0)
    many = jax.vmap(lambda lr: SGD.create(lr, train_second=True, schedule=sched))(lrs)
    got = many.advance_many(students, model, key, 0, 3 * block, block)
    for q in (0, Q - 1):
        one = SGD.create(lrs[q], train_second=True, schedule=sched)
        ref = advance(student, one, model, key, 0, 3 * block, block)
        np.testing.assert_allclose(got.w[q], ref.w, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got.v[q], ref.v, rtol=1e-4, atol=1e-5)


# --- the ODE ------------------------------------------------------------------------------

Q0 = np.array([[1.0, 0.1], [0.1, 0.8]])
R0 = np.array([[0.1, 0.0], [0.0, 0.05]])
T0, V0, A0 = np.eye(2), np.ones(2), np.ones(2)


def test_ode_euler_steps_at_the_scheduled_rate():
    """solve_iid with a schedule = Euler steps of the constant-rate right-hand side with
    lr * s(t) at the step's start time t = s dt."""
    sched = Piecewise([0.0, 0.3, 1.0], [1.0, 0.3, 0.8])
    dt, n = 0.01, 100
    sol = solve_iid(Q0, R0, V0, T0, A0, np.array([n * dt]), lr=0.7, schedule=sched,
                    solver="euler", dt=dt)  # fmt: skip
    with jax.enable_x64(True):
        y = IIDState(Q=jnp.asarray(Q0), R=jnp.asarray(R0), v=jnp.asarray(V0))
        for s in range(n):
            rate = 0.7 * float(sched(s * dt))
            args = IIDArgs(T=jnp.asarray(T0), A=jnp.asarray(A0), lr=jnp.asarray(rate),
                           kappa=jnp.asarray(0.0), noise=jnp.asarray(0.0))  # fmt: skip
            k = iid_rhs(jnp.asarray(s * dt), y, args)
            y = jax.tree.map(lambda a, b: a + dt * b, y, k)
    np.testing.assert_allclose(sol.Q[-1], y.Q, rtol=1e-12)
    np.testing.assert_allclose(sol.R[-1], y.R, rtol=1e-12)


def _check_gradient(eg, params, rtol):
    """jax.grad of ``eg(params)`` against central finite differences (float64)."""
    with jax.enable_x64(True):
        params = jnp.asarray(params, float)
        grad = np.asarray(jax.grad(eg)(params))
        h = 1e-5 * np.maximum(1.0, np.abs(np.asarray(params)))
        fd = [
            (float(eg(params.at[i].add(h[i]))) - float(eg(params.at[i].add(-h[i])))) / (2 * h[i])
            for i in range(params.shape[0])
        ]
    assert np.all(np.abs(grad) > 1e-6)
    np.testing.assert_allclose(grad, fd, rtol=rtol)


TIMES = np.array([0.0, 1.0, 2.0, 4.0])
OPTS = {"euler": dict(solver="euler", dt=0.01), "tsit5": dict(solver="tsit5", rtol=1e-11,
                                                               atol=1e-13)}  # fmt: skip


def _schedule(solver, params):
    """Piecewise values (Euler: its kinks fall on steps) or a smooth power law (tau,
    power) for the adaptive solver, whose steps would otherwise straddle the kinks."""
    return Piecewise(TIMES, params) if solver == "euler" else Power(params[0], params[1])


PARAMS = {"euler": [1.0, 0.7, 0.5, 0.4], "tsit5": [2.0, 0.6]}


SOLVERS = ["euler", pytest.param("tsit5", marks=pytest.mark.slow)]  # tsit5: 20-30 s each


@pytest.mark.parametrize("solver", SOLVERS)
def test_iid_ode_gradient_with_respect_to_the_schedule(solver):
    """d eg(t = 4) / d(schedule parameters) through solve_iid."""

    def eg(params):
        sol = solve_iid(Q0, R0, V0, T0, A0, np.array([4.0]), lr=0.8,
                        schedule=_schedule(solver, params), **OPTS[solver])  # fmt: skip
        return sol.eg[-1]

    _check_gradient(eg, PARAMS[solver], rtol=1e-5)


@pytest.mark.slow  # 20-30 s each; the HMM ODE's schedule is in the default grid test too
@pytest.mark.parametrize("solver", SOLVERS)
def test_hmm_ode_gradient_with_respect_to_the_schedule(solver):
    """d eg(t = 4) / d(schedule parameters) through the HMM ODE (the N -> infinity limit
    on 9 nodes at delta = 0.5)."""

    def eg(params):
        sol = solve_hmm_limit(0.5, np.array([4.0]), v=V0, A=A0, q0=1.0, lr=0.8, nodes=9,
                              schedule=_schedule(solver, params), **OPTS[solver])  # fmt: skip
        return sol.eg[-1]

    _check_gradient(eg, PARAMS[solver], rtol=1e-5)


def test_simulation_follows_the_ode_under_a_power_schedule():
    """i.i.d. data, K = M = 2, eta(t) = 1.5 / (1 + t)^0.7: the ensemble mean of eg against
    the ODE from the same initial weights, at N = 300 (seeds 0-3: at most 2.6% apart at
    t >= 2; 0.7-2.2% at N = 500; the analytic eg, so the test set is small)."""
    cfg = small_config(
        data={"model": "iid", "N": 300},
        sgd={"lr": 1.5, "schedule": "power", "tau": 1.0, "power": 0.7},
        run={"mode": "both", "t_max": 6.0, "n_times": 12, "ensemble": 16, "test_size": 200,
             "same_init": True},
    )  # fmt: skip
    ds = simulate(cfg, progress=False)
    sim, ode = ds.eg.mean("member").values, ds.eg_ode.values
    late = ds.t.values >= 2
    np.testing.assert_allclose(sim[late], ode[late], rtol=0.05)
    const = simulate(cfg.replace(sgd={"schedule": "constant", "tau": 1.0, "power": 1.0},
                                 run={"mode": "ode"}), progress=False)  # fmt: skip
    assert np.max(np.abs(const.eg_ode.values[late] / ode[late] - 1)) > 0.1  # it matters


def test_grid_points_with_a_schedule_equal_their_single_runs(tmp_path):
    """A grid over lr and K (padded, several students a lane) with a table schedule, the
    simulation and the ODE: each point is its own single run."""
    path = tmp_path / "s.txt"
    path.write_text("0 1\n0.5 0.3\n1.5 0.6\n")
    base = small_config(sgd={"schedule": "file", "schedule_file": str(path)},
                        run={"mode": "both", "ensemble": 4})  # fmt: skip
    grid = simulate(base.replace(grid={"lr": [0.3, 0.9], "K": [1, 2], "N": [30, 40]}),
                    progress=False)  # fmt: skip
    assert "schedule_table" in grid.attrs  # the results keep the table
    # a point padded in K and N (t = step / N with each point's true N)
    lr, K, N = 0.9, 1, 30
    one = simulate(base.replace(sgd={"lr": lr}, student={"K": K}, data={"N": N}),
                   progress=False, times=grid.t.values)  # the grid's times  # fmt: skip
    point = grid.sel(lr=lr, K=K, N=N)
    np.testing.assert_allclose(point.eg.values, one.eg.values, rtol=2e-5, atol=1e-7)
    np.testing.assert_allclose(point.eg_ode.values, one.eg_ode.values, rtol=1e-10)
    # the same table in the config (sgd.schedule = "piecewise"): the same schedule, to the
    # bit, so the same programs and runs
    inline = {"schedule": "piecewise", "schedule_file": "", "schedule_times": [0, 0.5, 1.5],
              "schedule_values": [1, 0.3, 0.6]}  # fmt: skip
    a, b = config_schedule(base.replace(sgd=inline)), config_schedule(base)
    assert type(a) is type(b) is Piecewise
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype and np.array_equal(x, y)
    plain = simulate(base.replace(sgd={"schedule": "constant", "schedule_file": ""},
                                  run={"mode": "ode"}), progress=False)  # fmt: skip
    assert not np.allclose(plain.eg_ode.values, one.eg_ode.values)
