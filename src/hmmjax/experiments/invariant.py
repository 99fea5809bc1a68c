"""An invariant-manifold experiment from a config (``data.model = "stripe" | "cylinder"``,
or ``invariant.network = "cnn"`` on the images of ``data.model = "digits" | "mnist"``): the
grid's lanes trained on the sweep engine (``hmmjax.sweep.invariant``), the NTK analyses,
and the labelled Dataset.

With the convolutional network (docs/theory.md 7.1) student.K is its channels,
invariant.depth its layers and invariant.kernel_size its kernels; the images of a seed are
split by ``hmmjax.data.images.nested_split`` (training sets nested in P, one test set of
run.test_size), and the compression measurements (``g_par`` ... ``Lambda``), which need
informative directions, are not recorded. The grid sweeps alpha, P and seed.

Keys: data.N is the dimension d, student.K the width h, student.g the activation,
finite.P the training set size p, sgd.lr the step scale, ``[invariant]`` alpha and the
integrator, run.ensemble the number of seeds per point (member m of run.seed s uses the
data and initial weights of seed ``s * 10**6 + m``), run.n_times the number of records,
run.test_size the test set. A product ``[grid]`` may sweep alpha, P, K and seed (and
model, run one model after the other by ``simulate``); all its lanes train together.

Dataset: dims = the swept axes (canonical order), ``member``, ``record`` (log-spaced
iteration counts, coordinate ``iteration``); the measurements of
``hmmjax.train.hinge.InvariantMeasurement`` over the records (``loss``, ``n_unfit``,
``err_train``, ``err_test``, ``g_par``, ``g_perp``, ``ratio``, ``w_par``, ``w_perp``,
``Lambda``, ``rel_change``, ``dt``, ``time``, ``steps``, ``accepted``, ``diverged``) and
``converged`` (training loss exactly zero at the end). With ``invariant.ntk``: for the
NTK at initialisation and at the end (dim ``ntk`` = ["init", "final"]) the test errors
of kernel regression and of the kernel SVM trained on the same p samples
(``kr_err``, ``svm_err``), its top eigenvalues over the largest (``ntk_eig``, dim
``eig``) and the label alignment, the cumulative fraction of |y|^2 on the top k
eigenvectors (``ntk_align``). Attributes: ``experiment = "invariant"``, the threshold,
d_par and the theory's predicted exponents.
"""

from __future__ import annotations

import json
from typing import Any

import jax
import numpy as np
import xarray as xr

from hmmjax.analysis.exponents import predicted_exponents
from hmmjax.config.schema import SEED_STRIDE
from hmmjax.config.settings import Config
from hmmjax.data.images import ImageTask
from hmmjax.data.invariant import STRIPE, InvariantData
from hmmjax.data.real import load
from hmmjax.io.layout import grid_attrs, grid_placer
from hmmjax.observables.ntk import (
    kernel_regression,
    kernel_svm,
    label_alignment,
    network_ntk,
    sign_error,
)
from hmmjax.sweep.engine import Progress
from hmmjax.sweep.invariant import (
    LaneDraws,
    final_networks,
    image_draws,
    invariant_lanes,
    iteration_steps,
    manifold_draws,
)
from hmmjax.sweep.lanes import Lanes
from hmmjax.sweep.setup import dtype_of
from hmmjax.train.hinge import InvariantTrainer

__all__ = [
    "COMPRESSION",
    "SEED_STRIDE",
    "lane_draws",
    "invariant_trainer",
    "member_seeds",
    "build_invariant_lanes",
    "invariant_steps",
    "ntk_analyses",
    "invariant_dataset",
    "invariant_title",
]


COMPRESSION = ("g_par", "g_perp", "ratio", "w_par", "w_perp", "Lambda")
"""The measurements that need informative directions (not recorded for images)."""


