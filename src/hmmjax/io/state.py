"""State files: the initial order parameters of a network on hidden-manifold data (.npz).

Keys (docs/theory.md section 3; the format of the published integrator's reference case in
tests/data and of the ODE's input):

    rho (D,), sigma (K, K, D), r (K, M, D), W (K, K), v (K,), A (M,), T (M, M),
    Ttilde (M, M), N, D, and for a full restart and the exact teacher term
    beta (M, D), F (D, N), theta (M, D), w (K, N).

Everything is computed and stored in float64. Files are written atomically.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from hmmjax.core.files import atomic_write_bytes
from hmmjax.data.gaussian import HiddenManifold
from hmmjax.models.two_layer import TwoLayer
from hmmjax.observables.order_params import spectral_arrays

__all__ = ["REQUIRED_KEYS", "OPTIONAL_KEYS", "state_arrays", "save_state", "load_state"]


REQUIRED_KEYS = ("rho", "sigma", "r", "W", "v", "A", "T", "Ttilde", "N", "D")


OPTIONAL_KEYS = ("beta", "F", "theta", "w")


def state_arrays(student: TwoLayer, model: HiddenManifold) -> dict[str, np.ndarray]:
    """The state-file arrays of ``student`` on ``model`` (teacher on c), in float64."""
    if not isinstance(model, HiddenManifold) or model.teacher_on != "c":
        raise TypeError(
            "state files describe hidden-manifold data with the teacher on c "
            f"(data.model = 'hmm' or 'get'); got {type(model).__name__}"
        )
    with jax.enable_x64(True):
        w = jnp.asarray(student.w, jnp.float64)
        F = jnp.asarray(model.F, jnp.float64)
        theta = jnp.asarray(model.teacher.w, jnp.float64)
        D, N = F.shape
        out = {
            **spectral_arrays(w, F, theta),
            "v": jnp.asarray(student.v, jnp.float64),
            "A": jnp.asarray(model.teacher.v, jnp.float64),
            "F": F,
            "theta": theta,
            "w": w,
        }
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
    """Read a state file and check its keys and shapes; returns a dict of arrays."""
    with np.load(path) as f:
        state = {k: f[k] for k in f.files}
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise ValueError(f"state file {path}: missing keys {missing}; required {REQUIRED_KEYS}")
    K, M, D = state["r"].shape
    expected = {
        "rho": (D,),
        "sigma": (K, K, D),
        "W": (K, K),
        "v": (K,),
        "A": (M,),
        "T": (M, M),
        "Ttilde": (M, M),
        "beta": (M, D),
    }
    for key, shape in expected.items():
        if key in state and state[key].shape != shape:
            raise ValueError(
                f"state file {path}: {key} has shape {state[key].shape}, expected {shape} "
                f"(K={K}, M={M}, D={D} from r)"
            )
    if int(state["D"]) != D:
        raise ValueError(f"state file {path}: D={int(state['D'])} but r has {D} eigenvalues")
    return state
