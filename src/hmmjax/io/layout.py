"""The labelled results of a run or a sweep: one xarray Dataset.

Dims: the swept axes of a product grid in the canonical order (``config.grid.AXES``:
model, features, labels, alpha, lr, kappa, noise, K, M, D, N, P, seed), or ``point`` for an
explicit list of points (each swept axis a coordinate along it), or none for a single run;
then ``member`` (simulation ensemble), ``t``, and ``k``, ``l`` (student units), ``m``
(teacher units) for the order parameters. Points with fewer units than the grid's largest
K or M hold NaN in the padded entries.

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

from hmmjax.analysis.phenomena import first_fit_time, fitted_by_all, ratio_stderr
from hmmjax.config.settings import Config
from hmmjax.core.tables import read_table
from hmmjax.sweep.engine import Progress, diverged_at
from hmmjax.sweep.finite import epochs
from hmmjax.sweep.lanes import unit_masks

__all__ = [
    "grid_placer",
    "sweep_dataset",
    "grid_attrs",
    "FINITE_SCALARS",
    "finite_dataset",
    "combine_models",
    "LONG_NAMES",
]


def _grid_dims(cfg: Config) -> tuple[tuple[str, ...], tuple[int, ...], dict[str, Any]]:
    """Dims, shape and coordinates of the grid part."""
    g = cfg.grid
    if g.kind == "none":
        return (), (), {}
    if g.kind == "product":
        return g.dims, g.shape, {name: _values(values) for name, values in g.axes}
    return ("point",), (g.size,), {name: ("point", _values(values)) for name, values in g.axes}


def _values(values: tuple) -> list | np.ndarray:
    """An axis' values as a coordinate; integers from 2^63 on (seeds) as uint64, exact."""
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values) and max(values) >= 2**63:
        return np.asarray(values, np.uint64)
    return list(values)


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


def grid_placer(cfg: Config):
    """(coords, place): the grid's coordinates, and ``place(a, extra)``, a (dims, array)
    pair with the point axis of ``a`` unfolded into the grid's dims."""
    dims, shape, coords = _grid_dims(cfg)

    def place(a: np.ndarray, extra: tuple[str, ...]):
        return (dims + extra, np.asarray(a).reshape(shape + np.shape(a)[1:]))

    return coords, place


def sweep_dataset(
    cfg: Config,
    cfgs: list[Config],
    times: np.ndarray,
    sim: Progress | None,
    ode: dict[str, Any] | None,
    analytic: bool,
) -> xr.Dataset:
    """Label the results of ``simulate``: see the module docstring."""
    coords, grid = grid_placer(cfg)
    kmask, mmask = unit_masks(cfgs)
    P = len(cfgs)

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
    return _labelled(cfg, data, coords, attrs, P)


def grid_attrs(cfg: Config, n_points: int) -> dict[str, Any]:
    """The attributes every results Dataset carries: the config (JSON), the swept axes,
    the grid's kind and its number of points; with ``sgd.schedule = "file"`` the table
    itself (JSON [times, factors]: the results keep the schedule, not only its path)."""
    attrs = {
        "config": json.dumps(cfg.to_dict()),
        "swept": json.dumps(list(cfg.grid.names)),
        "grid_kind": cfg.grid.kind,
        "n_points": n_points,
    }
    if cfg.sgd.schedule == "file":
        attrs["schedule_table"] = json.dumps(read_table(cfg.sgd.schedule_file))
    return attrs


def _labelled(cfg: Config, data, coords, attrs, P: int) -> xr.Dataset:
    ds = xr.Dataset(data, coords=coords)
    _describe(ds)
    ds.attrs.update(attrs, **grid_attrs(cfg, P))
    return ds


FINITE_SCALARS = ("eg_mc", "err_test", "loss_train", "err_train", "agree_lin", "mse_lin")


