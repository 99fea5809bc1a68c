"""From a validated config to a labelled learning-curve Dataset: the experiment layer.

Everything random derives from ``run.seed``: one key for the data model(s), one for the
students' initial weights, one per ensemble member for its data stream and one for the
test set (``build``). A single run is a grid of one point: the ensemble of E students,
and every point of a ``[grid]``, trains in one ``vmap``ped, jit-compiled call per chunk of
recording intervals (``hmmjax.sweep.engine``); the progress bar advances between chunks.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import jax
import numpy as np
import xarray as xr

from hmmjax.config.schema import INVARIANT_DATA, ConfigError
from hmmjax.experiments.invariant import (
    build_invariant_lanes,
    check_grid,
    invariant_dataset,
    invariant_title,
    ntk_analyses,
)
from hmmjax.experiments.validate import check_config
from hmmjax.io.layout import combine_models, finite_dataset, sweep_dataset
from hmmjax.observables.errors import classification_error, mse_between
from hmmjax.observables.metrics import analytic_available
from hmmjax.sweep.checkpoint import fingerprint, model_checkpoint
from hmmjax.sweep.engine import run_points
from hmmjax.sweep.finite import build_finite_lanes
from hmmjax.sweep.hosts import gather_shares, process_share
from hmmjax.sweep.lanes import build_lanes, point_configs, point_steps, record_times
from hmmjax.sweep.ode import ode_points
from hmmjax.sweep.plan import choose_devices, device_budget, plan_batches

__all__ = ["simulate", "linear_errors", "run_title"]


def simulate(
    cfg, progress: bool = True, checkpoint: Path | None = None, *, times=None
) -> xr.Dataset | None:
    """Run the experiment of ``cfg`` (a single run or a whole ``[grid]``); return the
    learning curves as one Dataset (``hmmjax.io.layout`` describes its variables).

    ``run.mode = "sim"``: online SGD, or training on a finite set (``finite.P > 0``,
    ``hmmjax.train.finite``); ``"ode"``: the ODE from member 0's initial state; ``"both"``:
    both on the same t. The grid's points run as one compiled computation
    (``hmmjax.sweep.engine``, ``hmmjax.sweep.ode``); a grid over ``model`` runs one per data
    model (their set-ups differ in type) and puts the results together. ``checkpoint``:
    a file to write the state to after each chunk and to resume from. ``times``: the
    recording times (default: those of the grid's smallest N).

    Multi-host (after ``jax.distributed.initialize``): process i runs the i-th share of
    the grid's points on its local devices; process 0 gathers the shares and returns the
    Dataset, the other processes return None.
    """
    t0 = time.perf_counter()
    check_config(cfg)
    invariant = cfg.data.model in INVARIANT_DATA
    if invariant:
        check_grid(cfg)
    else:
        _check_axes(cfg)
    all_cfgs = point_configs(cfg)
    if times is None and not invariant:
        times = record_times(all_cfgs)  # from the whole grid: the same on every process
    models = list(dict.fromkeys(c.data.model for c in all_cfgs))
    if len(models) > 1:
        return _by_model(cfg, all_cfgs, models, times, progress, checkpoint)
    finite = cfg.finite.P > 0 and not invariant
    shared = cfg.data.shared and not invariant  # invariant members have their own data
    mine = process_share(len(all_cfgs))
    devices = choose_devices(cfg, len(mine))
    cfgs = [all_cfgs[i] for i in mine]
    setups: dict = {}
    sim = ode = plan = extra = None
    if cfg.run.mode != "ode":
        budget = device_budget(cfg)
        if devices[0].platform == "cpu":  # host devices share one RAM
            budget //= len(devices)
        plan = plan_batches(cfgs, len(devices), budget, shared=shared)  # before any work
        with jax.enable_x64(cfg.run.precision == "float64"):
            if invariant:
                lanes, steps = build_invariant_lanes(cfgs)
            else:
                lanes = build_finite_lanes(cfgs) if finite else build_lanes(cfgs, setups)
                steps = point_steps(cfgs, times)
            sim = run_points(
                lanes, steps, plan, devices, shared=shared, block=cfg.run.block,
                chunk=cfg.run.chunk, bound=cfg.run.diverge_eg, stamp=fingerprint(cfg, plan),
                progress=progress, checkpoint=checkpoint, keep_final=invariant,
            )  # fmt: skip
            if finite:
                extra = linear_errors(lanes.test)
            elif invariant and cfg.invariant.ntk:
                # eigenvectors kept: the same number on every process (shapes gather)
                top = min(cfg.invariant.ntk_top, min(c.finite.P for c in all_cfgs))
                extra = ntk_analyses(cfgs, lanes, sim, top)
            sim = sim._replace(final=None)  # used above; not gathered nor kept
    if cfg.run.mode != "sim":
        with jax.enable_x64(cfg.run.precision == "float64"):
            ode = ode_points(cfgs, setups, times)
    if jax.process_count() > 1:  # gather every process's share on process 0
        sim, ode, extra = gather_shares((sim, ode, extra), len(all_cfgs))
        if jax.process_index() != 0:
            return None
        cfgs = all_cfgs
    if invariant:
        ds = invariant_dataset(cfg, cfgs, steps, sim, extra)
    elif finite:
        ds = finite_dataset(cfg, cfgs, times, sim, extra)
    else:
        some = next(iter(setups.values()))
        student0 = jax.tree.map(lambda a: a[0], some.students)
        model0 = some.model if cfg.data.shared else jax.tree.map(lambda a: a[0], some.model)
        ds = sweep_dataset(cfg, cfgs, times, sim, ode, analytic_available(student0, model0))
    ds.attrs.update(
        title=invariant_title(cfg) if invariant else run_title(cfg),
        mode=cfg.run.mode,
        precision=cfg.run.precision,
        device=str(devices[0]),
        n_devices=len(devices),
        jax_version=jax.__version__,
        elapsed_s=time.perf_counter() - t0,
    )
    if plan is not None:
        ds.attrs["plan"] = plan.describe()
    return ds


def _check_axes(cfg) -> None:
    """Refuse, before any work, grid axes that mean nothing for this kind of run."""
    kind, refused = ("finite-set", ("P", "alpha")) if cfg.finite.P > 0 else (
        "online", ("P", "alpha", "labels"))  # fmt: skip
    model = json.dumps(cfg.data.model)
    for name in cfg.grid.names:
        if name in refused:
            raise ConfigError(
                f"grid.{name}: not an axis of {kind} runs of data.model = {model}"
                + (" (the training set size is fixed by finite.P)" if name == "P" else "")
            )


def linear_errors(test) -> dict[str, np.ndarray]:
    """The linear predictor's test errors per point: 0.5 MSE and classification."""
    return {
        "eg": np.asarray(mse_between(test.y, test.y_lin)),
        "err": np.asarray(classification_error(test.y, test.y_lin)),
    }


def _by_model(cfg, all_cfgs, models, times, progress, checkpoint) -> xr.Dataset | None:
    """A grid over data models: one ``simulate`` per model (at the grid's times), the
    results put together along ``model`` (``layout.combine_models``)."""
    t0 = time.perf_counter()
    if len({m in INVARIANT_DATA for m in models}) > 1:
        raise ConfigError(
            f"grid.model = {json.dumps(models)}: invariant manifolds (stripe, cylinder) and "
            "the other data models are different experiments; sweep them separately"
        )
    parts, order = {}, []
    for m in models:
        sub = cfg.replace(data={"model": m}, grid=cfg.grid.select("model", m))
        ckpt = model_checkpoint(checkpoint, m) if checkpoint is not None else None
        if progress:
            print(f"hmmjax: data.model = {m}", file=sys.stderr)
        parts[m] = simulate(sub, progress, ckpt, times=times)
        order += [i for i, c in enumerate(all_cfgs) if c.data.model == m]
    if any(p is None for p in parts.values()):
        return None  # a process > 0 of a multi-host run
    ds = combine_models(cfg, parts, order)
    title = invariant_title if cfg.data.model in INVARIANT_DATA else run_title
    ds.attrs.update(title=title(cfg), elapsed_s=time.perf_counter() - t0)
    return ds


def run_title(cfg) -> str:
    d, s, f = cfg.data, cfg.student, cfg.finite
    latent = "" if d.model in ("iid", "digits", "mnist") else f", D={d.D}, f={d.f}"
    teacher = "" if d.model in ("digits", "mnist") else f", M={cfg.teacher.M}"
    title = f"{d.model}: N={d.N}{latent}, K={s.K}{teacher}, g={s.g}, lr={cfg.sgd.lr}"
    title += f", E={cfg.run.ensemble}"
    if f.P > 0:
        title += f"; P={f.P}, batch={cfg.sgd.batch}, {f.optimizer}, {f.labels} labels"
    if cfg.grid.kind == "none":
        return title
    model = "" if "model" in cfg.grid.names else f"{d.model} "
    finite = f", P={f.P}" if f.P > 0 else ""
    return (
        f"{model}sweep over {', '.join(cfg.grid.names)} ({cfg.grid.size} points), g={s.g}{finite}"
    )