def _data(cfg: Config) -> InvariantData | ImageTask:
    if cfg.invariant.network == "cnn":
        return ImageTask(name=cfg.data.model, path=cfg.data.path, d=cfg.data.N)
    return InvariantData(d=cfg.data.N, model=cfg.data.model, r2=cfg.invariant.threshold)


def lane_draws(cfg: Config) -> LaneDraws:
    """The data and initial networks of a config's lanes (``hmmjax.sweep.invariant``)."""
    data, dtype = _data(cfg), dtype_of(cfg)
    act, n_test = cfg.student.g, cfg.run.test_size
    if isinstance(data, ImageTask):
        inv = cfg.invariant
        return image_draws(load(data.name, data.path, "global"), data, depth=inv.depth,
                           kernel=inv.kernel_size, act=act, n_test=n_test, dtype=dtype)  # fmt: skip
    return manifold_draws(data, act=act, n_test=n_test, dtype=dtype)


def invariant_trainer(cfg: Config) -> InvariantTrainer:
    """The hinge-loss trainer of a config (static settings of the compiled program)."""
    inv = cfg.invariant
    return InvariantTrainer(
        data=_data(cfg), lr=cfg.sgd.lr, adaptive=inv.adaptive, max_dF=inv.max_dF,
        max_dw=inv.max_dw, max_steps=inv.max_steps, n_records=cfg.run.n_times,
    )  # fmt: skip


def member_seeds(cfgs: list[Config]) -> np.ndarray:
    """(points, members): member m of a point with run.seed s uses seed s * 10**6 + m."""
    E = cfgs[0].run.ensemble
    return np.array([[c.run.seed * SEED_STRIDE + m for m in range(E)] for c in cfgs], np.uint64)


def build_invariant_lanes(cfgs: list[Config]) -> Lanes:
    """The lanes of the points ``cfgs`` (they record at ``invariant_steps``)."""
    c = cfgs[0]
    return invariant_lanes(
        [x.invariant.alpha for x in cfgs], [x.finite.P for x in cfgs],
        [x.student.K for x in cfgs], member_seeds(cfgs), invariant_trainer(c),
        act=c.student.g, n_test=c.run.test_size, dtype=dtype_of(c), draws=lane_draws(c),
    )  # fmt: skip


def invariant_steps(cfgs: list[Config]) -> np.ndarray:
    """The iteration counts at which the points ``cfgs`` record."""
    return iteration_steps(invariant_trainer(cfgs[0]), len(cfgs))


def ntk_analyses(cfgs: list[Config], lanes: Lanes, sim: Progress, k: int) -> dict[str, np.ndarray]:
    """Kernel regression, kernel SVM and label alignment (on the top ``k`` eigenvectors,
    NaN beyond a point's P) with the NTK at initialisation and at the end, for every point
    and member with P <= invariant.ntk_max_p (NaN for the others): arrays (points,
    members, 2[, k]). Kernels are computed at the highest matmul precision (no TF32 on
    GPUs)."""
    c = cfgs[0]
    inv, draws = c.invariant, lane_draws(c)
    finals = final_networks(lanes, sim)
    seeds = member_seeds(cfgs)
    shape = seeds.shape
    out = {n: np.full((*shape, 2), np.nan) for n in ("kr_err", "svm_err")}
    out.update(eig=np.full((*shape, 2, k), np.nan), align=np.full((*shape, 2, k), np.nan))
    for index in np.ndindex(*shape):
        p = cfgs[index[0]].finite.P
        if p > inv.ntk_max_p:
            continue
        x, y, x_test, y_test = draws.sets(int(seeds[index]), p)
        for w, net in enumerate((lanes.model.net0, finals)):
            net = jax.tree.map(lambda a: a[index], net).unpad()  # noqa: B023 (used at once)
            with jax.default_matmul_precision("highest"):
                K_train = network_ntk(net, x, generic=True)
                K_test = network_ntk(net, x_test, x, generic=True)
            pred = kernel_regression(K_train, y, K_test, ridge=inv.kernel_ridge)
            out["kr_err"][(*index, w)] = sign_error(y_test, pred)
            out["svm_err"][(*index, w)] = sign_error(y_test, kernel_svm(K_train, y, K_test))
            top = min(k, p)  # NaN beyond P
            al = label_alignment(K_train, y, top)
            where = (*index, w, slice(top))
            out["eig"][where] = np.asarray(al.eigenvalues)[:top] / al.eigenvalues[0]
            out["align"][where] = np.asarray(al.cumulative)[:top]
    return out