def finite_dataset(
    cfg: Config, cfgs: list[Config], times: np.ndarray, sim: Progress, lin: dict[str, np.ndarray]
) -> xr.Dataset:
    """Label the results of a finite-training-set run (``hmmjax.train.finite``).

    Per member over t: ``eg_mc`` (test, 0.5 MSE), ``err_test``, ``loss_train``,
    ``err_train``, ``agree_lin``, ``mse_lin`` and ``fitted`` (t, sample); per member and
    sample ``t_fitted`` (the time from which the sample stays fitted, NaN if it is not at
    the end). Across members (phenomenon 2): ``fit_all`` (fraction of training samples
    fitted by every member), ``fit_indep`` (the product of the members' fractions: what
    ``fit_all`` would be for independent members), ``fit_ratio`` and its standard error
    under independence ``fit_ratio_se``. Per point: the linear predictor's test errors
    ``eg_lin`` and ``err_lin``.
    """
    coords, grid = grid_placer(cfg)
    h = sim.history
    member = ("member", "t")
    data: dict[str, Any] = {k: grid(h[k], member) for k in FINITE_SCALARS}
    fit = h["fitted"].astype(bool)
    alive = ~sim.dead  # (P, E, n): a diverged member's flags are blank
    data["fitted"] = grid(fit.astype(np.uint8), (*member, "sample"))
    data["t_fitted"] = grid(first_fit_time(fit, times), ("member", "sample"))
    frac_all, expected, ratio = fitted_by_all(fit, member_axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = ratio_stderr(fit, member_axis=1)
    everyone = alive.all(axis=1)
    for name, a in (("fit_all", frac_all), ("fit_indep", expected), ("fit_ratio", ratio),
                    ("fit_ratio_se", se)):  # fmt: skip
        data[name] = grid(np.where(everyone, a, np.nan), ("t",))
    data["eg_lin"] = grid(lin["eg"], ())
    data["err_lin"] = grid(lin["err"], ())
    flag, first = diverged_at(sim.dead, times)
    data.update(diverged=grid(flag, ("member",)), t_diverged=grid(first, ("member",)))
    coords.update(member=np.arange(cfg.run.ensemble), t=times)
    ep = epochs(cfgs, times)
    if ep is not None:
        coords["epoch"] = ("t", ep)
    return _labelled(cfg, data, coords, {"experiment": "finite"}, len(cfgs))


def combine_models(
    cfg: Config, parts: dict[str, xr.Dataset], order: list[int], dim: str = "model"
) -> xr.Dataset:
    """The datasets of the values of a grid over ``dim`` (``model``, ``features``, or P of
    an invariant grid; each run by itself) as one: a ``dim`` dim (product grids, in the
    grid's order of dims) or a ``dim`` coordinate along ``point`` (``order``: the grid's
    point indices in the order of the parts' points). Unit dims of different sizes are
    padded with NaN; the attributes all parts share are kept, and each part's own go to
    ``attrs["by_" + dim]``."""
    sizes = {d: max(p.sizes.get(d, 0) for p in parts.values()) for d in ("k", "l", "m")}
    padded = []
    for p in parts.values():
        pad = {d: (0, n - p.sizes[d]) for d, n in sizes.items() if d in p.dims and n > p.sizes[d]}
        padded.append(p.pad(pad) if pad else p)
    models = list(parts)
    if cfg.grid.kind == "points":
        padded = [p if "point" in p.dims else p.expand_dims("point") for p in padded]
        ds = xr.concat(padded, "point", coords="minimal", compat="override",
                       combine_attrs="drop", data_vars="all")  # fmt: skip
        ds = ds.assign_coords({dim: ("point", [m for m, p in zip(models, padded, strict=True)
                                               for _ in range(p.sizes["point"])])})  # fmt: skip
        ds = ds.isel(point=np.argsort(order, kind="stable"))
    else:
        ds = xr.concat(padded, dim, coords="minimal", compat="override",
                       combine_attrs="drop", data_vars="all")  # fmt: skip
        ds = ds.assign_coords({dim: models}).transpose(*cfg.grid.dims, ...)
    _describe(ds)
    common = ("title", "mode", "precision", "device", "n_devices", "jax_version", "experiment")
    first = next(iter(parts.values())).attrs
    ds.attrs.update({k: first[k] for k in common if k in first})
    # what every part says alike (e.g. the invariant attributes of a split over P)
    ds.attrs.update({k: v for k, v in first.items() if k not in _PER_RUN and k not in ds.attrs
                     and all(_same(p.attrs.get(k), v) for p in parts.values())})  # fmt: skip
    ds.attrs["by_" + dim] = {
        m: {k: v for k, v in p.attrs.items() if k not in (*common, "config", "swept")}
        for m, p in parts.items()
    }
    ds.attrs.update(grid_attrs(cfg, cfg.grid.size))
    return ds


# attributes of one run that a combination does not take from its parts as its own
_PER_RUN = ("config", "swept", "grid_kind", "n_points", "elapsed_s", "plan", "memory_need_gib")


def _same(a, b) -> bool:
    """Whether two attribute values are equal (numbers, strings or arrays; False for
    values numpy cannot compare, e.g. ragged lists)."""
    try:
        return a is not None and bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except ValueError:
        return False


def _over_members(stat, a: np.ndarray) -> np.ndarray:
    """``stat`` (nanmean, nanstd) over the member axis; NaN where all members are NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return stat(a, axis=1)


LONG_NAMES = {
    "eg": "generalisation error from order parameters (docs/theory.md 4)",
    "eg_mc": "Monte-Carlo generalisation error on the test set",
    "eg_sim": "simulation generalisation error (eg where available, else eg_mc)",
    "eg_sim_mean": "ensemble mean of eg_sim",
    "eg_sim_std": "ensemble standard deviation of eg_sim",
    "diverged": "member diverged (non-finite, or eg above run.diverge_eg) and was frozen",
    "t_diverged": "time of the first recording at which the member was flagged",
    "eg_ode": "generalisation error from the ODE (docs/theory.md 5)",
    "diverged_ode": "ODE diverged (non-finite, or eg above run.diverge_eg)",
    "t_diverged_ode": "time of the first save at which the ODE was flagged",
}


def _describe(ds: xr.Dataset) -> None:
    for name, text in LONG_NAMES.items():
        if name in ds:
            ds[name].attrs["long_name"] = text
