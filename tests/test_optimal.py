"""Optimal learning-rate schedules through the ODE (``hmmjax.ode.optimal``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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
def fits():
    with jax.enable_x64(True):
        lr, values = best_constant(eg_of, np.geomspace(0.05, 40.0, 16))
        fit = optimise_schedule(eg_of, T_MAX, lr0=lr, pieces=5, steps=40, rate=0.1)
    return lr, values, fit


def test_the_optimised_schedule_beats_the_best_constant_rate(fits):
    lr, values, fit = fits
    assert fit.objective[0] == pytest.approx(np.min(values), rel=1e-9)  # starts from it
    assert fit.objective[-1] < 0.97 * np.min(values)
    assert np.all(np.diff(fit.objective[:5]) < 0)  # descends
    assert fit.rates.shape == (6,) and np.all(fit.rates > 0)
    # the fit's schedule, put back into the ODE, gives its objective
    with jax.enable_x64(True):
        again = float(reduce_eg(eg_of(1.0, fit.schedule), "final"))
    assert again == pytest.approx(fit.objective[-1], rel=1e-9)


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
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optimise_schedule(eg_of, T_MAX, **{"lr0": 0.3, **kwargs})