def invariant_dataset(
    cfg: Config,
    cfgs: list[Config],
    steps: np.ndarray,
    sim: Progress,
    ntk: dict[str, np.ndarray] | None,
) -> xr.Dataset:
    """Label the engine's results: the grid's dims in canonical order, member, record
    (see the module docstring); the fixed alpha, seed, P and K as scalar coordinates."""
    coords, place = grid_placer(cfg)
    member = ("member", "record")
    images = cfg.invariant.network == "cnn"
    data: dict[str, Any] = {
        name: place(a, member)
        for name, a in sim.history.items()
        if not (images and name in COMPRESSION)
    }
    data["converged"] = place(sim.history["loss"][..., -1] == 0, ("member",))
    if ntk is not None:
        data["kr_err"] = place(ntk["kr_err"], ("member", "ntk"))
        data["svm_err"] = place(ntk["svm_err"], ("member", "ntk"))
        data["ntk_eig"] = place(ntk["eig"], ("member", "ntk", "eig"))
        data["ntk_align"] = place(ntk["align"], ("member", "ntk", "eig"))
        coords["ntk"] = ["init", "final"]
        coords["eig"] = np.arange(1, ntk["eig"].shape[-1] + 1)
    fixed = {"alpha": float(cfg.invariant.alpha), "seed": cfg.run.seed, "P": cfg.finite.P,
             "K": cfg.student.K}  # fmt: skip
    coords.update({k: v for k, v in fixed.items() if k not in cfg.grid.names})
    coords.update(member=np.arange(cfg.run.ensemble), iteration=("record", steps[0]))
    ds = xr.Dataset(data, coords=coords)
    model = _data(cfg)
    ds.attrs.update(grid_attrs(cfg, cfg.grid.size), experiment="invariant", d=model.d,
                    d_par=model.d_par, network=cfg.invariant.network)  # fmt: skip
    if isinstance(model, ImageTask):  # no theory for the exponents of real images
        ds.attrs.update(depth=cfg.invariant.depth, kernel_size=cfg.invariant.kernel_size)
        return ds
    pred = predicted_exponents(model.d, model.d_par)
    r2 = model.r2 if model.model == "cylinder" else json.dumps(list(STRIPE))
    ds.attrs.update(threshold=r2, beta_lazy=pred["lazy"], beta_feature=pred["feature"])
    return ds


def invariant_title(cfg: Config) -> str:
    """The model and the fixed settings; the swept ones are named."""
    swept = cfg.grid.names
    fixed = {"d": cfg.data.N, "h": cfg.student.K, "p": cfg.finite.P, "alpha": cfg.invariant.alpha}
    grid_name = {"h": "K", "p": "P"}
    parts = [f"{k}={v:g}" for k, v in fixed.items() if grid_name.get(k, k) not in swept]
    sweep = f"; sweep over {', '.join(swept)}" if swept else ""
    model = "/".join(dict(cfg.grid.axes).get("model", (cfg.data.model,)))
    if cfg.invariant.network == "cnn":
        inv = cfg.invariant
        k = inv.kernel_size
        model += f" (cnn: {inv.depth} layers of {cfg.student.K} channels, {k}x{k})"
    return f"{model}: {', '.join(parts)}, {cfg.student.g}; {cfg.run.ensemble} seeds{sweep}"
