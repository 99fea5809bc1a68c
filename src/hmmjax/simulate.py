"""From a validated config to a labelled learning-curve Dataset: the experiment layer.

Everything random derives from ``run.seed``: one key for the data model(s), one for the
students' initial weights, one per ensemble member for its data stream and one for the
test set (``build``). A single run is a grid of one point: the ensemble of E students,
and every point of a ``[grid]``, trains in one ``vmap``ped, jit-compiled call per chunk of
recording intervals (``hmmjax.sweep``); the progress bar advances between chunks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import xarray as xr

from hmmjax.data import Batch, DataModel, make_data_model
from hmmjax.layout import sweep_dataset
from hmmjax.metrics import analytic_available
from hmmjax.networks import TwoLayer, init_network
from hmmjax.online import SGD
from hmmjax.sweep import (
    build_lanes,
    choose_devices,
    device_budget,
    gather_shares,
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


def build(cfg) -> Setup:
    """Draw the data model(s), the students and the keys of a config."""
    dtype = _dtype(cfg)
    E = cfg.run.ensemble
    k_data, k_students, k_streams, k_test = jax.random.split(jax.random.PRNGKey(cfg.run.seed), 4)
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

    def draw_student(key):
        s = cfg.student
        return init_network(
            key,
            s.K,
            d.N,
            init=s.init,
            second_layer=s.second_layer,
            scaling=s.scaling,
            g=s.g,
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
    student_keys = jax.random.split(k_students, E)
    if cfg.run.same_init:  # every member starts from member 0's weights
        student_keys = jnp.broadcast_to(student_keys[0], student_keys.shape)
    return Setup(
        model=model,
        students=eqx.filter_vmap(draw_student)(student_keys),
        sgd=SGD.create(
            cfg.sgd.lr, cfg.sgd.kappa, cfg.sgd.batch, cfg.student.train_second, dtype=dtype
        ),
        stream_keys=jax.random.split(k_streams, E),
        test=test,
        shared=d.shared,
    )


def simulate(cfg, progress: bool = True, checkpoint: Path | None = None) -> xr.Dataset | None:
    """Run the experiment of ``cfg`` (a single run or a whole ``[grid]``); return the
    learning curves as one Dataset (``hmmjax.layout`` describes its variables).

    ``run.mode = "sim"``: online SGD; ``"ode"``: the ODE from member 0's initial state;
    ``"both"``: both on the same t. The grid's points run as one compiled computation
    (``hmmjax.sweep``, ``hmmjax.sweep_ode``). ``checkpoint``: a file to write the state
    to after each chunk and to resume from.

    Multi-host (after ``jax.distributed.initialize``): process i runs the i-th share of
    the grid's points on its local devices; process 0 gathers the shares and returns the
    Dataset, the other processes return None.
    """
    t0 = time.perf_counter()
    all_cfgs = point_configs(cfg)
    times = record_times(all_cfgs)  # from the whole grid: the same on every process
    mine = process_share(len(all_cfgs))
    devices = choose_devices(cfg, len(mine))
    cfgs = [all_cfgs[i] for i in mine]
    setups: dict = {}
    sim = ode = plan = None
    if cfg.run.mode != "ode":
        budget = device_budget(cfg)
        if devices[0].platform == "cpu":  # host devices share one RAM
            budget //= len(devices)
        plan = plan_batches(cfgs, len(devices), budget)  # before any work
        with jax.enable_x64(cfg.run.precision == "float64"):
            lanes = build_lanes(cfgs, setups)
            steps = point_steps(cfgs, times)
            sim = run_points(cfg, cfgs, lanes, steps, plan, devices, progress=progress,
                             checkpoint=checkpoint)  # fmt: skip
    if cfg.run.mode != "sim":
        with jax.enable_x64(cfg.run.precision == "float64"):
            ode = ode_points(cfgs, setups, times)
    if jax.process_count() > 1:  # gather every process's share on process 0
        sim, ode = gather_shares((sim, ode), len(all_cfgs))
        if jax.process_index() != 0:
            return None
        cfgs = all_cfgs
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


def _title(cfg) -> str:
    d, s = cfg.data, cfg.student
    latent = "" if d.model == "iid" else f", D={d.D}, f={d.f}"
    title = (
        f"{d.model}: N={d.N}{latent}, K={s.K}, M={cfg.teacher.M}, g={s.g}, "
        f"lr={cfg.sgd.lr}, E={cfg.run.ensemble}"
    )
    if cfg.grid.kind == "none":
        return title
    return f"{d.model} sweep over {', '.join(cfg.grid.names)} ({cfg.grid.size} points), g={s.g}"
