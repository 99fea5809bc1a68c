"""Optimal learning-rate schedules by gradient descent through the ODEs (issue 20).

The ODEs are JAX programs, differentiable in the learning rate's schedule
(``hmmjax.core.schedules``). ``optimise_schedule`` minimises an objective of the ODE's eg
(eg at the last save time, or its mean over the save times) over one of two forms of the
rate eta(t), with Adam (optax), starting from a constant rate lr0:

- ``"piecewise"``: eta linear between its values at ``pieces + 1`` equally spaced knots
  of [0, t_max], eta_j = lr0 exp(theta_j) (positive whatever theta), optionally with a
  roughness penalty ``roughness * mean_j (theta_{j+1} - theta_j)^2``;
- ``"power"``: eta(t) = lr0 exp(theta_0) (1 + t / (t_max exp(theta_1)))^(-a), a = theta_2
  kept in [0, 100] (projected after each step).

``best_constant`` evaluates the objective for a grid of constant rates in one vmapped call.

``eg_of(lr, schedule)`` is the model: eg at the save times, shape ``batch + (n,)``, for
the rate lr * s(t) (for example ``lambda lr, s: solve_iid(..., lr=lr, schedule=s).eg``).
With a batch (a grid of ODEs, ``hmmjax.sweep.ode.OdeModel``), ``lr0`` has the batch's
shape, every point gets its own schedule (the schedule's arrays carry the batch axes in
front) and all are optimised in one compiled call: the loss is the sum of the points'
objectives, and Adam acts elementwise, so each point follows its own optimisation as if
alone. The fit is the iterate with the smallest objective (per point: an Adam step that
overshoots is not kept; a step where the objective or its gradient is not finite leaves
that point where it is). Gradients go through the solver by diffrax's default adjoint,
recursive checkpointing (docs/theory.md 8: a number of stored states that grows like the
logarithm of the Euler steps, not like the steps). Both
functions run in float64 (``jax.enable_x64``), as the ODEs do, whatever the caller's
precision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from hmmjax.config.schema import OBJECTIVES, SCHEDULE_FORMS
from hmmjax.core.schedules import POWER_MAX, AbstractSchedule, Piecewise, Power

__all__ = [
    "FORMS",
    "OBJECTIVES",
    "ScheduleFit",
    "best_constant",
    "optimise_schedule",
    "reduce_eg",
]

FORMS = SCHEDULE_FORMS
"""The forms of an optimised schedule (``optimise_schedule``), as ``optimise.form``;
``OBJECTIVES``: final (eg at the last save time), average (its mean over the save times)."""


class ScheduleFit(NamedTuple):
    """An optimised schedule, eta(t) = lr * schedule(t), for every point of the batch.

    ``lr`` (batch shape) and ``schedule`` (its arrays with the batch axes in front) are
    what a run takes (``sgd.lr`` and the schedule); ``value`` (batch shape): their
    objective, the smallest of ``objective`` (steps + 1, *batch), the objective of the
    iterates before each optimisation step and after the last one; ``eg``: the model's eg
    with the schedule (``batch + (n,)``); ``evaluations``: the number of gradient
    evaluations (one per step and one for the last iterate); ``form``: one of ``FORMS``."""

    lr: np.ndarray
    schedule: AbstractSchedule
    value: np.ndarray
    eg: np.ndarray
    objective: np.ndarray
    evaluations: int
    form: str

    def rates(self, t: Any) -> np.ndarray:
        """eta at the times ``t`` (1-d), shape ``batch + t.shape``."""
        t = np.asarray(t, np.float64)
        lr = np.asarray(self.lr)
        one = lambda s: s(t)  # noqa: E731
        for _ in range(lr.ndim):
            one = jax.vmap(one)
        with jax.enable_x64(True):
            factor = np.asarray(one(self.schedule))
        return lr[..., None] * factor

    def at(self, index: tuple[int, ...] | int) -> ScheduleFit:
        """The fit of one point of the batch (``index`` into its axes)."""
        pick = lambda a: np.asarray(a)[index]  # noqa: E731
        return self._replace(
            lr=pick(self.lr),
            schedule=jax.tree.map(pick, self.schedule),
            value=pick(self.value),
            eg=pick(self.eg),
            objective=np.asarray(self.objective)[(slice(None), *np.atleast_1d(index))],
        )


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
    curves: bool = False,
) -> tuple[Any, ...]:
    """The constant rate of ``lrs`` (1-d) with the smallest objective, per point of the
    batch (a float without one), and the objective of each, shape ``(len(lrs), *batch)``
    (one vmapped, compiled call; a diverging rate counts as +inf); with ``curves``, also
    eg at the best rate (``batch + (n,)``), from the same call."""
    lrs = np.asarray(lrs, np.float64)

    def one(lr):
        eg = eg_of(lr, None)
        return reduce_eg(eg, objective), eg

    with jax.enable_x64(True):  # the ODEs run in float64 (hmmjax.ode.solve)
        values, egs = (np.asarray(a) for a in jax.jit(jax.vmap(one))(jnp.asarray(lrs)))
    values = np.where(np.isfinite(values), values, np.inf)
    i = np.argmin(values, axis=0)
    best = lrs[i]
    best = float(best) if best.ndim == 0 else best
    if not curves:
        return best, values
    eg = np.take_along_axis(egs, i[None, ..., None], axis=0)[0]
    return best, values, eg


def optimise_schedule(
    eg_of: Callable[[Any, AbstractSchedule | None], jax.Array],
    t_max: float,
    *,
    lr0: Any,
    form: str = "piecewise",
    pieces: int = 8,
    steps: int = 200,
    rate: float = 0.05,
    roughness: float = 0.0,
    objective: str = "final",
    progress: Callable[[int, np.ndarray], None] | None = None,
) -> ScheduleFit:
    """Minimise the objective over schedules of ``form`` (``FORMS``) with ``steps`` Adam
    steps of learning rate ``rate`` on theta, from the constant rate ``lr0`` (a number, or
    an array of the batch's shape). ``pieces``: intervals of the piecewise form;
    ``roughness``: its penalty's weight. ``progress(step, objective)`` is called after
    every step."""
    _check_options(form, pieces, steps, t_max, rate, roughness, objective)
    lr0 = np.asarray(lr0, np.float64)
    if not (np.all(np.isfinite(lr0)) and np.all(lr0 > 0)):
        raise ValueError(f"lr0 = {lr0}: need finite rates > 0")
    batch = lr0.shape
    times = np.linspace(0.0, float(t_max), pieces + 1)

    def make(theta):
        """(lr, schedule) of the parameters theta (batch + (n,))."""
        if form == "piecewise":
            return lr0, Piecewise(np.broadcast_to(times, theta.shape), jnp.exp(theta))
        lr = lr0 * jnp.exp(theta[..., 0])
        return lr, Power(t_max * jnp.exp(theta[..., 1]), theta[..., 2])

    def loss(theta):  # the points' objectives are independent: their sum optimises each
        lr, schedule = make(theta)
        eg = eg_of(lr, schedule)
        value = reduce_eg(eg, objective)
        if form == "piecewise":
            value = value + roughness * jnp.mean(jnp.diff(theta, axis=-1) ** 2, axis=-1)
        return jnp.sum(value), (value, eg)

    def project(theta):  # the power form's exponent in [0, POWER_MAX]
        if form == "piecewise":
            return theta
        return theta.at[..., 2].set(jnp.clip(theta[..., 2], 0.0, POWER_MAX))

    opt = optax.adam(rate)

    @jax.jit
    def step(theta, state):
        (_, (value, eg)), grad = jax.value_and_grad(loss, has_aux=True)(theta)
        ok = jnp.isfinite(value)[..., None] & jnp.all(jnp.isfinite(grad), -1, keepdims=True)
        updates, state = opt.update(jnp.where(ok, grad, 0.0), state)
        updates = jnp.where(ok, updates, 0.0)  # a point without a gradient stays put
        return project(optax.apply_updates(theta, updates)), state, value, eg

    history = []
    n = pieces + 1 if form == "piecewise" else 3
    with jax.enable_x64(True):  # the ODEs run in float64 (hmmjax.ode.solve)
        theta = jnp.zeros((*batch, n), jnp.float64)
        state = opt.init(theta)
        best = None  # (theta, value, eg) of the iterate with the smallest objective, per point
        for i in range(steps + 1):  # the last call only evaluates the last iterate
            new, state, value, eg = step(theta, state)
            now = (np.asarray(theta), np.asarray(value), np.asarray(eg))
            history.append(now[1])
            if best is None:  # none yet: a diverged (NaN) iterate is never kept
                best = (now[0], np.full(now[1].shape, np.inf), np.full(now[2].shape, np.nan))
            better = now[1] < best[1]
            best = tuple(
                np.where(better.reshape(better.shape + (1,) * (a.ndim - better.ndim)), a, b)
                for a, b in zip(now, best, strict=True))  # fmt: skip
            if i < steps:
                theta = new
                if progress is not None:
                    progress(i, history[-1])
        theta, value, eg = best
        if not np.all(np.isfinite(value)):
            raise ValueError(
                "the objective is not finite from the start at some points: lower the "
                "starting rate lr0"
            )
        lr, schedule = make(theta)
        lr = np.asarray(lr, np.float64)
        schedule = jax.tree.map(lambda a: np.asarray(a, np.float64), schedule)
    return ScheduleFit(lr, schedule, value, eg, np.stack(history), steps + 1, form)


def _check_options(form, pieces, steps, t_max, rate, roughness, objective) -> None:
    if form not in FORMS:
        raise ValueError(f"form = {form!r}: allowed: {', '.join(FORMS)}")
    if pieces < 1 or steps < 1:
        raise ValueError(f"pieces = {pieces}, steps = {steps}: need both >= 1")
    if not (t_max > 0 and rate > 0 and roughness >= 0):
        raise ValueError("need t_max > 0, rate > 0 and roughness >= 0")
    if roughness > 0 and form != "piecewise":
        raise ValueError(f"roughness = {roughness}: a penalty of the piecewise form only")
    reduce_eg(jnp.zeros(1), objective)  # checks the name
