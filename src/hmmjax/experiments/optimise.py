"""``hmmjax optimise``: the learning-rate schedule that minimises the ODE's eg, checked in
simulation (docs/theory.md 8).

For the config's point (or every point of its ``[grid]``, in one compiled call):

1. the ODE from member 0's initial state (``hmmjax.sweep.ode.ode_model``, as ``run.mode
   = "ode"`` starts it), with its spectral points chosen at ``sgd.lr``;
2. the best constant rate of ``optimise.n_lr`` log-spaced rates in [lr_min, lr_max] (one
   vmapped call; ``hmmjax.ode.optimal.best_constant``);
3. from it, the schedule of ``optimise.form`` that minimises ``optimise.objective``, by
   Adam through the ODE (``optimise_schedule``), with a progress bar over the steps;
4. with ``optimise.simulate`` (a single point): ``run.ensemble`` students trained online
   with the optimised schedule and with the best constant rate, from the same initial
   weights and the same data streams (the same ``run.seed``: common random numbers, so
   that the difference of the two is measured member by member), as ``hmmjax run``
   trains them (``simulate``; ``run.mode`` is not used).

For a single point the optimised schedule is kept for later runs: as the ``[sgd]`` keys of
a run (``sgd.schedule = "piecewise"`` or ``"power"``) in the attribute ``schedule_sgd``
(and printed by the command), and the piecewise form also as a table beside the results
file ``NAME.nc`` (``NAME.schedule.txt``: t, s(t) of ``sgd.schedule = "file"``, with
``sgd.lr`` in its header).
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from hmmjax.analysis.optimal import schedule_gain
from hmmjax.config.schema import ConfigError, one_line, show
from hmmjax.config.settings import Config, is_invariant
from hmmjax.core.cache import enable_compile_cache
from hmmjax.core.files import atomic_write_bytes
from hmmjax.experiments.driver import run_checkpoints, run_title, simulate
from hmmjax.experiments.validate import check_config
from hmmjax.io.layout import grid_attrs, grid_placer
from hmmjax.ode.optimal import ScheduleFit, best_constant, optimise_schedule
from hmmjax.sweep.checkpoint import model_checkpoint
from hmmjax.sweep.lanes import point_configs, record_times
from hmmjax.sweep.ode import ode_model
from hmmjax.sweep.setup import numerics

__all__ = ["OPTIMISE_AXES", "check_optimise", "optimise", "optimise_checkpoints", "schedule_path",
           "schedule_settings"]  # fmt: skip

OPTIMISE_AXES = ("K", "M", "D", "N", "noise", "kappa", "seed")
"""What the grid of ``hmmjax optimise`` may sweep (lr is what it optimises)."""


def check_optimise(cfg: Config) -> None:
    """One ``ConfigError`` line for what ``hmmjax optimise`` cannot do with ``cfg``, before
    any work: the ODE must apply (the checks of ``run.mode = "ode"`` or ``"both"``), the
    rate must be constant (the command finds the schedule), the grid sweeps only
    ``OPTIMISE_AXES``, and the simulation check is of a single point."""
    o = cfg.optimise
    if cfg.finite.P > 0 or is_invariant(cfg):
        raise ConfigError(
            f"data.model = {show(cfg.data.model)}, finite.P = {cfg.finite.P}: hmmjax optimise "
            "needs the ODE of online SGD (finite.P = 0, data.model iid, hmm or get)"
        )
    if cfg.sgd.schedule != "constant":
        raise ConfigError(
            f"sgd.schedule = {show(cfg.sgd.schedule)}: hmmjax optimise finds the schedule "
            'itself, from constant rates; use "constant"'
        )
    bad = [a for a in cfg.grid.names if a not in OPTIMISE_AXES]
    if bad:
        raise ConfigError(
            f"grid.{bad[0]}: hmmjax optimise sweeps only {', '.join(OPTIMISE_AXES)} (the rate "
            "is what it optimises: optimise.lr_min, lr_max, n_lr give the constant ones)"
        )
    if o.simulate and cfg.grid.kind != "none":
        raise ConfigError(
            "optimise.simulate = true: the simulation check runs for a single point; set it "
            "to false for a grid (the ODE optimises every point in one call)"
        )
    if o.simulate and cfg.run.ensemble < 2:
        raise ConfigError(
            f"run.ensemble = {cfg.run.ensemble}: the simulation check needs 2 students or "
            "more for a standard error; set run.ensemble >= 2 (16 or more for a clear answer) "
            "or optimise.simulate = false"
        )
    try:
        check_config(_mode(cfg))
    except ConfigError as err:  # the checks of a run with the ODE, said as optimise's
        raise ConfigError(f"hmmjax optimise needs the ODE: {err}") from None


def _mode(cfg: Config) -> Config:
    """``cfg`` with the run mode of its optimisation (ODE, and simulation if checked)."""
    return cfg.replace(run={"mode": "both" if cfg.optimise.simulate else "ode"})


def optimise_checkpoints(cfg: Config, checkpoint: Path) -> list[Path]:
    """The checkpoints of ``hmmjax optimise`` on ``cfg`` that exist: those of its two
    simulations (``OUT.opt``, ``OUT.const``, each maybe in parts: ``run_checkpoints``)."""
    sim = cfg.replace(run={"mode": "sim"})
    return [path for name in _NAMES
            for path in run_checkpoints(sim, model_checkpoint(checkpoint, name))]  # fmt: skip


def schedule_path(out: Path) -> Path:
    """Where the optimised schedule of the results file ``out`` is written."""
    return out.with_suffix(".schedule.txt")


def schedule_settings(fit: ScheduleFit, path: Path, config: str) -> dict:
    """The ``[sgd]`` keys of a run with the (single-point) optimised schedule ``fit``; the
    piecewise form's table is also written to ``path`` (atomically), as a file for
    ``sgd.schedule = "file"``."""
    lr = float(fit.lr)
    s = fit.schedule
    if fit.form == "power":
        return {"lr": lr, "schedule": "power", "tau": float(s.tau), "power": float(s.power)}
    times, values = s.times.tolist(), s.values.tolist()
    lines = [
        f"# learning-rate schedule optimised by hmmjax optimise {one_line(config)}",
        f"# eta(t) = sgd.lr * s(t) with sgd.lr = {lr!r}; columns: t, s(t)",
        *(f"{t!r} {v!r}" for t, v in zip(times, values, strict=True)),
    ]
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    return {"lr": lr, "schedule": "piecewise", "schedule_times": times, "schedule_values": values}


def optimise(
    cfg: Config, progress: bool = True, checkpoint: Path | None = None, *, config: str = ""
) -> xr.Dataset:
    """Run ``hmmjax optimise`` for ``cfg`` (module docstring); return its Dataset.
    ``checkpoint``: the base name of the simulations' checkpoints (one per schedule);
    ``config``: the config's name, for the schedule file's header."""
    t0 = time.perf_counter()
    check_optimise(cfg)
    enable_compile_cache()
    o = cfg.optimise
    cfgs = point_configs(cfg)
    times = record_times(cfgs)
    n = len(cfgs)
    setups: dict = {}
    with numerics(cfg):  # draws as a run of cfg draws them
        model = ode_model(cfgs, setups, times)
    setups.clear()

    def eg_of(lr, schedule):
        return model.eg(jnp.broadcast_to(lr, (n,)), schedule, batched=schedule is not None)

    lrs = np.geomspace(o.lr_min, o.lr_max, o.n_lr)
    best, values, eg_const = best_constant(eg_of, lrs, o.objective, curves=True)
    _check_constant(cfg, values)
    _warn_edges(best, lrs)
    t1 = time.perf_counter()
    bar = tqdm(total=o.steps, disable=not progress, desc="optimise", unit="step",
               file=sys.stderr, dynamic_ncols=True)  # fmt: skip

    def tick(step, value):
        bar.update(1)
        bar.set_postfix_str(f"objective {np.max(value):.4g}")

    with bar:
        fit = optimise_schedule(
            eg_of, cfg.run.t_max, lr0=best, form=o.form, pieces=o.pieces, steps=o.steps,
            rate=o.rate, roughness=o.roughness, objective=o.objective, progress=tick,
        )  # fmt: skip
    seconds = time.perf_counter() - t1
    data = _ode_variables(cfg, times, lrs, values, best, fit, fit.eg, eg_const)
    attrs = dict(
        experiment="optimise", objective=o.objective, form=o.form, steps=o.steps,
        evaluations=fit.evaluations, optimise_s=seconds, ode_points=model.points,
        title=_title(cfg),
    )  # fmt: skip
    if n == 1:  # the schedule for later runs (a grid's are in the results file)
        sgd = schedule_settings(fit.at(0), schedule_path(Path(cfg.output.out)), config)
        attrs["schedule_sgd"] = json.dumps(sgd)
    if o.simulate:
        runs = {"opt": sgd, "const": {"lr": float(best[0])}}
        for name, keys in runs.items():
            part = model_checkpoint(checkpoint, name) if checkpoint is not None else None
            if progress:
                print(f"hmmjax: simulation with the {_NAMES[name]}", file=sys.stderr)
            sim = simulate(cfg.replace(run={"mode": "sim"}, sgd=keys), progress, part)
            data[f"eg_sim_{name}"] = (("member", "t"), sim["eg_sim"].values)
            attrs[f"sim_{name}_s"] = float(sim.attrs["elapsed_s"])
    coords, _ = grid_placer(cfg)
    ds = xr.Dataset(data, coords={**coords, "t": times, "lr_try": lrs,
                                  "step": np.arange(o.steps + 1)})  # fmt: skip
    if fit.form == "piecewise":
        ds = ds.assign_coords(knot=np.asarray(fit.schedule.times)[(0,) * (fit.lr.ndim)])
    ds.attrs.update(attrs, **grid_attrs(cfg, n))
    if o.simulate:
        ds.attrs.update({f"final_{k}": v for k, v in schedule_gain(ds).items()})
    ds.attrs.update(jax_version=jax.__version__, elapsed_s=time.perf_counter() - t0)
    return ds


_NAMES = {"opt": "optimised schedule", "const": "best constant rate"}


def _ode_variables(cfg, times, lrs, values, best, fit, eg_opt, eg_const) -> dict:
    """The ODE's variables of the Dataset, the grid's points in its dims."""
    _, place = grid_placer(cfg)
    data = {
        "lr_opt": place(fit.rates(times), ("t",)),
        "lr_const": place(best, ()),
        "eg_ode_opt": place(eg_opt, ("t",)),
        "eg_ode_const": place(eg_const, ("t",)),
        "objective": place(np.moveaxis(fit.objective, 0, -1), ("step",)),
        "objective_const": place(np.moveaxis(values, 0, -1), ("lr_try",)),
    }
    if fit.form == "piecewise":
        data["knot_lr"] = place(fit.lr[:, None] * np.asarray(fit.schedule.values), ("knot",))
    else:
        data["power_tau"] = place(np.asarray(fit.schedule.tau), ())
        data["power_a"] = place(np.asarray(fit.schedule.power), ())
    return data


def _check_constant(cfg: Config, values: np.ndarray) -> None:
    """Refuse a point at which every constant rate tried diverges in the ODE."""
    bad = np.flatnonzero(~np.any(np.isfinite(values), axis=0))
    if bad.size:
        o = cfg.optimise
        where = "" if cfg.grid.kind == "none" else f" at grid point {int(bad[0])}"
        raise ConfigError(
            f"optimise.lr_min = {show(o.lr_min)}: every constant rate up to optimise.lr_max = "
            f"{show(o.lr_max)} diverges in the ODE{where}; lower both"
        )


def _warn_edges(best: np.ndarray, lrs: np.ndarray) -> None:
    """Say so when a best constant rate is at an end of the rates tried."""
    for end, key in ((lrs[0], "lr_min"), (lrs[-1], "lr_max")):
        if np.any(best == end):
            print(f"hmmjax: warning: the best constant rate is optimise.{key} = {end:g}, the "
                  f"end of the rates tried; widen optimise.{key}", file=sys.stderr)  # fmt: skip


def _title(cfg: Config) -> str:
    o = cfg.optimise
    form = f"{o.pieces} pieces" if o.form == "piecewise" else "power"
    run = re.sub(r", lr=[^,]*", "", run_title(cfg))  # the rate is what is optimised
    return f"optimal schedule ({form}, {o.objective} eg) for {run}"
