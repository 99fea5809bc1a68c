"""The ODE from a state file (``hmmjax ode``) as a labelled Dataset.

The physics is in ``hmmjax.ode``; this module chooses save times and labels the solution:
variables eg_ode, Q_ode, R_ode (and v_ode) over a time coordinate t. The ODE of every point
of a config's grid, from the simulation's own initial state, is ``hmmjax.sweep.ode``.
"""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

from hmmjax.io.state import load_state
from hmmjax.ode import Solution, solve_hmm
from hmmjax.ode.times import on_grid, save_times

__all__ = ["ode_dataset", "ode_from_state", "ode_divergence"]


def ode_dataset(sol: Solution, times: np.ndarray, index: np.ndarray, both: bool) -> xr.Dataset:
    """Label a solution: eg_ode, Q_ode, R_ode (v_ode if trained) over t = ``times``;
    the coordinate t_ode holds the time each value was actually saved at."""
    pick = {name: np.asarray(getattr(sol, name))[index] for name in ("ts", "eg", "Q", "R", "v")}
    variables = {
        "eg_ode": ("t", pick["eg"]),
        "Q_ode": (("t", "k", "l"), pick["Q"]),
        "R_ode": (("t", "k", "m"), pick["R"]),
    }
    if both:
        variables["v_ode"] = (("t", "k"), pick["v"])
    ds = xr.Dataset(variables, coords={"t": np.asarray(times), "t_ode": ("t", pick["ts"])})
    ds["eg_ode"].attrs["long_name"] = "generalisation error from the ODE (docs/theory.md 5)"
    ds.attrs["ode_ok"] = int(bool(sol.ok))
    ds.attrs["ode_num_steps"] = int(sol.num_steps)
    if sol.points:
        ds.attrs["ode_points"] = int(sol.points)  # spectral points of the HMM ODE (5.2/5.3)
    return ds


def ode_from_state(
    path: str | os.PathLike,
    *,
    lr: float,
    t_max: float,
    times: np.ndarray | None = None,
    n_times: int = 200,
    solver: str = "euler",
    dt: float = 0.01,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    both: bool = False,
    f: str = "sign",
    g: str = "erf",
    teacher_term: str = "auto",
    nodes: str | int = "auto",
    node_rtol: float = 1e-8,
) -> xr.Dataset:
    """Integrate the HMM ODE from a state file (the `hmmjax ode` command).

    ``times`` default to ``save_times(t_max, n_times, "log", solver, dt)``. With Euler and
    times that are multiples of dt, each value is the state after exactly round(t/dt)
    steps.
    """
    arrays = load_state(path)
    if times is None:
        times = save_times(t_max, n_times, "log", solver, dt)
    times = np.asarray(times, float)
    if times.size and times.max() > t_max:
        raise ValueError(
            f"save times: the largest, {times.max():g}, is beyond t_max = {t_max:g}; expected "
            "save times <= t_max"
        )
    grid, index = on_grid(times, solver, dt)
    sol = solve_hmm(
        arrays, grid, lr=lr, f=f, g=g, both=both, teacher=teacher_term,
        solver=solver, dt=dt, rtol=rtol, atol=atol, nodes=nodes, node_rtol=node_rtol,
    )  # fmt: skip
    ds = ode_dataset(sol, times, index, both)
    K, M, D = np.shape(arrays["r"])
    ds.attrs.update(
        title=f"HMM ODE: D={D}, N={int(arrays['N'])}, K={K}, M={M}, lr={lr}, f={f}, g={g}",
        state_file=str(path),
        solver=solver,
        dt=dt,
        nodes=str(nodes),
        teacher_term=teacher_term
        if teacher_term != "auto"
        else ("exact" if "beta" in arrays else "averaged"),
    )
    return ds


def ode_divergence(ds: xr.Dataset) -> float | None:
    """The first time at which ``eg_ode`` is not finite (the ODE diverged), or None."""
    eg = np.asarray(ds["eg_ode"])
    if np.all(np.isfinite(eg)):
        return None
    return float(np.asarray(ds["t"])[np.argmin(np.isfinite(eg))])
