"""The optimised schedule against the best constant rate, in simulation (``hmmjax
optimise``): final eg of both ensembles, their standard errors, and the gain.

The two ensembles start from the same initial weights and see the same data streams
(common random numbers), so member m of one and member m of the other differ only by the
schedule: the gain is measured member by member (``gain_se`` from the paired
differences), and also as if the ensembles were independent (``gain_se_unpaired``, the
two standard errors added in quadrature, larger when the pairs are correlated).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["schedule_gain"]


def schedule_gain(ds: xr.Dataset) -> dict[str, float]:
    """At the last time: the mean eg of the simulations with the optimised schedule
    (``opt``) and the best constant rate (``const``) with their standard errors over
    members, the gain const - opt with its paired and unpaired standard errors, and the
    gain in units of each (``z``, ``z_unpaired``). Members that diverged (NaN) are left
    out of both; with fewer than 2 left, the standard errors are NaN."""
    opt = np.asarray(ds["eg_sim_opt"].isel(t=-1), np.float64)
    const = np.asarray(ds["eg_sim_const"].isel(t=-1), np.float64)
    keep = np.isfinite(opt) & np.isfinite(const)
    opt, const = opt[keep], const[keep]
    n = int(keep.sum())

    def se(a):  # NaN with fewer than 2 members
        return float(np.std(a, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")

    def ratio(a, b):
        return a / b if b > 0 else float("nan")

    gain = const - opt
    paired, unpaired = se(gain), float(np.hypot(se(opt), se(const)))
    mean = float(np.mean(gain)) if n else float("nan")
    return {
        "eg_opt": float(np.mean(opt)) if n else float("nan"),
        "eg_opt_se": se(opt),
        "eg_const": float(np.mean(const)) if n else float("nan"),
        "eg_const_se": se(const),
        "gain": mean,
        "gain_se": paired,
        "gain_se_unpaired": unpaired,
        "z": ratio(mean, paired),
        "z_unpaired": ratio(mean, unpaired),
        "members": n,
    }
