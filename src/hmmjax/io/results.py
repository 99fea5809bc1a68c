"""Results on disk: labelled datasets as netCDF files, written atomically.

A file is never half-written: data go to a temporary file in the target's directory,
are flushed to disk, and then replace the target in one ``os.replace``. If anything
fails on the way, an existing file at the target is left as it was.

netCDF attributes hold only strings, numbers and 1-D arrays of them. Other attribute
values (dicts such as the config, booleans, None, nested lists) are stored as JSON
strings, and their names are listed in the attribute ``hmmjax_json_attrs`` so that
``read_dataset`` gives them back as they were.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from hmmjax.core.files import atomic_target

__all__ = ["ENGINE", "JSON_ATTRS", "write_dataset", "read_dataset", "config_dict"]


ENGINE = "h5netcdf"


JSON_ATTRS = "hmmjax_json_attrs"  # names of the attributes stored as JSON text


def write_dataset(ds: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to a netCDF file (engine h5netcdf) atomically; return the path.

    ``ds`` itself is not changed; attribute values netCDF cannot hold are stored as JSON.
    """
    path = Path(path)
    out = ds.copy(deep=False)
    out.attrs = _encode_attrs(ds.attrs, "the dataset")
    for name, var in out.variables.items():
        var.attrs = _encode_attrs(ds.variables[name].attrs, f"variable {name!r}")
    with atomic_target(path) as tmp:
        out.to_netcdf(tmp, engine=ENGINE)
    return path


def read_dataset(path: str | os.PathLike) -> xr.Dataset:
    """Read a file written by ``write_dataset`` into memory (the file is closed again).

    ``FileNotFoundError`` if there is no file; ``ValueError`` (one line naming the file)
    if it is not a netCDF-4 file that can be read in full, with readable JSON attributes.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"results file {path} not found")
    bad = f"{path} is not a netCDF results file written by hmmjax"
    try:  # phony_dims: plain HDF5 data sets get dims (and no warning) instead of failing
        with xr.open_dataset(path, engine=ENGINE, phony_dims="sort") as ds:
            ds = ds.load()
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise ValueError(f"{bad} ({_unreadable(path, err)})") from None
    try:
        ds.attrs = _decode_attrs(ds.attrs)
        for name, var in ds.variables.items():
            var.attrs = _decode_attrs(var.attrs, f" of variable {name!r}")
    except ValueError as err:
        raise ValueError(f"{bad} ({err})") from None
    return ds


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # netCDF-4 files are HDF5 files


def _unreadable(path: Path, err: BaseException) -> str:
    """Why ``path`` could not be read, in words rather than in HDF5's."""
    if path.is_dir():
        return "it is a folder"
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        return f"cannot read it: {e.strerror or e}"
    if not head:
        return "the file is empty"
    if head[:3] == b"CDF":
        return "it is a netCDF-3 file; hmmjax writes netCDF-4"
    if head != _HDF5_SIGNATURE:
        return "it does not start with the netCDF-4/HDF5 signature"
    text = " ".join(str(err).split()) or type(err).__name__
    return f"a damaged or truncated netCDF-4 file: {text}"


def config_dict(ds: xr.Dataset) -> dict[str, Any] | None:
    """The config a dataset was made with, as a dict (from a dict or a JSON attribute)."""
    cfg = ds.attrs.get("config")
    if isinstance(cfg, str):
        cfg = json.loads(cfg)
    return dict(cfg) if isinstance(cfg, Mapping) else None


def _number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _storable(value: Any) -> bool:
    """Whether netCDF can hold ``value`` as an attribute as it is."""
    if isinstance(value, str) or _number(value):
        return True
    if isinstance(value, np.ndarray):
        return value.ndim == 1 and value.dtype.kind in "iuf"
    if isinstance(value, list | tuple) and value:
        if all(isinstance(v, str) for v in value):
            return True
        return all(_number(v) for v in value)
    return False


def _to_json(value: Any) -> Any:
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot store {type(value).__name__} {value!r} as JSON")


def _encode_attrs(attrs: Mapping[str, Any], where: str) -> dict[str, Any]:
    out, encoded = {}, []
    for name, value in attrs.items():
        if name == JSON_ATTRS:
            continue
        if _storable(value):
            out[name] = value
            continue
        try:
            out[name] = json.dumps(value, default=_to_json)
        except (TypeError, ValueError) as err:
            raise TypeError(f"attribute {name!r} of {where} cannot be stored: {err}") from None
        encoded.append(name)
    if encoded:
        out[JSON_ATTRS] = json.dumps(encoded)
    return out


def _decode_attrs(attrs: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """The attributes with those listed in ``JSON_ATTRS`` decoded; ``ValueError`` naming
    the attribute (``where``: e.g. " of variable 'eg'") if one is not JSON."""
    out = dict(attrs)
    listed = out.pop(JSON_ATTRS, "[]")
    try:
        names = json.loads(listed)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise TypeError("not a list of names")
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"attribute {JSON_ATTRS}{where} = {str(listed)[:60]!r} is not a JSON list of "
            f"attribute names: {err}"
        ) from None
    for name in names:
        if name in out:
            try:
                out[name] = json.loads(out[name])
            except (TypeError, ValueError) as err:
                raise ValueError(
                    f"attribute {name!r}{where} = {str(out[name])[:60]!r}, listed in "
                    f"{JSON_ATTRS}, is not JSON: {err}"
                ) from None
    return out
