"""Checkpoints of the engine: one file format, one place that reads and writes it.

A checkpoint is an ``.npz`` file written atomically after every compiled chunk: the
fingerprint of the config and plan it belongs to, the batch and chunk reached, the
members' states (the leaves of the trainer's state pytree), their divergence flags, the
history recorded so far, and the histories and final states of the finished batches.
``load_checkpoint`` refuses a file written for another config or plan.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from hmmjax.config.schema import ConfigError
from hmmjax.config.settings import Config
from hmmjax.core.files import atomic_target
from hmmjax.sweep.plan import Plan

FORMAT = 2  # 1: before the one engine (no format key); 2: pack/unpack with final states

__all__ = [
    "FORMAT",
    "fingerprint",
    "checkpoint_path",
    "model_checkpoint",
    "checkpoint_files",
    "save_checkpoint",
    "load_checkpoint",
    "Resume",
    "pack",
    "unpack",
]


def fingerprint(cfg: Config, plan: Plan | None = None) -> str:
    """What a checkpoint must match to be resumed: the config (less output and the memory
    budget) and the plan, if any."""
    d = cfg.to_dict()
    d.pop("output")
    d["run"].pop("memory_gib")
    if plan is not None:
        d["_plan"] = [plan.batch, plan.devices]
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


def checkpoint_path(cfg: Config) -> Path:
    """OUT.ckpt.npz next to ``output.out``; OUT.pI.ckpt.npz for process I of several."""
    out = Path(cfg.output.out)
    part = f".p{jax.process_index()}" if jax.process_count() > 1 else ""
    return out.with_name(f"{out.name}{part}.ckpt.npz")


def model_checkpoint(path: Path, model: str) -> Path:
    """The checkpoint of one data model's part of a grid over models."""
    return path.with_name(path.name.replace(".ckpt.npz", f".{model}.ckpt.npz"))


def checkpoint_files(path: Path) -> list[Path]:
    """``path`` and its per-model parts (``model_checkpoint``) that exist."""
    parts = path.parent.glob(path.name.replace(".ckpt.npz", ".*.ckpt.npz"))
    return [p for p in (path, *sorted(parts)) if p.exists()]


def save_checkpoint(path: Path, state: dict[str, np.ndarray]) -> None:
    """Write ``state`` (arrays by name) to ``path`` atomically."""
    with atomic_target(path) as tmp, open(tmp, "wb") as fh:  # no copy of it in memory
        np.savez(fh, **state)


def load_checkpoint(path: Path, stamp: str) -> dict[str, np.ndarray] | None:
    """The arrays of the checkpoint at ``path`` (None if there is none); a checkpoint
    with another ``stamp`` (``fingerprint``) is refused with a ``ConfigError``."""
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        state = {k: z[k] for k in z.files}
    if int(state.get("format", 1)) != FORMAT:
        raise ConfigError(
            f"checkpoint {path} was written by another version of hmmjax (checkpoint format "
            f"{int(state.get('format', 1))}, this one reads {FORMAT}); run with --fresh (or "
            "delete it) to start afresh"
        )
    if str(state.get("fingerprint")) != stamp:
        raise ConfigError(
            f"checkpoint {path} belongs to a different config or plan; run with --fresh "
            "(or delete it) to start afresh, or run the config that wrote it"
        )
    return state


class Resume(NamedTuple):
    """Where a checkpoint says to resume: batch ``batch`` at chunk ``chunk``, with the
    current batch's member states (leaves), flags and history when ``chunk > 0``, and
    the finished batches' histories and final states."""

    batch: int
    chunk: int
    leaves: list[np.ndarray] | None
    dead: np.ndarray | None
    history: dict[str, np.ndarray] | None
    done: dict[str, np.ndarray] | None
    final: list[np.ndarray] | None


def pack(stamp: str, batch: int, chunk: int, states: Any, dead: Any, history: Any,
         done: Any, final: Any) -> dict[str, np.ndarray]:  # fmt: skip
    """The arrays of a checkpoint (see ``Resume`` for what each is; None: absent)."""
    out: dict[str, np.ndarray] = {
        "format": np.asarray(FORMAT),
        "fingerprint": np.asarray(stamp),
        "batch": np.asarray(batch),
        "chunk": np.asarray(chunk),
    }
    if states is not None:
        out.update({f"net_{i}": np.asarray(a) for i, a in enumerate(jax.tree.leaves(states))})
        out["net_dead"] = np.asarray(dead)
        out.update({f"cur_{k}": a for k, a in history.items()})
    if done is not None:
        out.update({f"done_{k}": a for k, a in done.items()})
        if final is not None:
            leaves = enumerate(jax.tree.leaves(final))
            out.update({f"final_{i}": np.asarray(a) for i, a in leaves})
    return out


def unpack(state: dict[str, np.ndarray]) -> Resume:
    """The ``Resume`` of a loaded checkpoint."""
    chunk = int(state["chunk"])
    leaves = _numbered(state, "net") if chunk > 0 else None
    done = _prefixed(state, "done") or None
    return Resume(
        batch=int(state["batch"]),
        chunk=chunk,
        leaves=leaves,
        dead=state["net_dead"] if chunk > 0 else None,
        history=_prefixed(state, "cur") if chunk > 0 else None,
        done=done,
        final=_numbered(state, "final") if done is not None else None,
    )


def _prefixed(state: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) + 1 :]: a for k, a in state.items() if k.startswith(f"{prefix}_")}


def _numbered(state: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    n = sum(1 for k in state if k.startswith(f"{prefix}_") and k[len(prefix) + 1 :].isdigit())
    return [state[f"{prefix}_{i}"] for i in range(n)]
