"""The labelled results of a run or a sweep: one xarray Dataset.

Dims: the swept axes of a product grid in the canonical order (lr, kappa, noise, K, M, D,
N, seed), or ``point`` for an explicit list of points (each swept axis a coordinate along
it), or none for a single run; then ``member`` (simulation ensemble), ``t``, and ``k``,
``l`` (student units), ``m`` (teacher units) for the order parameters. Points with fewer
units than the grid's largest K or M hold NaN in the padded entries.

Simulation: ``eg`` (from the order parameters, NaN where no closed form applies),
``eg_mc`` (Monte Carlo on the test set), ``eg_sim`` (``eg`` where available, else
``eg_mc``), ``eg_sim_mean`` and ``eg_sim_std`` over members, ``Q``, ``R``, ``v``,
``diverged`` and ``t_diverged`` per member. ODE: ``eg_ode``, ``Q_ode``, ``R_ode``
(``v_ode`` when both layers train), ``diverged_ode``, ``t_diverged_ode``. Values after a
divergence are NaN. The config is in the attribute ``config`` (JSON), the swept axes in
``swept``.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import xarray as xr

from hmmjax.config import Config
from hmmjax.sweep import Progress, diverged_at, unit_masks

__all__ = ["sweep_dataset"]


def _grid_dims(cfg: Config) -> tuple[tuple[str, ...], tuple[int, ...], dict[str, Any]]:
    """Dims, shape and coordinates of the grid part."""
    g = cfg.grid
    if g.kind == "none":
        return (), (), {}
    if g.kind == "product":
        return g.dims, g.shape, {name: list(values) for name, values in g.axes}
    return ("point",), (g.size,), {name: ("point", list(values)) for name, values in g.axes}


def _mask_units(a: np.ndarray, masks: list[np.ndarray | None]) -> np.ndarray:
    """NaN in the padded units: ``masks`` (P, size) per trailing unit axis (None: keep)."""
    a = np.array(a, dtype=float)
    P = a.shape[0]
    for i, mask in enumerate(masks):
        if mask is None:
            continue
        axis = a.ndim - len(masks) + i
        shape = [P] + [1] * (a.ndim - 1)
        shape[axis] = mask.shape[1]
        a = np.where(mask.reshape(shape), a, np.nan)
    return a


def sweep_dataset(
    cfg: Config,
    cfgs: list[Config],
    times: np.ndarray,
    sim: Progress | None,
    ode: dict[str, Any] | None,
    analytic: bool,
) -> xr.Dataset:
    """Label the results of ``simulate``: see the module docstring."""
    dims, shape, coords = _grid_dims(cfg)
    kmask, mmask = unit_masks(cfgs)
    P = len(cfgs)

    def grid(a: np.ndarray, extra: tuple[str, ...]):
        return (dims + extra, np.asarray(a).reshape(shape + np.shape(a)[1:]))

    data: dict[str, Any] = {}
    attrs: dict[str, Any] = {}
    if sim is not None:
        h = sim.history
        member = ("member", "t")
        eg_sim = h["eg"] if analytic else h["eg_mc"]
        flag, first = diverged_at(sim.dead, times)
        data.update(
            eg=grid(h["eg"], member),
            eg_mc=grid(h["eg_mc"], member),
            eg_sim=grid(eg_sim, member),
            eg_sim_mean=grid(_over_members(np.nanmean, eg_sim), ("t",)),
            eg_sim_std=grid(_over_members(np.nanstd, eg_sim), ("t",)),
            Q=grid(_mask_units(h["Q"], [kmask, kmask]), (*member, "k", "l")),
            R=grid(_mask_units(h["R"], [kmask, mmask]), (*member, "k", "m")),
            v=grid(_mask_units(h["v"], [kmask]), (*member, "k")),
            diverged=grid(flag, ("member",)),
            t_diverged=grid(first, ("member",)),
        )
        coords["member"] = np.arange(cfg.run.ensemble)
        attrs["analytic_eg"] = int(analytic)
    if ode is not None:
        flag, first = diverged_at(ode["dead"], times)
        data.update(
            eg_ode=grid(ode["eg"], ("t",)),
            Q_ode=grid(_mask_units(ode["Q"], [kmask, kmask]), ("t", "k", "l")),
            R_ode=grid(_mask_units(ode["R"], [kmask, mmask]), ("t", "k", "m")),
            diverged_ode=grid(flag, ()),
            t_diverged_ode=grid(first, ()),
        )
        if cfg.student.train_second:
            data["v_ode"] = grid(_mask_units(ode["v"], [kmask]), ("t", "k"))
        coords["t_ode"] = ("t", ode["ts"][0])
        attrs.update(ode_ok=int(np.all(ode["ok"])), ode_num_steps=int(np.max(ode["num_steps"])))
        if ode["points"]:
            attrs["ode_points"] = int(ode["points"])
        if cfg.data.model != "iid":
            attrs["ode_source"] = cfg.ode.source
    coords["t"] = times
    if len({c.data.N for c in cfgs}) == 1:
        coords["step"] = ("t", np.rint(times * cfgs[0].data.N).astype(np.int64))
    ds = xr.Dataset(data, coords=coords)
    _describe(ds)
    ds.attrs.update(
        attrs,
        config=json.dumps(cfg.to_dict()),
        swept=json.dumps(list(cfg.grid.names)),
        grid_kind=cfg.grid.kind,
        n_points=P,
    )
    return ds


def _over_members(stat, a: np.ndarray) -> np.ndarray:
    """``stat`` (nanmean, nanstd) over the member axis; NaN where all members are NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return stat(a, axis=1)


LONG_NAMES = {
    "eg": "generalisation error from order parameters (THEORY 4)",
    "eg_mc": "Monte-Carlo generalisation error on the test set",
    "eg_sim": "simulation generalisation error (eg where available, else eg_mc)",
    "eg_sim_mean": "ensemble mean of eg_sim",
    "eg_sim_std": "ensemble standard deviation of eg_sim",
    "diverged": "member diverged (non-finite, or eg above run.diverge_eg) and was frozen",
    "t_diverged": "time of the first recording at which the member was flagged",
    "eg_ode": "generalisation error from the ODE (THEORY 5)",
    "diverged_ode": "ODE diverged (non-finite, or eg above run.diverge_eg)",
    "t_diverged_ode": "time of the first save at which the ODE was flagged",
}


def _describe(ds: xr.Dataset) -> None:
    for name, text in LONG_NAMES.items():
        if name in ds:
            ds[name].attrs["long_name"] = text
