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
    """0 and ``n`` times up to t_max, log-spaced from t = dt (or evenly spaced).

    For Euler they are multiples of dt (duplicates dropped), so every saved value is the
    state after a whole number of steps.
    """
    if spacing == "log":
        t = np.logspace(math.log10(min(dt, t_max)), math.log10(t_max), n)
    elif spacing == "linear":
        t = np.linspace(t_max / n, t_max, n)
    else:
        raise ValueError(f"spacing={spacing!r} is not allowed; choose log or linear")
    t = np.concatenate([[0.0], t])
    if solver == "euler":
        t = np.unique(np.rint(t / dt)) * dt
    return np.unique(t)


def on_grid(times: np.ndarray, solver: str, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Times the solver saves at, and for each requested time the index of its save.

    Euler saves whole steps: a requested time t is served by the state after
    round(t / dt) steps.
    """
    if solver != "euler":
        return times, np.arange(len(times))
    steps, index = np.unique(np.rint(np.asarray(times) / dt), return_inverse=True)
    return steps * dt, index
