"""From a validated config to a labelled learning-curve Dataset: the experiment layer.

Everything random derives from ``run.seed``: one key for the data model(s), one for the
students' initial weights, one per ensemble member for its data stream and one for the
test set (``build``). A single run is a grid of one point: the ensemble of E students,
and every point of a ``[grid]``, trains in one ``vmap``ped, jit-compiled call per chunk of
recording intervals (``hmmjax.sweep.engine``); the progress bar advances between chunks.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from functools import partial
from pathlib import Path

import jax
import numpy as np
import xarray as xr

from hmmjax.config.grid import AXES, part_of_grid
from hmmjax.config.schema import ConfigError, show
from hmmjax.config.settings import is_invariant
from hmmjax.core.cache import enable_compile_cache
from hmmjax.experiments.invariant import (
    build_invariant_lanes,
    invariant_dataset,
    invariant_steps,
    invariant_title,
    ntk_analyses,
)
from hmmjax.experiments.validate import check_config
from hmmjax.io.layout import combine_models, finite_dataset, sweep_dataset
from hmmjax.observables.errors import classification_error, mse_between
from hmmjax.observables.metrics import analytic_available
from hmmjax.sweep.checkpoint import (
    describe_config,
    fingerprint,
    load_checkpoint,
    model_checkpoint,
    unpack,
)
from hmmjax.sweep.engine import check_resume_fits, member_parts, run_points
from hmmjax.sweep.finite import build_finite_lanes
from hmmjax.sweep.hosts import gather_shares, process_share
from hmmjax.sweep.lanes import (
    Layout,
    build_lanes,
    one_per_lane,
    point_configs,
    point_steps,
    record_times,
    split_members,
    stream_layout,
)
from hmmjax.sweep.memory import measure_footprint, plan_grid
from hmmjax.sweep.ode import ode_points
from hmmjax.sweep.plan import Plan, choose_devices, device_budget
from hmmjax.sweep.setup import numerics

__all__ = ["SPLIT_AXES", "simulate", "linear_errors", "run_checkpoints", "run_title"]


def simulate(
    cfg, progress: bool = True, checkpoint: Path | None = None, *, times=None
) -> xr.Dataset | None:
    """Run the experiment of ``cfg`` (a single run or a whole ``[grid]``); return the
    learning curves as one Dataset (``hmmjax.io.layout`` describes its variables).

    ``run.mode = "sim"``: online SGD, or training on a finite set (``finite.P > 0``,
    ``hmmjax.train.finite``); ``"ode"``: the ODE from member 0's initial state; ``"both"``:
    both on the same t. The grid's points run as one compiled computation
    (``hmmjax.sweep.engine``, ``hmmjax.sweep.ode``); a grid over ``model`` or ``features``
    runs one per value (their set-ups differ in type) and puts the results together. ``checkpoint``:
    a file to write the state to after each chunk and to resume from. ``times``: the
    recording times (default: those of the grid's smallest N).

    Multi-host (after ``jax.distributed.initialize``): process i runs the i-th share of
    the grid's points on its local devices; process 0 gathers the shares and returns the
    Dataset, the other processes return None.
    """
    t0 = time.perf_counter()
    check_config(cfg)
    enable_compile_cache()  # warm starts: compiled programs kept on disk (HMMJAX_COMPILE_CACHE)
    invariant = is_invariant(cfg)
    all_cfgs = point_configs(cfg)
    if times is None and not invariant:
        times = record_times(all_cfgs)  # from the whole grid: the same on every process
    split = _split(all_cfgs)  # set-ups of different types: one run per value
    if split is not None:
        return _by_axis(cfg, all_cfgs, *split, times, progress, checkpoint)
    finite = cfg.finite.P > 0 and not invariant
    shared = cfg.data.shared and not invariant  # invariant members have their own data
    # online points that differ only in lr, kappa, K share their data streams (lanes); a
    # process of a multi-host run takes whole lanes
    share = not (invariant or finite)
    whole = stream_layout(all_cfgs, share=share).points
    mine = process_share(whole)
    cfgs = [all_cfgs[i] for i in mine]
    layout = stream_layout(cfgs, share=share)
    devices = choose_devices(cfg, layout.n_lanes)
    setups: dict = {}
    sim = ode = plan = extra = analytic = None
    if cfg.run.mode != "ode":
        kind = "invariant" if invariant else "finite" if finite else "online"
        with numerics(cfg):
            steps = invariant_steps(cfgs) if invariant else point_steps(cfgs, times)
            shapes = jax.eval_shape(lambda: _builder(cfgs, kind, layout)({}))  # nothing drawn
            parts = member_parts(shapes, layout, shared, devices) if share else 1
            if parts > 1:  # a single run on a CPU: its members in parts (host devices)
                layout = split_members(layout, parts)
                devices = choose_devices(cfg, layout.n_lanes)
                shapes = jax.eval_shape(lambda: _builder(cfgs, kind, layout)({}))
            saved = _saved(cfg, checkpoint, devices, parts)  # validated before any work
            batch = int(saved["plan"][0]) if saved is not None else None
            if saved is not None:  # and what it holds against this run's lanes
                check_resume_fits(unpack(saved), checkpoint, shapes, steps.shape[1],
                                  batch=batch, chunk=cfg.run.chunk, shared=shared,
                                  keep_final=invariant)  # fmt: skip
                print(f"hmmjax: resuming from {checkpoint}", file=sys.stderr)  # also when quiet
            plan = _plan(cfg, cfgs, kind, shapes, steps, devices, progress, batch,
                         layout.parts)  # fmt: skip
            lanes = _builder(cfgs, kind, layout)(setups)
            if kind == "online":
                analytic = _analytic(cfg, setups)
            if cfg.run.mode == "sim":
                setups.clear()  # only the ODE needs them again
            sim = run_points(
                lanes, steps, plan, devices, shared=shared, block=cfg.run.block,
                chunk=cfg.run.chunk, bound=cfg.run.diverge_eg, stamp=fingerprint(cfg),
                config=describe_config(cfg), layout=layout, progress=progress,
                checkpoint=checkpoint,
                resume=saved, keep_final=invariant,
            )  # fmt: skip
            if finite:
                extra = linear_errors(lanes.test)
            elif invariant and cfg.invariant.ntk:
                # ntk_top eigenvectors: the same number on every process and every part
                # of a grid split over P (NaN beyond a point's P)
                extra = ntk_analyses(cfgs, lanes, sim, cfg.invariant.ntk_top)
            sim = sim._replace(final=None)  # used above; not gathered nor kept
    if cfg.run.mode != "sim":
        with numerics(cfg):
            ode = ode_points(cfgs, setups, times)
            analytic = _analytic(cfg, setups)
    if jax.process_count() > 1:  # gather every process's share on process 0
        sim, ode, extra = gather_shares((sim, ode, extra), len(all_cfgs), whole)
        if jax.process_index() != 0:
            return None
        cfgs = all_cfgs
    if invariant:
        ds = invariant_dataset(cfg, cfgs, steps, sim, extra)
    elif finite:
        ds = finite_dataset(cfg, cfgs, times, sim, extra)
    else:
        ds = sweep_dataset(cfg, cfgs, times, sim, ode, analytic)
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
        ds.attrs["memory_need_gib"] = plan.need_bytes / 2**30
    return ds


def _analytic(cfg, setups: dict) -> bool:
    """Whether the closed-form eg applies to the run (from one drawn set-up)."""
    some = next(iter(setups.values()))
    student0 = jax.tree.map(lambda a: a[0], some.students)
    model0 = some.model if cfg.data.shared else jax.tree.map(lambda a: a[0], some.model)
    return analytic_available(student0, model0)


def _builder(cfgs, kind: str, layout: Layout):
    """The function building the lanes of ``cfgs`` (in ``layout``) from a set-ups cache
    (online runs); finite sets and invariant manifolds run one point per lane."""
    if kind == "invariant":
        return lambda setups: one_per_lane(build_invariant_lanes(cfgs))
    if kind == "finite":
        return lambda setups: one_per_lane(build_finite_lanes(cfgs))
    return partial(build_lanes, cfgs, layout=layout)


def _saved(cfg, checkpoint: Path | None, devices, parts: int) -> dict | None:
    """The validated arrays of an existing checkpoint (``load_checkpoint``; written by
    this process and on as many devices, or, for a run in member parts, which compute the
    same on any device count, on any), or None."""
    if checkpoint is None or not checkpoint.exists():
        return None
    saved = load_checkpoint(checkpoint, fingerprint(cfg), describe_config(cfg))
    process = [jax.process_index(), jax.process_count()]
    if "share" in saved and saved["share"].tolist()[1:] != process:
        raise ConfigError(
            f"checkpoint {checkpoint} was written by process {int(saved['share'][1])} of "
            f"{int(saved['share'][2])}, this is process {process[0]} of {process[1]}: its "
            "points differ; run on as many processes, or with --fresh to start afresh"
        )
    written = int(saved["plan"][1])
    if written != len(devices) and parts == 1:
        raise ConfigError(
            f"run.devices = {show(cfg.run.devices)}: checkpoint {checkpoint} was written on "
            f"{written} device(s), this run has {len(devices)}; set run.devices = {written}, "
            "or run with --fresh to start afresh"
        )
    return saved


def _plan(cfg, cfgs, kind: str, shapes, steps, devices, progress: bool,
          batch: int | None, parts: int) -> Plan:  # fmt: skip
    """The measured memory plan (``hmmjax.sweep.memory``) of lanes of ``shapes`` (their
    ``jax.eval_shape``: nothing drawn), the compiled programs' bytes from XLA; refuses a
    grid that cannot fit."""
    if progress:
        print("hmmjax: compiling and measuring the memory plan", file=sys.stderr)
    footprint = measure_footprint(shapes, cfgs, kind)
    what = "the grid, run.ensemble, run.n_times"
    what += {"online": ", run.test_size, sgd.batch, run.block", "finite": ", run.test_size, "
             "sgd.batch"}.get(kind, "")  # fmt: skip
    plan = plan_grid(
        shapes, footprint, device_budget(cfg), devices, n_records=steps.shape[1],
        keep_setups=cfg.run.mode != "sim",
        chunk=cfg.run.chunk, shared=cfg.data.shared and kind != "invariant",
        block=cfg.run.block, same_steps=bool(np.all(steps == steps[:1])), what=what,
        batch=batch, parts=parts,
    )  # fmt: skip
    return dataclasses.replace(plan, points=len(cfgs))


def linear_errors(test) -> dict[str, np.ndarray]:
    """The linear predictor's test errors per point: 0.5 MSE and classification."""
    return {
        "eg": np.asarray(mse_between(test.y, test.y_lin)),
        "err": np.asarray(classification_error(test.y, test.y_lin)),
    }


# grid axes (keys of [data]) whose values give set-ups of different types: a grid over
# one runs once per value, and the parts are put together along the axis
SPLIT_AXES = ("model", "features")


def _value(cfg, axis: str):
    """The value of the grid axis ``axis`` (a name of ``AXES``) in the point config ``cfg``."""
    section, key = AXES[axis]
    return getattr(getattr(cfg, section), key)


def _split(cfgs) -> tuple[str, list] | None:
    """(axis, values) of the first of ``SPLIT_AXES`` with several values over the points
    ``cfgs``; then, for invariant runs with ``invariant.by_p``, P (each part's lanes are
    padded to their own P, not the grid's largest); None if there is none."""
    first = cfgs[0]
    by_p = ("P",) if is_invariant(first) and first.invariant.by_p else ()
    for axis in (*SPLIT_AXES, *by_p):
        values = list(dict.fromkeys(_value(c, axis) for c in cfgs))
        if len(values) > 1:
            return axis, values
    return None


def _part(cfg, axis: str, value, checkpoint: Path | None):
    """The config of one value of a split axis, and its checkpoint."""
    section, key = AXES[axis]
    with part_of_grid():  # checked as a whole: a key its other parts read is kept
        sub = cfg.replace(**{section: {key: value}}, grid=cfg.grid.select(axis, value))
    tag = value if axis == "model" else f"{axis}-{value}"
    return sub, (model_checkpoint(checkpoint, tag) if checkpoint is not None else None)


def _leaf_parts(cfg, checkpoint: Path | None) -> list:
    """(config, checkpoint) of every part that runs by itself: a grid split on one axis and
    then on the next (``SPLIT_AXES``) has one part per combination."""
    split = _split(point_configs(cfg))
    if split is None:
        return [(cfg, checkpoint)]
    axis, values = split
    return [leaf for v in values for leaf in _leaf_parts(*_part(cfg, axis, v, checkpoint))]


def run_checkpoints(cfg, checkpoint: Path) -> list[Path]:
    """The checkpoints of ``cfg`` with the whole-grid checkpoint ``checkpoint`` that exist:
    that one and, for a grid run in parts, each part's (``model_checkpoint``). Only these
    names: another run's checkpoint beside it (``OUT.seed2.ckpt.npz`` next to ``OUT``'s)
    is not one of them, whatever its name."""
    paths = dict.fromkeys([checkpoint, *(path for _, path in _leaf_parts(cfg, checkpoint))])
    return [path for path in paths if path.exists()]


def _by_axis(cfg, all_cfgs, axis, values, times, progress, checkpoint) -> xr.Dataset | None:
    """A grid over data models or feature matrices (``SPLIT_AXES``), or an invariant grid
    over P: one ``simulate`` per value (at the grid's times), the results put together
    along ``axis`` (``layout.combine_models``)."""
    t0 = time.perf_counter()
    section, key = AXES[axis]
    parts, order = {}, []
    subs, ckpts = {}, {}
    for m in values:
        subs[m], ckpts[m] = _part(cfg, axis, m, checkpoint)
    if checkpoint is not None and checkpoint.exists():  # would be ignored, then removed
        how = "start over with --fresh"
        if axis == "P":
            how = f"resume it with invariant.by_p = false, or {how}"
        raise ConfigError(
            f"{checkpoint}: a checkpoint of the whole grid, but this grid runs one part per "
            f"{section}.{key}: {how}"
        )
    if checkpoint is not None:  # every part's checkpoint validated before the first runs
        for sub, path in _leaf_parts(cfg, checkpoint):
            if path.exists():
                load_checkpoint(path, fingerprint(sub), describe_config(sub))
    for m in values:
        sub, ckpt = subs[m], ckpts[m]
        if progress:
            print(f"hmmjax: {section}.{key} = {m}", file=sys.stderr)
        parts[m] = simulate(sub, progress, ckpt, times=times)
        order += [i for i, c in enumerate(all_cfgs) if _value(c, axis) == m]
    if any(p is None for p in parts.values()):
        return None  # a process > 0 of a multi-host run
    ds = combine_models(cfg, parts, order, dim=axis)
    title = invariant_title if is_invariant(cfg) else run_title
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
