"""ODE runs as labelled Datasets: from a state file, or from a simulation's initial state.

The physics is in ``hmmjax.ode``; this module chooses save times, builds the initial state
of a simulation set-up (same F, teacher and initial weights as member 0 of the ensemble),
and labels the solution: variables eg_ode, Q_ode, R_ode (and v_ode) over a time
coordinate t.
"""

from __future__ import annotations

import os

import jax
import numpy as np
import xarray as xr

from hmmjax.data.gaussian import IIDGaussian
from hmmjax.io.state import load_state
from hmmjax.models.two_layer import INIT_SCALE
from hmmjax.observables.order_params import overlaps
from hmmjax.ode import Solution, solve_hmm, solve_hmm_limit, solve_hmm_sample, solve_iid
from hmmjax.ode.times import on_grid, save_times

__all__ = ["ode_dataset", "ode_for_setup", "ode_from_state"]


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


def ode_for_setup(setup, cfg, times: np.ndarray) -> xr.Dataset:
    """The ODE from the initial state of member 0 of a simulation set-up (same F, teacher,
    initial weights), saved at ``times`` (Euler: at the nearest whole step)."""
    student0 = jax.tree.map(lambda a: a[0], setup.students)
    model = setup.model
    grid, index = on_grid(times, cfg.ode.solver, cfg.ode.dt)
    both = cfg.student.train_second
    o = cfg.ode
    common = dict(
        lr=cfg.sgd.lr,
        g=cfg.student.g,
        both=both,
        solver=o.solver,
        dt=o.dt,
        rtol=o.rtol,
        atol=o.atol,
    )
    if isinstance(model, IIDGaussian):
        ov = overlaps(student0.w, model)
        sol = solve_iid(
            ov.Q,
            ov.R,
            student0.v,
            ov.T,
            model.teacher.v,
            grid,
            kappa=cfg.sgd.kappa,
            noise=cfg.data.noise,
            **common,
        )
    else:
        common.update(f=cfg.data.f, nodes=o.nodes, node_rtol=o.node_rtol)
        teacher = model.teacher
        if o.source == "limit":
            D, N = model.F.shape
            sol = solve_hmm_limit(
                D / N, grid, v=student0.v, A=teacher.v, q0=INIT_SCALE[cfg.student.init] ** 2,
                **common,
            )  # fmt: skip
        else:
            sol = solve_hmm_sample(
                student0.w, student0.v, model.F, teacher.w, teacher.v, grid,
                teacher=o.teacher_term, **common,
            )  # fmt: skip
    ds = ode_dataset(sol, times, index, both)
    if not isinstance(model, IIDGaussian):
        ds.attrs["ode_source"] = o.source
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
