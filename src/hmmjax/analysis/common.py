"""Helpers shared by the analysis modules (NumPy and xarray only): means over the
ensemble dims, last finite values of diverged runs, grid points and their keys, number
formatting, silencing numpy's all-NaN warnings, and the lines that tell a user which
runs diverged.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "ENSEMBLE_DIMS",
    "quiet",
    "format_value",
    "point_key",
    "grid_points",
    "ensemble_dims",
    "ensemble_mean",
    "last_finite",
    "divergence_notes",
]


ENSEMBLE_DIMS = ("member", "seed")  # averaged over; every other extra dim is one curve


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence numpy's warnings about all-NaN slices (runs diverged from the start)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def format_value(value, digits: int = 6) -> str:
    """A number with ``digits`` significant digits (``:g``), anything else as ``str``."""
    return f"{value:.{digits}g}" if isinstance(value, int | float | np.number) else str(value)


def point_key(point: dict[str, Any]) -> str:
    """``"model=hmm,K=4"`` (``"all"`` without axes): the prefix of summary keys."""
    return ",".join(f"{a}={format_value(v)}" for a, v in point.items()) or "all"


def grid_points(ds: xr.Dataset, dims: Sequence[str]) -> list[dict[str, Any]]:
    """Every combination of the ``dims`` values, in C order (one empty dict without dims)."""
    values = [(ds[d].values if d in ds.coords else np.arange(ds.sizes[d])).tolist() for d in dims]
    return [dict(zip(dims, v, strict=True)) for v in itertools.product(*values)]


def ensemble_dims(da: xr.DataArray) -> list[str]:
    """Those of :data:`ENSEMBLE_DIMS` that are dims of ``da``."""
    return [d for d in ENSEMBLE_DIMS if d in da.dims]


def ensemble_mean(da: xr.DataArray) -> xr.DataArray:
    """Mean over members and seeds, skipping NaN (members that diverged)."""
    with quiet():
        return da.mean(ensemble_dims(da), skipna=True)


def _last_finite_values(a: np.ndarray) -> np.ndarray:
    """The last finite value along the last axis of ``a``; NaN where there is none."""
    ok = np.isfinite(a)
    index = a.shape[-1] - 1 - np.argmax(ok[..., ::-1], axis=-1)
    last = np.take_along_axis(a, index[..., None], axis=-1)[..., 0]
    return np.where(ok.any(axis=-1), last, np.nan)


def last_finite(da: xr.DataArray) -> xr.DataArray:
    """The last finite value of ``da`` over time (before it diverged)."""
    return xr.apply_ufunc(_last_finite_values, da.astype(float), input_core_dims=[["t"]])


def _first_time(ds: xr.Dataset, name: str, flag: np.ndarray) -> str:
    """`` (first at t = ...)`` from the variable ``name`` (times), or nothing."""
    if name not in ds or not flag.any():
        return ""
    with quiet():
        first = np.nanmin(np.asarray(ds[name], dtype=float)[flag])
    return f" (the first at t = {first:.4g})" if np.isfinite(first) else ""


def _solvers_ok(attrs: dict[str, Any]) -> bool:
    """No ``ode_ok = 0`` in ``attrs`` nor in the attributes of a grid run in parts
    (``by_model``, ``by_features``, ...: one dict a part, JSON in a file read back)."""
    if attrs.get("ode_ok", 1) == 0:
        return False
    for key, parts in attrs.items():
        if not key.startswith("by_"):
            continue
        if isinstance(parts, str):
            parts = json.loads(parts)
        if isinstance(parts, dict) and not all(
            _solvers_ok(p) for p in parts.values() if isinstance(p, dict)
        ):
            return False
    return True


def divergence_notes(ds: xr.Dataset) -> list[str]:
    """One line for each kind of failure that a results Dataset of ``simulate`` records:
    members that diverged (``diverged``), grid points whose ODE diverged
    (``diverged_ode``), an adaptive ODE solver that stopped before the end
    (``ode_ok = 0``). Empty when every run reached its end."""
    notes = []
    if "diverged" in ds:
        flag = np.asarray(ds["diverged"], dtype=bool)
        if flag.any():
            notes.append(
                f"{int(flag.sum())} of {flag.size} students diverged"
                f"{_first_time(ds, 't_diverged', flag)}: their values are NaN from then on "
                "(the variables diverged, t_diverged; a smaller sgd.lr may help)"
            )
    if "diverged_ode" in ds:
        flag = np.asarray(ds["diverged_ode"], dtype=bool)
        if flag.any():
            where = f" at {int(flag.sum())} of {flag.size} grid points" if flag.size > 1 else ""
            notes.append(
                f"the ODE diverged{where}{_first_time(ds, 't_diverged_ode', flag)}: eg_ode "
                "is NaN from then on (diverged_ode, t_diverged_ode)"
            )
    if not _solvers_ok(ds.attrs):
        notes.append(
            "the adaptive ODE solver (ode.solver) stopped before the end of the run at some "
            "grid point (ode_ok = 0): the ODE diverged or became too stiff there"
        )
    return notes
