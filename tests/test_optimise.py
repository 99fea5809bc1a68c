"""hmmjax optimise: the schedule through the ODE, checked by ordinary runs (issue 20)."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import SMALL, small_config

from hmmjax.cli import main
from hmmjax.core.schedules import read_schedule
from hmmjax.experiments import driver
from hmmjax.experiments.optimise import optimise, schedule_path, schedule_settings
from hmmjax.io.results import read_dataset
from hmmjax.sweep.lanes import point_configs, record_times
from hmmjax.sweep.ode import ode_model

OPT = {
    "data": {"N": 60, "D": 30},
    "sgd": {"lr": 0.5},
    "run": {"t_max": 3.0, "n_times": 6, "ensemble": 3, "same_init": True},
    "ode": {"nodes": 5},
    "optimise": {"pieces": 2, "steps": 3, "rate": 0.2, "lr_min": 0.1, "lr_max": 3.0, "n_lr": 4},
}


def test_optimise_end_to_end(optimised, tmp_path):
    """One run of the command (in one test: xdist would make the fixture on each worker)."""
    _command_writes_results_schedule_and_figure(optimised, tmp_path)
    _checks_are_ordinary_runs_of_the_schedules(optimised)
    _ode_curves_are_those_of_the_ode_of_a_run(optimised)


@pytest.fixture(scope="module")
def optimised(tmp_path_factory):
    """``hmmjax optimise`` of a tiny config: the config and the results file's Dataset."""
    out = tmp_path_factory.mktemp("optimise") / "opt.nc"
    cfg = small_config(OPT, output={"out": str(out)})
    config = out.with_name("opt.toml")
    config.write_text(cfg.to_toml())
    assert main(["optimise", str(config), "-q"]) == 0
    return cfg, read_dataset(out)


def _checks_are_ordinary_runs_of_the_schedules(optimised):
    """eg_sim_const is ``hmmjax run`` at the best constant rate and eg_sim_opt the run
    with the written schedule file (the table of its [sgd] keys), to the bit; they start
    from the same weights."""
    cfg, ds = optimised
    lr = float(ds["lr_const"])
    assert lr in ds["lr_try"].values
    const = driver.simulate(cfg.replace(sgd={"lr": lr}), progress=False)
    np.testing.assert_array_equal(ds["eg_sim_const"].values, const["eg_sim"].values)
    path = schedule_path(Path(cfg.output.out))
    sched = read_schedule(path)
    # the table's factors multiply the best constant rate (the optimisation's start)
    run = cfg.replace(sgd={"lr": lr, "schedule": "file", "schedule_file": str(path)})
    opt = driver.simulate(run, progress=False)
    np.testing.assert_array_equal(ds["eg_sim_opt"].values, opt["eg_sim"].values)
    # the same initial weights: eg at t = 0 is the same in both
    np.testing.assert_array_equal(ds["eg_sim_opt"][:, 0], ds["eg_sim_const"][:, 0])
    # the schedule at its knots, and the optimised rates at the save times
    np.testing.assert_allclose(lr * sched.values, ds["knot_lr"].values, rtol=1e-15)
    assert not np.allclose(sched.values, 1.0)  # it was optimised
    sgd = json.loads(ds.attrs["schedule_sgd"])  # the keys the check ran with: the same table
    assert sgd["schedule"] == "piecewise" and sgd["lr"] == lr
    assert sgd["schedule_times"] == sched.times.tolist()
    assert sgd["schedule_values"] == sched.values.tolist()
    with jax.enable_x64(True):
        rates = lr * np.asarray(sched(ds["t"].values))
    np.testing.assert_allclose(rates, ds["lr_opt"].values, rtol=1e-12)


def _ode_curves_are_those_of_the_ode_of_a_run(optimised):
    """eg_ode_const is the ODE of ``run.mode = "ode"`` at the best constant rate; the
    objective starts at the best constant's and ends at eg_ode_opt's final value."""
    cfg, ds = optimised
    lr = float(ds["lr_const"])
    ode = driver.simulate(cfg.replace(sgd={"lr": lr}, run={"mode": "ode"}), progress=False)
    np.testing.assert_allclose(ds["eg_ode_const"].values, ode["eg_ode"].values, rtol=1e-12)
    assert float(ds["objective"][0]) == pytest.approx(float(ds["objective_const"].min()))
    best = float(ds["objective"].min())  # the fit is the best iterate
    assert best == pytest.approx(float(ds["eg_ode_opt"][-1]), rel=1e-12)
    assert best < float(ds["objective"][0])
    assert ds.attrs["final_members"] == 3 and np.isfinite(ds.attrs["final_z"])


def _command_writes_results_schedule_and_figure(optimised, tmp_path):
    cfg, ds = optimised
    out = Path(cfg.output.out)
    assert ds.attrs["experiment"] == "optimise"
    assert {"eg_sim_opt", "eg_sim_const", "lr_opt", "objective"} <= set(ds.data_vars)
    assert out.with_suffix(".png").stat().st_size > 0
    assert schedule_path(out).is_file()
    assert not list(out.parent.glob("*.ckpt.npz"))  # the checkpoints are gone once written
    assert main(["plot", str(out), "--out", str(tmp_path / "again.png")]) == 0


POWER = {"simulate": False, "form": "power", "objective": "average", "pieces": 8}


