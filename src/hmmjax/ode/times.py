"""Save times of the ODE solvers: log- or evenly spaced times, and for the Euler solver
their snapping onto whole steps (``on_grid``), so that every saved value is the state after
a whole number of steps.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["save_times", "on_grid"]


def save_times(
    t_max: float, n: int = 200, spacing: str = "log", solver: str = "euler", dt: float = 0.01
) -> np.ndarray:
    """0 and ``n`` times up to t_max, log-spaced from t = dt (or evenly spaced); the last
    is t_max itself, whatever n (one time: t_max).

    For Euler they are multiples of dt (duplicates dropped), so every saved value is the
    state after a whole number of steps; the last, t_max, is served by the state after
    round(t_max / dt) steps (``on_grid``), t_max itself when t_max is a whole number of
    steps. Euler needs dt <= t_max (else it would take no step: a ValueError).
    """
    if solver == "euler" and not dt <= t_max:
        raise ValueError(
            f"dt = {dt}: the Euler step is longer than t_max = {t_max}; expected dt <= t_max"
        )
    if spacing == "log":
        start = min(dt, t_max)
        t = np.logspace(math.log10(start), math.log10(t_max), n) if start < t_max else [t_max]
    elif spacing == "linear":
        t = np.linspace(t_max / n, t_max, n)
    else:
        raise ValueError(f"spacing={spacing!r} is not allowed; choose log or linear")
    # np.logspace ends at 10^log10(t_max), which can be an ulp off t_max, and with n = 1
    # it is its start alone
    t[-1] = t_max
    t = np.unique(np.concatenate([[0.0], t]))
    if solver == "euler":  # whole steps; the last (that of t_max) saved as t_max
        steps = np.unique(np.rint(t / dt))
        t = np.append(steps[:-1] * dt, t_max)
    return t


def on_grid(times: np.ndarray, solver: str, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Times the solver saves at, and for each requested time the index of its save.

    Euler saves whole steps: a requested time t is served by the state after
    round(t / dt) steps.
    """
    if solver != "euler":
        return times, np.arange(len(times))
    steps, index = np.unique(np.rint(np.asarray(times) / dt), return_inverse=True)
    return steps * dt, index
