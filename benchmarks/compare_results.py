"""Compare two folders of results files variable by variable (a restructuring keeps the
numbers).

    python benchmarks/compare_results.py BEFORE_DIR AFTER_DIR [--attrs]

For every NAME.nc in both folders and every variable and coordinate of either: "identical"
(same dims, same values bit for bit, NaN where NaN), or the largest absolute and relative
difference, or what is missing. ``--attrs`` also lists the attributes that differ (run
times, device and version attributes are skipped). Exit status 0 when every shared
variable is identical, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import xarray as xr

VOLATILE = {"elapsed_s", "device", "jax_version", "n_devices", "plan", "memory_need_gib"}


def _open(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


def compare_arrays(a: xr.DataArray, b: xr.DataArray) -> str:
    """ "identical", or how the two differ."""
    if a.dims != b.dims:
        b = b.transpose(*a.dims) if set(a.dims) == set(b.dims) else b
        if a.dims != b.dims:
            return f"dims differ: {a.dims} vs {b.dims}"
    x, y = np.asarray(a.values), np.asarray(b.values)
    if x.shape != y.shape:
        return f"shapes differ: {x.shape} vs {y.shape}"
    if x.dtype.kind in "fc" or y.dtype.kind in "fc":
        x, y = x.astype(float), y.astype(float)
        same_nan = np.array_equal(np.isnan(x), np.isnan(y))
        if same_nan and np.array_equal(x[~np.isnan(x)], y[~np.isnan(y)]):
            return "identical"
        ok = ~np.isnan(x) & ~np.isnan(y)
        diff = np.abs(x - y)[ok]
        scale = np.maximum(np.abs(x), np.abs(y))[ok]
        rel = np.max(diff / np.where(scale > 0, scale, 1.0)) if diff.size else 0.0
        nan = (
            ""
            if same_nan
            else f", NaN pattern differs ({np.isnan(x).sum()} vs {np.isnan(y).sum()})"
        )
        return f"max |diff| {diff.max() if diff.size else 0.0:.3g}, max rel {rel:.3g}{nan}"
    return "identical" if np.array_equal(x, y) else "values differ"


def compare_files(a: Path, b: Path, attrs: bool) -> tuple[bool, list[str]]:
    da, db = _open(a), _open(b)
    lines, same = [], True
    for name in sorted(set(da.variables) | set(db.variables)):
        if name not in da.variables or name not in db.variables:
            where = "after" if name in db.variables else "before"
            lines.append(f"  {name}: only {where}")
            continue
        verdict = compare_arrays(da[name], db[name])
        same &= verdict == "identical"
        lines.append(f"  {name}: {verdict}")
    if attrs:
        for key in sorted(set(da.attrs) | set(db.attrs)):
            if key in VOLATILE:
                continue
            x, y = da.attrs.get(key), db.attrs.get(key)
            if json.dumps(x, sort_keys=True, default=str) != json.dumps(
                y, sort_keys=True, default=str
            ):
                lines.append(f"  attr {key}: {str(x)[:80]!r} -> {str(y)[:80]!r}")
    return same, lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--attrs", action="store_true", help="list the attributes that differ")
    args = ap.parse_args()
    all_same = True
    names = sorted(
        {p.name for p in args.before.glob("*.nc")} | {p.name for p in args.after.glob("*.nc")}
    )
    for name in names:
        a, b = args.before / name, args.after / name
        if not (a.exists() and b.exists()):
            print(f"{name}: only in {'after' if b.exists() else 'before'}")
            all_same = False
            continue
        same, lines = compare_files(a, b, args.attrs)
        all_same &= same
        print(f"{name}: {'all variables identical' if same else 'DIFFERENT'}")
        for line in lines:
            if args.attrs or "identical" not in line:
                print(line)
    return 0 if all_same else 1


if __name__ == "__main__":
    sys.exit(main())
