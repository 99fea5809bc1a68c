"""Optimal learning-rate schedules through the ODE (``hmmjax.ode.optimal``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hmmjax.core.schedules import POWER_MAX, Power
from hmmjax.ode import solve_iid
from hmmjax.ode.optimal import best_constant, optimise_schedule, reduce_eg

Q0 = np.array([[1.0, 0.1], [0.1, 0.8]])
R0 = np.array([[0.1, 0.0], [0.0, 0.05]])
T0, V0, A0 = np.eye(2), np.ones(2), np.ones(2)
T_MAX = 10.0
TS = np.linspace(0.5, T_MAX, 20)


def eg_of(lr, schedule):
    """The i.i.d. ODE, K = M = 2, erf, label noise 0.3 (so that annealing pays)."""
    return solve_iid(Q0, R0, V0, T0, A0, TS, lr=lr, schedule=schedule, solver="euler",
                     dt=0.02, noise=0.3).eg  # fmt: skip


@pytest.fixture(scope="module")
def fits():  # called without x64: the functions enable it themselves
    lr, values = best_constant(eg_of, np.geomspace(0.05, 40.0, 16))
    fit = optimise_schedule(eg_of, T_MAX, lr0=lr, pieces=5, steps=40, rate=0.1)
    return lr, values, fit


def test_the_optimised_schedule_beats_the_best_constant_rate(fits):
    lr, values, fit = fits
    assert fit.objective[0] == pytest.approx(np.min(values), rel=1e-9)  # starts from it
    assert fit.value == np.min(fit.objective) and fit.value < 0.97 * np.min(values)
    assert np.all(np.diff(fit.objective[:5]) < 0)  # descends
    knots = np.linspace(0, T_MAX, 6)
    np.testing.assert_array_equal(fit.schedule.times, knots)
    assert fit.rates(knots).shape == (6,) and np.all(fit.rates(knots) > 0)
    assert fit.lr == lr and fit.evaluations == 41 and fit.form == "piecewise"
    # the fit's schedule, put back into the ODE, gives its objective
    with jax.enable_x64(True):
        curve = np.asarray(eg_of(fit.lr, fit.schedule))
    np.testing.assert_allclose(curve, fit.eg, rtol=1e-12)  # the fit's own curve
    assert float(reduce_eg(curve, "final")) == pytest.approx(fit.value, rel=1e-9)


def test_the_power_form_anneals_and_beats_the_best_constant_rate(fits):
    lr, values, _ = fits
    fit = optimise_schedule(eg_of, T_MAX, lr0=lr, form="power", steps=40, rate=0.1)
    assert fit.value < 0.99 * np.min(values)
    assert isinstance(fit.schedule, Power) and 0 < float(fit.schedule.power) <= POWER_MAX
    rates = fit.rates(np.array([0.0, T_MAX]))
    assert rates[1] < rates[0]  # it anneals
    with jax.enable_x64(True):
        curve = np.asarray(eg_of(fit.lr, fit.schedule))
    np.testing.assert_allclose(curve, fit.eg, rtol=1e-12)  # the fit's own curve
    assert float(reduce_eg(curve, "final")) == pytest.approx(fit.value, rel=1e-9)


def test_the_power_form_keeps_its_exponent_in_bounds_and_the_best_iterate():
    """A model that wants a growing rate (a < 0) and one that diverges beyond a rate: the
    exponent stays at 0 (projected), and an overshooting or diverging iterate is not the
    fit (the fit's value is the smallest of the history, and finite)."""

    def grows(lr, schedule):  # smallest for eta(0) = 1, eta(t_max) = 2: wants a < 0
        s = jnp.ones(2) if schedule is None else schedule(jnp.array([0.0, T_MAX]))
        eta = lr * s
        return ((eta[..., 0] - 1.0) ** 2 + (eta[..., 1] - 2.0) ** 2) * jnp.ones(2)

    fit = optimise_schedule(grows, T_MAX, lr0=1.0, form="power", steps=40, rate=0.1)
    assert float(fit.schedule.power) == 0.0  # projected: the bound, not below it
    assert fit.value == np.min(fit.objective) < fit.objective[0]

    def cliff(lr, schedule):  # better as eta(0) grows, NaN beyond 1.5
        eta = lr * (1.0 if schedule is None else schedule(jnp.zeros(1))[..., 0])
        return jnp.where(eta > 1.5, jnp.nan, 2.0 - eta) * jnp.ones(2)

    fit = optimise_schedule(cliff, T_MAX, lr0=1.0, pieces=1, steps=20, rate=0.3)
    assert np.any(~np.isfinite(fit.objective))  # it stepped over the cliff ...
    assert np.isfinite(fit.value) and fit.value == np.nanmin(fit.objective)  # ... not kept
    assert fit.rates(np.zeros(1))[0] <= 1.5


def test_a_batch_optimises_each_point_as_if_alone():
    """Two points in one batched optimisation (a toy model of eg, different per point): the
    second point gets the schedule, objectives and curve of its optimisation alone, from
    the same start; the best constant rates and their curves are those of each alone."""
    targets = np.array([0.5, 2.0])

    def toy(lr, s, target):  # eg(t) = (eta(t) - target / (1 + t))^2 + 0.1
        eta = lr * (jnp.ones_like(TS) if s is None else s(TS))
        return (eta - target / (1 + TS)) ** 2 + 0.1

    def batch(lr, schedule):
        axes = (0, None if schedule is None else 0, 0)
        return jax.vmap(toy, in_axes=axes)(jnp.broadcast_to(lr, (2,)), schedule, targets)

    lrs = np.geomspace(0.01, 1.0, 8)
    best, values, curves = best_constant(batch, lrs, "average", curves=True)
    assert values.shape == (8, 2) and best.shape == (2,) and curves.shape == (2, len(TS))
    alone = lambda lr, s: toy(lr, s, targets[1])  # noqa: E731
    lr1, values1, curve1 = best_constant(alone, lrs, "average", curves=True)
    assert lr1 == best[1] and np.array_equal(values[:, 1], values1)
    np.testing.assert_allclose(curves[1], curve1, rtol=1e-15)
    options = dict(pieces=3, steps=20, rate=0.1, objective="average")
    both = optimise_schedule(batch, T_MAX, lr0=best, **options)
    assert both.objective.shape == (21, 2) and both.eg.shape == (2, len(TS))
    one = optimise_schedule(alone, T_MAX, lr0=best[1], **options)
    np.testing.assert_allclose(both.objective[:, 1], one.objective, rtol=1e-12)
    assert both.value[1] == pytest.approx(float(one.value), rel=1e-12)
    np.testing.assert_allclose(both.at(1).schedule.values, one.schedule.values, rtol=1e-12)
    np.testing.assert_allclose(both.at(1).eg, one.eg, rtol=1e-12)
    np.testing.assert_allclose(both.rates(TS)[1], one.rates(TS), rtol=1e-12)
    assert both.value[1] < 0.9 * np.min(values[:, 1])  # it did optimise
    assert not np.allclose(both.rates(TS)[0], both.rates(TS)[1])  # two different fits


def test_the_best_constant_rate_skips_diverging_ones():
    """A rate whose eg is not finite counts as +inf (a model that diverges above 2)."""

    def model(lr, schedule):
        return jnp.where(lr > 2.0, jnp.nan, (lr - 1.5) ** 2 + 0.1) * jnp.ones(3)

    lr, values = best_constant(model, np.array([0.5, 1.0, 1.4, 3.0, 4.0]))
    assert lr == 1.4 and np.all(np.isinf(values[3:])) and np.all(np.isfinite(values[:3]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(objective="median"), "objective"),
        (dict(pieces=0), "pieces"),
        (dict(rate=-1.0), "rate > 0"),
        (dict(roughness=-1.0), "roughness"),
        (dict(form="power", roughness=1.0), "piecewise form only"),
        (dict(form="cosine"), "form"),
        (dict(lr0=np.array([0.3, -1.0])), "lr0"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optimise_schedule(eg_of, T_MAX, **{"lr0": 0.3, **kwargs})


@pytest.mark.slow  # 30 s: 300 optimisation steps through 2000 Euler steps
def test_the_optimal_schedule_of_a_linear_student_decays_like_one_over_t():
    """K = M = 1, linear g, i.i.d. inputs, label noise 0.5: the optimal schedule for eg
    at t = 100 anneals like 1/t at late times (the known asymptotics of online SGD on a
    linear problem with noise): the slope of log eta against log t over t in [30, 100]
    is -1 to within 0.15, and it beats the best constant rate by far."""
    Q, R, T, V = np.array([[1.0]]), np.array([[0.0]]), np.eye(1), np.ones(1)

    def linear(lr, schedule):
        return solve_iid(Q, R, V, T, V, np.array([100.0]), lr=lr, schedule=schedule,
                         g="linear", solver="euler", dt=0.05, noise=0.5).eg  # fmt: skip

    with jax.enable_x64(True):
        lr, values = best_constant(linear, np.geomspace(0.01, 1.0, 30))
        fit = optimise_schedule(linear, 100.0, lr0=lr, pieces=10, steps=300, rate=0.1)
    times = fit.schedule.times
    late = times >= 30
    slope = np.polyfit(np.log(times[late]), np.log(fit.rates(times)[late]), 1)[0]
    assert abs(slope + 1) < 0.15, slope
    assert fit.value < 0.6 * np.min(values)
