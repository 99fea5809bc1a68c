"""An invariant-manifold experiment from a config (``data.model = "stripe" | "cylinder"``):
the grid's lanes trained on the sweep engine (``hmmjax.sweep.invariant``), the NTK analyses,
and the labelled Dataset.

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
from hmmjax.data.invariant import STRIPE, InvariantData, lane_keys, sample
from hmmjax.io.layout import grid_attrs, grid_placer
from hmmjax.observables.ntk import (
    kernel_regression,
    kernel_svm,
    label_alignment,
    network_ntk,
    sign_error,
)
from hmmjax.sweep.engine import Progress
from hmmjax.sweep.invariant import final_networks, invariant_lanes, iteration_steps
from hmmjax.sweep.lanes import Lanes
from hmmjax.sweep.setup import dtype_of
from hmmjax.train.hinge import InvariantTrainer

__all__ = [
    "SEED_STRIDE",
    "invariant_trainer",
    "member_seeds",
    "build_invariant_lanes",
    "invariant_steps",
    "ntk_analyses",
    "invariant_dataset",
    "invariant_title",
]


def _data(cfg: Config) -> InvariantData:
    return InvariantData(d=cfg.data.N, model=cfg.data.model, r2=cfg.invariant.threshold)


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
        act=c.student.g, n_test=c.run.test_size, dtype=dtype_of(c),
    )  # fmt: skip


def invariant_steps(cfgs: list[Config]) -> np.ndarray:
    """The iteration counts at which the points ``cfgs`` record."""
    return iteration_steps(invariant_trainer(cfgs[0]), len(cfgs))


def ntk_analyses(cfgs: list[Config], lanes: Lanes, sim: Progress, k: int) -> dict[str, np.ndarray]:
    """Kernel regression, kernel SVM and label alignment (on the top ``k`` eigenvectors)
    with the NTK at initialisation and at the end, for every point and member: arrays
    (points, members, 2[, k])."""
    c = cfgs[0]
    inv, data, dtype = c.invariant, _data(c), dtype_of(c)
    finals = final_networks(lanes, sim)
    seeds = member_seeds(cfgs)
    shape = seeds.shape
    out = {n: np.full((*shape, 2), np.nan) for n in ("kr_err", "svm_err")}
    out.update(eig=np.full((*shape, 2, k), np.nan), align=np.full((*shape, 2, k), np.nan))
    for index in np.ndindex(*shape):
        p = cfgs[index[0]].finite.P
        k_train, _, k_test = lane_keys(int(seeds[index]))
        x, y = sample(k_train, p, data, dtype)
        x_test, y_test = sample(k_test, c.run.test_size, data, dtype)
        for w, net in enumerate((lanes.model.net0, finals)):
            net = jax.tree.map(lambda a: a[index], net).unpad()  # noqa: B023 (used at once)
            K_train = network_ntk(net, x, generic=True)
            K_test = network_ntk(net, x_test, x, generic=True)
            pred = kernel_regression(K_train, y, K_test, ridge=inv.kernel_ridge)
            out["kr_err"][(*index, w)] = sign_error(y_test, pred)
            out["svm_err"][(*index, w)] = sign_error(y_test, kernel_svm(K_train, y, K_test))
            al = label_alignment(K_train, y, k)
            out["eig"][(*index, w)] = np.asarray(al.eigenvalues)[:k] / al.eigenvalues[0]
            out["align"][(*index, w)] = np.asarray(al.cumulative)[:k]
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
    data: dict[str, Any] = {name: place(a, member) for name, a in sim.history.items()}
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
    d, d_par = model.d, model.d_par
    pred = predicted_exponents(d, d_par)
    r2 = model.r2 if model.model == "cylinder" else json.dumps(list(STRIPE))
    ds.attrs.update(
        grid_attrs(cfg, cfg.grid.size),
        experiment="invariant",
        d=d,
        d_par=d_par,
        threshold=r2,
        beta_lazy=pred["lazy"],
        beta_feature=pred["feature"],
    )
    return ds


def invariant_title(cfg: Config) -> str:
    """The model and the fixed settings; the swept ones are named."""
    swept = cfg.grid.names
    fixed = {"d": cfg.data.N, "h": cfg.student.K, "p": cfg.finite.P, "alpha": cfg.invariant.alpha}
    grid_name = {"h": "K", "p": "P"}
    parts = [f"{k}={v:g}" for k, v in fixed.items() if grid_name.get(k, k) not in swept]
    sweep = f"; sweep over {', '.join(swept)}" if swept else ""
    model = "/".join(dict(cfg.grid.axes).get("model", (cfg.data.model,)))
    return f"{model}: {', '.join(parts)}, {cfg.student.g}; {cfg.run.ensemble} seeds{sweep}"