def test_a_grid_optimises_one_schedule_per_point():
    """A grid over D (ODE only, the power form, the time-averaged eg): one schedule per
    point in one call (``tests/test_optimal.py`` checks that a batch optimises each point
    as if alone; here the grid's wiring), each the power law of its own lr, tau and a."""
    grid = small_config(OPT, optimise=POWER, grid={"D": [20, 40]})
    ds = optimise(grid, progress=False)
    assert ds["lr_opt"].dims == ("D", "t") and ds["objective"].dims == ("D", "step")
    assert ds["power_a"].dims == ("D",) and "schedule_sgd" not in ds.attrs
    assert not np.allclose(ds["lr_opt"].sel(D=20), ds["lr_opt"].sel(D=40))
    t, tau, a = ds["t"].values, ds["power_tau"].values[:, None], ds["power_a"].values[:, None]
    law = ds["lr_opt"].values[:, :1] * (1 + t / tau) ** -a
    np.testing.assert_allclose(ds["lr_opt"].values, law, rtol=1e-12)
    best = ds["objective"].min("step")  # the fit is the best iterate, of the averaged eg
    np.testing.assert_allclose(best.values, ds["eg_ode_opt"].mean("t").values, rtol=1e-12)
    assert np.all(best.values <= ds["objective_const"].min("lr_try").values)


def test_the_ode_model_is_differentiable_in_the_schedule():
    """jax.grad through the model of a config (HMM, 5 nodes) against a central
    difference, with respect to the rate at one knot."""
    from hmmjax.core.schedules import Piecewise

    cfg = small_config(OPT)
    cfgs = point_configs(cfg)
    model = ode_model(cfgs, {}, record_times(cfgs))
    knots = np.linspace(0, 3.0, 3)

    def f(values):
        s = Piecewise(knots[None], values[None])
        return model.eg(np.array([0.5]), s, batched=True)[0, -1]

    with jax.enable_x64(True):
        x = np.array([1.0, 0.8, 0.6])
        g = jax.grad(f)(x)
        h = 1e-5
        e = np.array([0.0, 1.0, 0.0])
        fd = (f(x + h * e) - f(x - h * e)) / (2 * h)
    assert float(g[1]) == pytest.approx(float(fd), rel=1e-6)


@pytest.mark.parametrize(
    ("sections", "match"),
    [
        ({"optimise": {"lr_min": 2.0, "lr_max": 1.0}}, "optimise.lr_max = 1.0"),
        ({"optimise": {"form": "power", "pieces": 3}}, "optimise.pieces = 3"),
        ({"optimise": {"n_lr": 1}}, "optimise.n_lr = 1"),
        ({"optimise": {"objective": "median"}}, "optimise.objective"),
        ({"optimise": {"steps": 0}}, "optimise.steps = 0"),
        ({"sgd": {"schedule": "power"}}, 'sgd.schedule = "power"'),
        ({"grid": {"lr": [0.1, 0.2]}, "optimise": {"simulate": False}}, "grid.lr"),
        ({"grid": {"D": [10, 20]}}, "optimise.simulate = true"),
        ({"student": {"g": "relu"}}, "hmmjax optimise needs the ODE: student.g"),
        ({"finite": {"P": 10}, "sgd": {"batch": 1}}, "finite.P = 10"),
        ({"run": {"ensemble": 1}}, "run.ensemble = 1"),
    ],
)
def test_bad_values_get_one_line_before_any_work(tmp_path, capsys, sections, match):
    d = {}
    for layer in (SMALL, OPT, sections, {"output": {"out": str(tmp_path / "o.nc")}}):
        for name, values in layer.items():
            d[name] = values if name == "grid" else {**d.get(name, {}), **values}
    config = tmp_path / "bad.toml"
    lines = [f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
             for name, values in d.items()]  # fmt: skip
    config.write_text("\n".join(lines))
    assert main(["optimise", str(config), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hmmjax: error:") and "\n" not in err and match in err, err
    assert not list(tmp_path.glob("o.*"))


@pytest.mark.parametrize("form", ["piecewise", "power"])
def test_the_sgd_keys_of_a_fit_give_its_schedule(tmp_path, form):
    """``schedule_settings``: the [sgd] keys of a fit make a valid config whose schedule is
    the fit's (and the piecewise table file is the same table)."""
    from hmmjax.core.schedules import Piecewise, Power, read_schedule
    from hmmjax.ode.optimal import ScheduleFit
    from hmmjax.sweep.lanes import config_schedule

    s = Piecewise([0.0, 1.5, 3.0], [1.0, 0.7, 0.2]) if form == "piecewise" else Power(2.5, 0.8)
    fit = ScheduleFit(np.array(0.4), s, np.array(0.1), np.zeros(3), np.zeros(2), 1, form)
    path = tmp_path / "s.txt"
    keys = schedule_settings(fit, path, "c.toml")
    made = config_schedule(small_config(OPT, sgd=keys))
    t = np.linspace(0, 4, 9)
    with jax.enable_x64(True):
        np.testing.assert_array_equal(np.asarray(made(t)), np.asarray(s(t)))
        if form == "piecewise":
            np.testing.assert_array_equal(np.asarray(read_schedule(path)(t)), np.asarray(s(t)))
    assert keys["lr"] == 0.4 and path.exists() == (form == "piecewise")
