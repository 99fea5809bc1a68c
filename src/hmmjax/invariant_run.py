"""An invariant-manifold experiment from a config (``data.model = "stripe" | "cylinder"``):
the grid's lanes trained in one compiled call (``hmmjax.invariant``), the NTK analyses,
and the labelled Dataset.

Keys: data.N is the dimension d, student.K the width h, student.g the activation,
finite.P the training set size p, sgd.lr the step scale, ``[invariant]`` alpha and the
integrator, run.ensemble the number of seeds per point (member m of run.seed s uses the
data and initial weights of seed ``s * 10**6 + m``), run.n_times the number of records,
run.test_size the test set. A product ``[grid]`` may sweep alpha, P, K and seed (and
model, run one model after the other by ``simulate``); all its lanes train together.

Dataset: dims = the swept axes (canonical order), ``member``, ``record`` (log-spaced
iteration counts, coordinate ``iteration``); the measurements of
``invariant.InvariantMeasurement`` over the records (``loss``, ``n_unfit``,
``err_train``, ``err_test``, ``g_par``, ``g_perp``, ``ratio``, ``w_par``, ``w_perp``,
``Lambda``, ``rel_change``, ``dt``, ``time``, ``steps``, ``accepted``, ``diverged``) and
``converged`` (training loss exactly zero at the end). With ``invariant.ntk``: for the
NTK at initialisation and at the end (dim ``ntk`` = ["init", "final"]) the test errors
of kernel regression and of the kernel SVM trained on the same p samples
(``kr_err``, ``svm_err``), its top eigenvalues over the largest (``ntk_eig``, dim
``eig``) and the label alignment, the cumulative fraction of |y|^2 on the top k
eigenvectors (``ntk_align``). Attributes: ``experiment = "invariant"``, the threshold,
d_par and THEORY's predicted exponents.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from hmmjax.config import Config, ConfigError
from hmmjax.invariant import (
    STRIPE,
    InvariantData,
    InvariantTrainer,
    lane_keys,
    predicted_exponents,
    run_grid,
    sample,
)
from hmmjax.layout import grid_attrs
from hmmjax.ntk import kernel_regression, kernel_svm, label_alignment, network_ntk, sign_error
from hmmjax.sweep import fingerprint

__all__ = ["INVARIANT_AXES", "invariant_dataset", "run_invariant", "seeds_of"]

INVARIANT_AXES = ("alpha", "K", "P", "seed")  # what a grid of an invariant run may sweep
SEED_STRIDE = 10**6


def check_grid(cfg: Config) -> None:
    """Refuse grids the invariant engine does not run, before any work."""
    g = cfg.grid
    if g.kind == "points":
        raise ConfigError(
            "grid.points: invariant experiments take a product grid over "
            + ", ".join(INVARIANT_AXES)
        )
    for name in g.names:
        if name not in (*INVARIANT_AXES, "model"):
            raise ConfigError(
                f"grid.{name}: data.model = {json.dumps(cfg.data.model)} sweeps "
                + ", ".join(INVARIANT_AXES)
                + " (and model)"
            )


def _values(cfg: Config, name: str, default: Any) -> list:
    return list(dict(cfg.grid.axes).get(name, (default,)))


def seeds_of(cfg: Config) -> np.ndarray:
    """(seeds, members) of the lane seeds: s * 10**6 + m."""
    seeds = np.asarray(_values(cfg, "seed", cfg.run.seed), np.int64)
    return seeds[:, None] * SEED_STRIDE + np.arange(cfg.run.ensemble)


def _data(cfg: Config) -> InvariantData:
    return InvariantData(d=cfg.data.N, model=cfg.data.model, r2=cfg.invariant.threshold)


def run_invariant(
    cfg: Config, progress: bool = False, checkpoint: Path | None = None
) -> xr.Dataset:
    """Train the config's grid and label it (see the module docstring); ``progress``: a
    bar over the records; ``checkpoint``: resume file (``invariant.train``)."""
    check_grid(cfg)
    inv = cfg.invariant
    dtype = jnp.float64 if cfg.run.precision == "float64" else jnp.float32
    trainer = InvariantTrainer(
        data=_data(cfg), lr=cfg.sgd.lr, adaptive=inv.adaptive, max_dF=inv.max_dF,
        max_dw=inv.max_dw, max_steps=inv.max_steps, n_records=cfg.run.n_times,
    )  # fmt: skip
    alphas = _values(cfg, "alpha", inv.alpha)
    ps, hs = _values(cfg, "P", cfg.finite.P), _values(cfg, "K", cfg.student.K)
    seeds = seeds_of(cfg)
    with jax.enable_x64(dtype == jnp.float64):
        res = run_grid(alphas, seeds.ravel().tolist(), ps, hs, trainer, act=cfg.student.g,
                       n_test=cfg.run.test_size, dtype=dtype, progress=progress,
                       checkpoint=checkpoint, stamp=fingerprint(cfg))  # fmt: skip
        ntk = _ntk_analyses(cfg, res, dtype) if inv.ntk else None
    return invariant_dataset(cfg, res, seeds.shape, ntk)


def _ntk_analyses(cfg: Config, res, dtype) -> dict[str, np.ndarray]:
    """Kernel regression, kernel SVM and label alignment with the NTK at initialisation
    and at the end, for every lane (grid axes alpha, seed, P, K as in ``res``)."""
    inv, data = cfg.invariant, res.data
    grid = res.converged.shape
    k = min(inv.ntk_top, int(min(res.ps)))
    out = {n: np.full((*grid, 2), np.nan) for n in ("kr_err", "svm_err")}
    out.update(eig=np.full((*grid, 2, k), np.nan), align=np.full((*grid, 2, k), np.nan))
    for index in np.ndindex(*grid):
        p = int(res.ps[index[2]])
        k_train, _, k_test = lane_keys(int(res.seeds[index[1]]))
        x, y = sample(k_train, p, data, dtype)
        x_test, y_test = sample(k_test, cfg.run.test_size, data, dtype)
        for w, initial in enumerate((True, False)):
            net = res.network(index, initial=initial)
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
    cfg: Config, res, seed_shape: tuple[int, int], ntk: dict[str, np.ndarray] | None
) -> xr.Dataset:
    """Label ``run_grid``'s results: grid dims in canonical order, member, record."""
    n_seed, n_member = seed_shape
    swept = list(cfg.grid.names)
    # res axes: alpha, (seed, member), P, K -> alpha, seed, member, P, K
    lead = ("alpha", "seed", "member", "P", "K")

    def unfold(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a)
        return a.reshape(a.shape[0], n_seed, n_member, *a.shape[2:])

    coords = {
        "alpha": np.asarray(res.alphas, float),
        "seed": np.asarray(_values(cfg, "seed", cfg.run.seed)),
        "member": np.arange(n_member),
        "P": np.asarray(res.ps),
        "K": np.asarray(res.hs),
    }
    data: dict[str, Any] = {}
    for name, a in res.history._asdict().items():
        data[name] = (lead + ("record",), unfold(a))
    data["converged"] = (lead, unfold(res.converged))
    if ntk is not None:
        data["kr_err"] = (lead + ("ntk",), unfold(ntk["kr_err"]))
        data["svm_err"] = (lead + ("ntk",), unfold(ntk["svm_err"]))
        data["ntk_eig"] = (lead + ("ntk", "eig"), unfold(ntk["eig"]))
        data["ntk_align"] = (lead + ("ntk", "eig"), unfold(ntk["align"]))
        coords["ntk"] = ["init", "final"]
        coords["eig"] = np.arange(1, ntk["eig"].shape[-1] + 1)
    ds = xr.Dataset(data, coords={**coords, "iteration": ("record", res.steps)})
    # keep the swept axes as dims in canonical order; the others become scalars
    ds = ds.squeeze([d for d in ("alpha", "seed", "P", "K") if d not in swept], drop=False)
    order = [d for d in swept if d in ds.dims] + ["member", "record"]
    ds = ds.transpose(*order, ...)
    d, d_par = res.data.d, res.data.d_par
    pred = predicted_exponents(d, d_par)
    ds.attrs.update(
        grid_attrs(cfg, cfg.grid.size),
        experiment="invariant",
        d=d,
        d_par=d_par,
        threshold=res.data.r2 if res.data.model == "cylinder" else json.dumps(list(STRIPE)),
        beta_lazy=pred["lazy"],
        beta_feature=pred["feature"],
        title=_title(cfg),
    )
    return ds


def _title(cfg: Config) -> str:
    """The model and the fixed settings; the swept ones are named."""
    swept = cfg.grid.names
    fixed = {"d": cfg.data.N, "h": cfg.student.K, "p": cfg.finite.P, "alpha": cfg.invariant.alpha}
    grid_name = {"h": "K", "p": "P"}
    parts = [f"{k}={v:g}" for k, v in fixed.items() if grid_name.get(k, k) not in swept]
    sweep = f"; sweep over {', '.join(swept)}" if swept else ""
    model = "/".join(_values(cfg, "model", cfg.data.model))
    return f"{model}: {', '.join(parts)}, {cfg.student.g}; {cfg.run.ensemble} seeds{sweep}"
