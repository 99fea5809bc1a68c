"""From a validated config to a labelled learning-curve Dataset: the experiment layer.

Everything random derives from ``run.seed``: one key for the data model(s), one for the
students' initial weights, one per ensemble member for its data stream and one for the
test set (``build``). A single run is a grid of one point: the ensemble of E students,
and every point of a ``[grid]``, trains in one ``vmap``ped, jit-compiled call per chunk of
recording intervals (``hmmjax.sweep``); the progress bar advances between chunks.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from hmmjax.config import INVARIANT_DATA, ConfigError
from hmmjax.data import Batch, DataModel, make_data_model
from hmmjax.finite import build_finite_lanes
from hmmjax.layout import combine_models, finite_dataset, sweep_dataset
from hmmjax.metrics import analytic_available
from hmmjax.networks import TwoLayer, init_network
from hmmjax.online import SGD
from hmmjax.phenomena import classification_error, mse_between
from hmmjax.sweep import (
    build_lanes,
    choose_devices,
    device_budget,
    gather_shares,
    model_checkpoint,
    plan_batches,
    point_configs,
    point_steps,
    process_share,
    record_times,
    run_points,
)
from hmmjax.sweep_ode import ode_points

__all__ = ["Setup", "build", "simulate"]


@dataclass(frozen=True)
class Setup:
    """Everything a run needs, as arrays: batched over the ensemble where marked."""

    model: DataModel  # batched over members unless ``shared``
    students: TwoLayer  # batched over members
    sgd: SGD
    stream_keys: jax.Array  # (E,) data-stream keys
    test: Batch  # batched over members unless ``shared``
    shared: bool


def _dtype(cfg):
    return jnp.float64 if cfg.run.precision == "float64" else jnp.float32


def draw_students(cfg, keys: jax.Array) -> TwoLayer:
    """The students of ``cfg`` (K units on data.N inputs), one per key, stacked."""
    s = cfg.student

    def draw(key):
        return init_network(
            key, s.K, cfg.data.N, init=s.init, second_layer=s.second_layer,
            scaling=s.scaling, g=s.g, dtype=_dtype(cfg),
        )  # fmt: skip

    return eqx.filter_vmap(draw)(keys)


class Keys(NamedTuple):
    """The keys of a run, all derived from ``run.seed``."""

    data: jax.Array  # the data model (F, teacher)
    students: jax.Array  # (E,) initial weights
    streams: jax.Array  # (E,) data streams (online) or sample orders (finite sets)
    test: jax.Array  # the test set
    train: jax.Array  # the finite training set


def run_keys(cfg) -> Keys:
    E = cfg.run.ensemble
    root_key = jax.random.PRNGKey(cfg.run.seed)
    k_data, k_students, k_streams, k_test = jax.random.split(root_key, 4)
    student_keys = jax.random.split(k_students, E)
    if cfg.run.same_init:  # every member starts from member 0's weights
        student_keys = jnp.broadcast_to(student_keys[0], student_keys.shape)
    train = jax.random.fold_in(root_key, 1)
    return Keys(k_data, student_keys, jax.random.split(k_streams, E), k_test, train)


def build(cfg) -> Setup:
    """Draw the data model(s), the students and the keys of a config."""
    dtype = _dtype(cfg)
    E = cfg.run.ensemble
    keys = run_keys(cfg)
    k_data, k_test = keys.data, keys.test
    d = cfg.data

    def draw_model(key):
        return make_data_model(
            key,
            d.model,
            N=d.N,
            M=cfg.teacher.M,
            D=d.D,
            f=d.f,
            g=cfg.teacher.g or cfg.student.g,
            noise=d.noise,
            teacher_scaling=cfg.teacher.scaling,
            dtype=dtype,
        )

    def draw_test(model, key):
        return model.sample(key, cfg.run.test_size, noise=False)

    if d.shared:
        model = draw_model(k_data)
        test = draw_test(model, k_test)
    else:
        model = eqx.filter_vmap(draw_model)(jax.random.split(k_data, E))
        test = eqx.filter_vmap(draw_test)(model, jax.random.split(k_test, E))
    return Setup(
        model=model,
        students=draw_students(cfg, keys.students),
        sgd=SGD.create(
            cfg.sgd.lr, cfg.sgd.kappa, cfg.sgd.batch, cfg.student.train_second, dtype=dtype
        ),
        stream_keys=keys.streams,
        test=test,
        shared=d.shared,
    )


def simulate(
    cfg, progress: bool = True, checkpoint: Path | None = None, *, times=None
) -> xr.Dataset | None:
    """Run the experiment of ``cfg`` (a single run or a whole ``[grid]``); return the
    learning curves as one Dataset (``hmmjax.layout`` describes its variables).

    ``run.mode = "sim"``: online SGD, or training on a finite set (``finite.P > 0``,
    ``hmmjax.finite``); ``"ode"``: the ODE from member 0's initial state; ``"both"``:
    both on the same t. The grid's points run as one compiled computation
    (``hmmjax.sweep``, ``hmmjax.sweep_ode``); a grid over ``model`` runs one per data
    model (their set-ups differ in type) and puts the results together. ``checkpoint``:
    a file to write the state to after each chunk and to resume from. ``times``: the
    recording times (default: those of the grid's smallest N).

    Multi-host (after ``jax.distributed.initialize``): process i runs the i-th share of
    the grid's points on its local devices; process 0 gathers the shares and returns the
    Dataset, the other processes return None.
    """
    t0 = time.perf_counter()
    _check_axes(cfg)
    all_cfgs = point_configs(cfg)
    if times is None:
        times = record_times(all_cfgs)  # from the whole grid: the same on every process
    models = list(dict.fromkeys(c.data.model for c in all_cfgs))
    if len(models) > 1:
        return _by_model(cfg, all_cfgs, models, times, progress, checkpoint)
    if cfg.data.model in INVARIANT_DATA:  # its own engine: lanes stop at zero loss
        from hmmjax.invariant_run import run_invariant

        ds = run_invariant(cfg, progress=progress, checkpoint=checkpoint)
        ds.attrs.update(device=str(jax.devices()[0]), jax_version=jax.__version__,
                        elapsed_s=time.perf_counter() - t0)  # fmt: skip
        return ds
    finite = cfg.finite.P > 0
    mine = process_share(len(all_cfgs))
    devices = choose_devices(cfg, len(mine))
    cfgs = [all_cfgs[i] for i in mine]
    setups: dict = {}
    sim = ode = plan = lin = None
    if cfg.run.mode != "ode":
        budget = device_budget(cfg)
        if devices[0].platform == "cpu":  # host devices share one RAM
            budget //= len(devices)
        plan = plan_batches(cfgs, len(devices), budget)  # before any work
        with jax.enable_x64(cfg.run.precision == "float64"):
            lanes = build_finite_lanes(cfgs) if finite else build_lanes(cfgs, setups)
            steps = point_steps(cfgs, times)
            sim = run_points(cfg, cfgs, lanes, steps, plan, devices, progress=progress,
                             checkpoint=checkpoint)  # fmt: skip
            if finite:
                lin = linear_errors(lanes.test)
    if cfg.run.mode != "sim":
        with jax.enable_x64(cfg.run.precision == "float64"):
            ode = ode_points(cfgs, setups, times)
    if jax.process_count() > 1:  # gather every process's share on process 0
        sim, ode, lin = gather_shares((sim, ode, lin), len(all_cfgs))
        if jax.process_index() != 0:
            return None
        cfgs = all_cfgs
    if finite:
        ds = finite_dataset(cfg, cfgs, times, sim, lin)
    else:
        some = next(iter(setups.values()))
        student0 = jax.tree.map(lambda a: a[0], some.students)
        model0 = some.model if cfg.data.shared else jax.tree.map(lambda a: a[0], some.model)
        ds = sweep_dataset(cfg, cfgs, times, sim, ode, analytic_available(student0, model0))
    ds.attrs.update(
        title=_title(cfg),
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
    if cfg.data.model in INVARIANT_DATA:
        return  # invariant_run.check_grid
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
    if cfg.data.model in INVARIANT_DATA:
        from hmmjax.invariant_run import _title as title
    else:
        title = _title
    ds.attrs.update(title=title(cfg), elapsed_s=time.perf_counter() - t0)
    return ds


def _title(cfg) -> str:
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
