"""State files: the initial order parameters of a network on hidden-manifold data (.npz).

Keys (docs/theory.md section 3; the format of the published integrator's reference case in
tests/data and of the ODE's input):

    rho (D,), sigma (K, K, D), r (K, M, D), W (K, K), v (K,), A (M,), T (M, M),
    Ttilde (M, M), N, D, and for a full restart and the exact teacher term
    beta (M, D), F (D, N), theta (M, D), w (K, N).

F is stored for a Gaussian (dense) feature matrix only: a structured one
(``data.features = "dct"`` or ``"hadamard"``) is never formed, and its spectrum is the
single point rho = 1 (every eigenvalue of F F^T / N is 1). Such a file holds everything
the ODE needs (and w, theta) but not F: it cannot rebuild the data model for a restart.

Everything is computed and stored in float64. Files are written atomically.

``load_state`` refuses, in one line naming the file, anything but an .npz file of exactly
these keys with N, D integer scalars >= 1 and every array finite floating point of the
shape ``SHAPES`` gives (``check_state``, which checks a dict of arrays on its own).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hmmjax.core.files import NpzError, atomic_write_bytes, read_npz
from hmmjax.data.gaussian import HiddenManifold
from hmmjax.models.two_layer import TwoLayer
from hmmjax.observables.order_params import spectral_arrays

__all__ = [
    "REQUIRED_KEYS",
    "OPTIONAL_KEYS",
    "SHAPES",
    "state_arrays",
    "save_state",
    "load_state",
    "check_state",
]


REQUIRED_KEYS = ("rho", "sigma", "r", "W", "v", "A", "T", "Ttilde", "N", "D")


OPTIONAL_KEYS = ("beta", "F", "theta", "w")


# the shape of each key in terms of K (from v), M (from A), D and N (the scalars)
SHAPES: dict[str, tuple[str, ...]] = {
    "rho": ("D",),
    "sigma": ("K", "K", "D"),
    "r": ("K", "M", "D"),
    "W": ("K", "K"),
    "v": ("K",),
    "A": ("M",),
    "T": ("M", "M"),
    "Ttilde": ("M", "M"),
    "N": (),
    "D": (),
    "beta": ("M", "D"),
    "F": ("D", "N"),
    "theta": ("M", "D"),
    "w": ("K", "N"),
}


def state_arrays(student: TwoLayer, model: HiddenManifold) -> dict[str, np.ndarray]:
    """The state-file arrays of ``student`` on ``model`` (teacher on c), in float64."""
    if not isinstance(model, HiddenManifold) or model.teacher_on != "c":
        raise TypeError(
            "state files describe hidden-manifold data with the teacher on c "
            f"(data.model = 'hmm' or 'get'); got {type(model).__name__}"
        )
    with jax.enable_x64(True):
        w = jnp.asarray(student.w, jnp.float64)
        F = model.features.astype(jnp.float64)
        theta = jnp.asarray(model.teacher.w, jnp.float64)
        D, N = F.shape
        out = {
            **spectral_arrays(w, F, theta),
            "v": jnp.asarray(student.v, jnp.float64),
            "A": jnp.asarray(model.teacher.v, jnp.float64),
            "theta": theta,
            "w": w,
        }
        if not F.orthogonal:  # a structured F is not stored (its spectrum is one point)
            out["F"] = F.dense()
        out = {k: np.asarray(a) for k, a in out.items()}
    out["N"] = np.int64(N)
    out["D"] = np.int64(D)
    return out


def save_state(path: str | os.PathLike, student: TwoLayer, model: HiddenManifold) -> Path:
    """Write the state file of ``student`` on ``model`` to ``path`` (atomically)."""
    buf = io.BytesIO()
    np.savez(buf, **state_arrays(student, model))
    return atomic_write_bytes(path, buf.getvalue())


def load_state(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a state file and check it (``check_state``); returns a dict of arrays.

    ``ValueError`` with one line naming the file for anything but a readable state file
    whose arrays fit together; ``FileNotFoundError`` if there is no file.
    """
    where = f"state file {path}"
    try:
        state = read_npz(path)
    except NpzError as err:
        if err.array is not None:
            raise ValueError(f"{where}: cannot read {err.array} ({err.reason}); {_HINT}") from None
        raise ValueError(
            f"{where} is not a readable .npz state file ({err.reason}); {_HINT}"
        ) from None
    check_state(state, where)
    return state


def check_state(state: Mapping[str, Any], where: str = "state") -> None:
    """Raise ``ValueError`` (one line starting with ``where``) unless ``state`` holds
    exactly the keys of a state file (``REQUIRED_KEYS``, any of ``OPTIONAL_KEYS``), N and D
    as integer scalars >= 1, every other value a finite floating-point array of the shape
    ``SHAPES`` gives in terms of K (from v), M (from A), D and N, and rho >= 0 (up to
    rounding). It needs no file: generated states (tests) are checked the same way."""
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise ValueError(f"{where}: missing keys {missing}; required {list(REQUIRED_KEYS)}")
    unknown = [k for k in state if k not in SHAPES]
    if unknown:
        raise ValueError(
            f"{where}: unknown keys {unknown}; allowed {list(REQUIRED_KEYS + OPTIONAL_KEYS)}"
        )
    arrays = {k: np.asarray(a) for k, a in state.items()}
    sizes: dict[str, int] = {}
    for key in ("N", "D"):
        a = arrays[key]
        if a.shape != () or a.dtype.kind not in "iu":
            raise ValueError(
                f"{where}: {key} is {_describe(a)}, expected an integer scalar "
                f"({'inputs' if key == 'N' else 'latent dimensions'})"
            )
        if int(a) < 1:
            raise ValueError(f"{where}: {key} = {int(a)}, expected {key} >= 1")
        sizes[key] = int(a)
    for key, a in arrays.items():
        if key not in sizes and a.dtype.kind != "f":
            raise ValueError(
                f"{where}: {key} has dtype {a.dtype}, expected floating-point numbers (float64)"
            )
    for key, size, units in (("v", "K", "student"), ("A", "M", "teacher")):
        a = arrays[key]
        if a.ndim != 1 or a.shape[0] < 1:
            raise ValueError(
                f"{where}: {key} has shape {a.shape}, expected ({size},) with {size} >= 1 "
                f"(the second-layer weights of the {units} units)"
            )
        sizes[size] = a.shape[0]
    known = f"K = {sizes['K']} from v, M = {sizes['M']} from A, D = {sizes['D']}, N = {sizes['N']}"
    for key, dims in SHAPES.items():
        if key not in arrays or not dims:
            continue
        expected = tuple(sizes[d] for d in dims)
        if arrays[key].shape != expected:
            names = "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
            raise ValueError(
                f"{where}: {key} has shape {arrays[key].shape}, expected {names} = {expected} "
                f"({known})"
            )
    for key, a in arrays.items():
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        if bad:
            raise ValueError(
                f"{where}: {key} has non-finite values ({bad} of {a.size} are NaN or inf)"
            )
    rho = arrays["rho"]
    if rho.min() < -1e-8 * np.abs(rho).max():  # a rounding residue of a zero eigenvalue is fine
        raise ValueError(
            f"{where}: rho has negative values (the least is {rho.min():.6g}); expected the "
            "eigenvalues of F F^T / N, all >= 0"
        )


_HINT = "write it with hmmjax.io.save_state"


def _describe(a: np.ndarray) -> str:
    if a.shape == ():
        return f"{a.item()!r} of dtype {a.dtype}"
    return f"an array of shape {a.shape} and dtype {a.dtype}"
