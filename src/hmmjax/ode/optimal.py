"""Optimal learning-rate schedules by gradient descent through the ODEs (issue 20).

The ODEs are JAX programs, differentiable in the learning rate's schedule
(``hmmjax.core.schedules``): ``optimise_schedule`` minimises an objective of the ODE's
eg (eg at the last save time, or its mean over the save times) over a piecewise-linear
schedule eta(t) on ``pieces`` intervals of [0, t_max], with optax. The rates are
parametrised as eta_j = lr0 exp(theta_j) (positive whatever theta), optionally with a
roughness penalty on successive theta_j. ``best_constant`` evaluates the same objective
for a grid of constant rates in one vmapped call.

``eg_of(lr, schedule)`` is the model: eg at the save times for the rate lr * s(t) (for
example ``lambda lr, s: solve_iid(..., lr=lr, schedule=s).eg``). Both functions run in
float64 (``jax.enable_x64``), as the ODEs do, whatever the caller's precision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from hmmjax.core.schedules import AbstractSchedule, Piecewise

__all__ = ["OBJECTIVES", "ScheduleFit", "best_constant", "optimise_schedule", "reduce_eg"]

OBJECTIVES: tuple[str, ...] = ("final", "average")
"""final: eg at the last save time; average: the mean of eg over the save times."""


class ScheduleFit(NamedTuple):
    """An optimised schedule: the rates ``rates`` at the knots ``times`` (linear in
    between), the objective before each optimisation step and after the last one, and the
    number of gradient evaluations."""

    times: np.ndarray
    rates: np.ndarray
    objective: np.ndarray
    evaluations: int

    @property
    def schedule(self) -> Piecewise:
        """The schedule, as the full rate (use it with lr = 1)."""
        return Piecewise(self.times, self.rates)


def reduce_eg(eg: jax.Array, objective: str) -> jax.Array:
    """The objective of a learning curve eg (save times last)."""
    if objective == "final":
        return eg[..., -1]
    if objective == "average":
        return jnp.mean(eg, axis=-1)
    raise ValueError(f"objective = {objective!r}: allowed: {', '.join(OBJECTIVES)}")


def best_constant(
    eg_of: Callable[[Any, AbstractSchedule | None], jax.Array],
    lrs: Any,
    objective: str = "final",
) -> tuple[float, np.ndarray]:
    """The constant rate of ``lrs`` with the smallest objective, and the objective of each
    (one vmapped, compiled call; a diverging rate counts as +inf)."""
    one = jax.vmap(lambda lr: reduce_eg(eg_of(lr, None), objective))
    with jax.enable_x64(True):  # the ODEs run in float64 (hmmjax.ode.solve)
        values = np.asarray(jax.jit(one)(jnp.asarray(lrs, jnp.float64)))
    values = np.where(np.isfinite(values), values, np.inf)
    return float(np.asarray(lrs)[int(np.argmin(values))]), values


def optimise_schedule(
    eg_of: Callable[[Any, AbstractSchedule | None], jax.Array],
    t_max: float,
    *,
    lr0: float,
    pieces: int = 8,
    steps: int = 200,
    rate: float = 0.05,
    roughness: float = 0.0,
    objective: str = "final",
    progress: Callable[[int, float], None] | None = None,
) -> ScheduleFit:
    """Minimise the objective over piecewise-linear schedules on ``pieces`` equal
    intervals of [0, t_max], starting from the constant rate ``lr0``, with ``steps``
    Adam steps of learning rate ``rate`` on theta (eta_j = lr0 exp(theta_j)).
    ``roughness``: weight of mean_j (theta_{j+1} - theta_j)^2 added to the objective.
    ``progress(step, objective)`` is called after every step."""
    if pieces < 1 or steps < 1:
        raise ValueError(f"pieces = {pieces}, steps = {steps}: need both >= 1")
    if not (t_max > 0 and lr0 > 0 and rate > 0 and roughness >= 0):
        raise ValueError("need t_max > 0, lr0 > 0, rate > 0 and roughness >= 0")
    reduce_eg(jnp.zeros(1), objective)  # checks the name
    times = np.linspace(0.0, float(t_max), pieces + 1)

    def loss(theta):
        eg = eg_of(1.0, Piecewise(times, lr0 * jnp.exp(theta)))
        return reduce_eg(eg, objective) + roughness * jnp.mean(jnp.diff(theta) ** 2)

    opt = optax.adam(rate)

    @jax.jit
    def step(theta, state):
        value, grad = jax.value_and_grad(loss)(theta)
        updates, state = opt.update(grad, state)
        return optax.apply_updates(theta, updates), state, value

    history = []
    with jax.enable_x64(True):  # the ODEs run in float64 (hmmjax.ode.solve)
        theta = jnp.zeros(pieces + 1, jnp.float64)
        state = opt.init(theta)
        for i in range(steps):
            theta, state, value = step(theta, state)
            history.append(float(value))
            if progress is not None:
                progress(i, history[-1])
        history.append(float(jax.jit(loss)(theta)))
    return ScheduleFit(times, lr0 * np.exp(np.asarray(theta)), np.asarray(history), steps)
