"""From a validated config to a labelled learning-curve Dataset: the online-SGD experiment.

Everything random derives from ``run.seed``: one key for the data model(s), one for the
students' initial weights, one per ensemble member for its data stream and one for the
test set. The ensemble of E students trains in one ``vmap``ped, jit-compiled call per
chunk of recording intervals; the progress bar advances between chunks.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from hmmjax.data import Batch, DataModel, make_data_model
from hmmjax.metrics import analytic_available, measure
from hmmjax.networks import TwoLayer, init_network
from hmmjax.online import SGD, record_steps, run_chunk
from hmmjax.theory import ode_for_setup

__all__ = ["Setup", "build", "simulate"]


@dataclass(frozen=True)
class Setup:
    """Everything a run needs, as arrays: batched over the ensemble where marked."""

    model: DataModel  # batched over members unless ``shared``
    students: TwoLayer  # batched over members
    sgd: SGD
    stream_keys: jax.Array  # (E,) data-stream keys
    test: Batch  # batched over members unless ``shared``
    steps: np.ndarray  # recording step counts, starting at 0
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
        steps=record_steps(d.N, cfg.run.t_max, cfg.run.n_times, cfg.run.spacing),
        shared=d.shared,
    )


@partial(jax.jit, static_argnames=("shared", "block"))
def _ensemble_chunk(students, sgd, model, keys, test, starts, stops, *, shared, block):
    axis = None if shared else 0
    fn = jax.vmap(partial(run_chunk, block=block), in_axes=(0, None, axis, 0, axis, None, None))
    return fn(students, sgd, model, keys, test, starts, stops)


@partial(jax.jit, static_argnames=("shared",))
def _ensemble_measure(students, model, test, *, shared):
    axis = None if shared else 0
    return jax.vmap(measure, in_axes=(0, axis, axis))(students, model, test)


def train(setup: Setup, *, block: int, chunk: int, progress: bool = True):
    """Run the ensemble through all recording intervals; return final students and
    the stacked measurements (leaves of shape (E, n_times, ...))."""
    steps = setup.steps
    starts, stops = steps[:-1], steps[1:]
    n = len(starts)
    pad = (-n) % chunk
    starts = np.concatenate([starts, np.full(pad, steps[-1])])
    stops = np.concatenate([stops, np.full(pad, steps[-1])])
    students = setup.students
    first = _ensemble_measure(students, setup.model, setup.test, shared=setup.shared)
    pieces = [jax.tree.map(lambda a: a[:, None], first)]
    bar = tqdm(total=int(steps[-1]), disable=not progress, unit="step", unit_scale=True)
    for c0 in range(0, len(starts), chunk):
        sl = slice(c0, c0 + chunk)
        students, meas = _ensemble_chunk(
            students,
            setup.sgd,
            setup.model,
            setup.stream_keys,
            setup.test,
            jnp.asarray(starts[sl]),
            jnp.asarray(stops[sl]),
            shared=setup.shared,
            block=block,
        )
        # wait for the chunk: JAX dispatches asynchronously, and the bar is to show work done
        pieces.append(jax.block_until_ready(meas))
        bar.update(int(stops[sl][-1] - starts[sl][0]))
    bar.close()
    history = jax.tree.map(lambda *a: np.concatenate(a, axis=1)[:, : n + 1], *pieces)
    return students, history


def simulate(cfg, progress: bool = True) -> xr.Dataset:
    """Run the experiment of ``cfg``; return the learning curves as a Dataset.

    ``run.mode = "sim"``: online SGD, variables eg (analytic, NaN where no closed form
    applies), eg_mc (Monte Carlo on the test set), Q, R, v over (member, t).
    ``"ode"``: the ODE from member 0's initial state, variables eg_ode, Q_ode, R_ode
    (v_ode) over t. ``"both"``: both on the same t, from the same initial state.
    """
    t0 = time.perf_counter()
    with jax.enable_x64(cfg.run.precision == "float64"):
        setup = build(cfg)
        parts = []
        if cfg.run.mode != "ode":
            parts.append(_simulation_dataset(cfg, setup, progress))
    if cfg.run.mode != "sim":
        times = setup.steps / cfg.data.N
        parts.append(ode_for_setup(setup, cfg, times))
    ds = xr.merge(parts, combine_attrs="no_conflicts")
    ds.attrs.update(
        config=json.dumps(cfg.to_dict()),
        title=_title(cfg),
        mode=cfg.run.mode,
        precision=cfg.run.precision,
        device=str(jax.devices()[0]),
        jax_version=jax.__version__,
        elapsed_s=time.perf_counter() - t0,
    )
    return ds


def _simulation_dataset(cfg, setup: Setup, progress: bool) -> xr.Dataset:
    _, h = train(setup, block=cfg.run.block, chunk=cfg.run.chunk, progress=progress)
    analytic = analytic_available(
        jax.tree.map(lambda a: a[0], setup.students),
        setup.model if setup.shared else jax.tree.map(lambda a: a[0], setup.model),
    )
    dims = ("member", "t")
    ds = xr.Dataset(
        {
            "eg": (dims, h.eg),
            "eg_mc": (dims, h.eg_mc),
            "Q": (dims + ("k", "l"), h.Q),
            "R": (dims + ("k", "m"), h.R),
            "v": (dims + ("k",), h.v),
        },
        coords={
            "t": setup.steps / cfg.data.N,
            "step": ("t", setup.steps),
            "member": np.arange(cfg.run.ensemble),
        },
    )
    ds["eg"].attrs["long_name"] = "generalisation error from order parameters (THEORY 4)"
    ds["eg_mc"].attrs["long_name"] = f"Monte-Carlo eg on {cfg.run.test_size} test samples"
    ds.attrs["analytic_eg"] = int(analytic)
    return ds


def _title(cfg) -> str:
    d, s = cfg.data, cfg.student
    latent = "" if d.model == "iid" else f", D={d.D}, f={d.f}"
    return (
        f"{d.model}: N={d.N}{latent}, K={s.K}, M={cfg.teacher.M}, g={s.g}, "
        f"lr={cfg.sgd.lr}, E={cfg.run.ensemble}"
    )
