"""Time-dependent learning rates: eta(t) = lr * s(t), with t = steps / N (docs/theory.md 1).

A schedule is the factor s(t) (an equinox module, so that its numbers are arrays: it can
be vmapped over, stacked over the lanes of a grid and differentiated, e.g. by jax.grad of
an ODE's eg with respect to the values of a ``Piecewise``). The learning rate ``lr`` of a
run multiplies it, so a grid over lr scales a schedule. None stands for the constant
schedule s = 1 everywhere in hmmjax: the code of a run without a schedule is unchanged,
bit for bit.

- ``Power(tau, power)``: s(t) = (1 + t / tau)^(-power); power = 1 is the 1/t annealing
  of online SGD at late times.
- ``Piecewise(times, values)``: values at the times (increasing, the first 0), linear in
  between, constant after the last time.

``read_schedule(path)`` reads a table (t, s) from a text file into a ``Piecewise``.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from hmmjax.core.tables import check_table, read_table

__all__ = [
    "POWER_MAX",
    "SCHEDULES",
    "AbstractSchedule",
    "Piecewise",
    "Power",
    "cast_schedule",
    "learning_rate",
    "make_schedule",
    "read_schedule",
]

POWER_MAX = 100.0
"""The largest exponent of a ``Power`` schedule."""

SCHEDULES: tuple[str, ...] = ("constant", "power", "piecewise", "file")
"""The schedules a config names (``sgd.schedule``); ``Piecewise`` from Python as well."""


class AbstractSchedule(eqx.Module):
    """The factor s(t) of the learning rate at time t = steps / N: eta(t) = lr * s(t)."""

    @abc.abstractmethod
    def __call__(self, t: Float[ArrayLike, "*n"]) -> Float[Array, "*n"]:
        """s(t), elementwise."""


class Power(AbstractSchedule):
    """s(t) = (1 + t / tau)^(-power)."""

    tau: Float[Array, ""]
    power: Float[Array, ""]

    def __init__(self, tau: ArrayLike, power: ArrayLike):
        try:  # checked when concrete (they may be traced: jax.grad over a schedule)
            t, p = np.asarray(tau, np.float64), np.asarray(power, np.float64)
            if not (np.all((t >= 1e-30) & (t <= 1e30)) and np.all((p >= 0) & (p <= POWER_MAX))):
                raise ValueError(
                    f"power schedule: need tau in [1e-30, 1e30], power in [0, {POWER_MAX:g}]; "
                    f"got {t}, {p}"
                )
        except jax.errors.TracerArrayConversionError:
            pass
        self.tau, self.power = _float64(tau), _float64(power)

    def __call__(self, t):
        t = jnp.asarray(t)
        return (1 + t / self.tau.astype(t.dtype)) ** (-self.power.astype(t.dtype))


class Piecewise(AbstractSchedule):
    """s(t) linear between the ``values`` at the ``times`` (increasing, the first 0),
    ``values[-1]`` after the last time. A stack of schedules (one per point of a batch,
    to vmap over) has the batch axes in front of both arrays."""

    times: Float[Array, " n"]
    values: Float[Array, " n"]

    def __init__(self, times: ArrayLike, values: ArrayLike):
        try:  # checked when concrete (values may be traced: jax.grad over a schedule)
            t, v = np.asarray(times, np.float64), np.asarray(values, np.float64)
            if t.ndim < 1 or v.shape != t.shape:
                raise ValueError("schedule: times and factors must be arrays of one shape")
            for row, col in zip(t.reshape(-1, t.shape[-1]), v.reshape(-1, t.shape[-1]),
                                strict=True):  # fmt: skip
                check_table(row.tolist(), col.tolist())
        except jax.errors.TracerArrayConversionError:
            pass
        self.times, self.values = _float64(times), _float64(values)

    def __call__(self, t):
        t = jnp.asarray(t)
        return jnp.interp(t, self.times.astype(t.dtype), self.values.astype(t.dtype))


def _float64(x: ArrayLike) -> Array | np.ndarray:
    """A concrete number or array as a float64 NumPy array (so that a schedule built
    without x64 keeps its digits until the run casts it to its own precision); a traced
    one as it is."""
    return x if isinstance(x, jax.Array) else np.asarray(x, np.float64)  # tracers: Arrays too


def cast_schedule(schedule: AbstractSchedule | None, dtype: Any) -> AbstractSchedule | None:
    """The schedule with its arrays in ``dtype`` (a run's or an ODE's float type); None
    stays None."""
    return jax.tree.map(lambda a: jnp.asarray(a, dtype), schedule)


def learning_rate(
    lr: Float[ArrayLike, ""], schedule: AbstractSchedule | None, t: Float[ArrayLike, "*n"]
) -> Float[Array, "*n"]:
    """eta(t) = lr * s(t); ``lr`` itself (the same array, no multiplication) without a
    schedule, so that constant-rate runs are unchanged to the last bit."""
    return lr if schedule is None else lr * schedule(t)


def read_schedule(path: str | Path) -> Piecewise:
    """The ``Piecewise`` schedule of a table file (``read_table``)."""
    return Piecewise(*read_table(path))


def make_schedule(
    kind: str,
    tau: float = 1.0,
    power: float = 1.0,
    path: str | Path = "",
    times: tuple[float, ...] = (),
    values: tuple[float, ...] = (),
) -> AbstractSchedule | None:
    """The schedule a config names: None for "constant", ``Power(tau, power)``,
    ``Piecewise(times, values)`` for "piecewise", or the table of the file ``path`` for
    "file"."""
    if kind == "constant":
        return None
    if kind == "power":
        return Power(float(tau), float(power))
    if kind == "piecewise":
        return Piecewise(times, values)
    if kind == "file":
        return read_schedule(path)
    raise ValueError(f"schedule = {kind!r}: allowed: {', '.join(SCHEDULES)}")
