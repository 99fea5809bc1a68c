"""Helpers shared by the analysis modules (NumPy and xarray only): means over the
ensemble dims, last finite values of diverged runs, grid points and their keys, number
formatting, and silencing numpy's all-NaN warnings.
"""

from __future__ import annotations

import contextlib
import itertools
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
