"""Checkpoints of the engine: one file format, one place that reads and writes it.

A checkpoint is an ``.npz`` file written atomically after every compiled chunk: the
format, the fingerprint and record of the config it belongs to, the plan (points per
batch, devices), the batch and chunk reached, the members' states (the leaves of the
trainer's state pytree), their divergence flags, the history recorded so far, and the
histories and final states of the finished batches. ``load_checkpoint`` validates a file
before any work: unreadable (truncated, damaged, not an ``.npz``), another format, another
config (naming the keys that differ) or incomplete, it is refused with the way out
(``--fresh``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from hmmjax.config.schema import ConfigError
from hmmjax.config.settings import SCHEDULE_KEYS, Config
from hmmjax.core.files import NpzError, atomic_target, read_npz
from hmmjax.core.tables import read_table
from hmmjax.sweep.plan import Plan

FORMAT = 4  # 1: before the one engine; 2: with final states; 3: with the config and plan;
# 4: lanes of points sharing a data stream (states (L, Q, E, ...), histories by slot)

__all__ = [
    "FORMAT",
    "fingerprint",
    "describe_config",
    "header",
    "checkpoint_path",
    "model_checkpoint",
    "checkpoint_files",
    "save_checkpoint",
    "load_checkpoint",
    "Resume",
    "pack",
    "unpack",
]


def _identity(cfg: Config) -> dict:
    """What a checkpoint must match: the config less output, [optimise], the memory
    budget and the devices (the plan's batch size and device count are checked on their own)."""
    d = cfg.to_dict()
    d.pop("output")
    d.pop("optimise")  # what hmmjax optimise does, not what a run computes
    d["run"].pop("memory_gib")
    d["run"].pop("devices")
    # as before the keys existed, so that older checkpoints resume: no schedule keys for a
    # constant rate, no piecewise keys for the power and file schedules
    kind = cfg.sgd.schedule
    for key, owner in SCHEDULE_KEYS.items():
        if kind == "constant" or (owner == "piecewise" and kind != "piecewise"):
            d["sgd"].pop(key)
    if kind == "constant":
        d["sgd"].pop("schedule")
    elif kind == "file":  # the table, not its file's name
        try:
            d["sgd"]["schedule_file"] = [list(c) for c in read_table(cfg.sgd.schedule_file)]
        except ValueError as e:
            raise ConfigError(f"sgd.schedule_file = {cfg.sgd.schedule_file!r}: {e}") from None
    if cfg.invariant.network == "mlp":  # as before the convolutional network existed
        for key in ("network", "depth", "kernel_size"):
            d["invariant"].pop(key)
    d["invariant"].pop("ntk_max_p")  # analyses after training: not part of the state
    d["invariant"].pop("by_p")  # how a grid is cut into runs: a run's own lanes are the same
    return d


def fingerprint(cfg: Config) -> str:
    """The hash a checkpoint must match to be resumed (``_identity`` of the config)."""
    return hashlib.sha256(describe_config(cfg).encode()).hexdigest()


def describe_config(cfg: Config) -> str:
    """The config a checkpoint records (JSON), to name the keys that differ on resuming."""
    return json.dumps(_identity(cfg), sort_keys=True)


def checkpoint_path(cfg: Config) -> Path:
    """OUT.ckpt.npz next to ``output.out``; OUT.pI.ckpt.npz for process I of several."""
    out = Path(cfg.output.out)
    part = f".p{jax.process_index()}" if jax.process_count() > 1 else ""
    return out.with_name(f"{out.name}{part}.ckpt.npz")


def model_checkpoint(path: Path, model: str) -> Path:
    """The checkpoint of one part of a run: a data model's (or feature matrix's) part of a
    grid over them, or one of the simulations of ``hmmjax optimise`` (``model``: its tag)."""
    return path.with_name(path.name.replace(".ckpt.npz", f".{model}.ckpt.npz"))


def checkpoint_files(path: Path) -> list[Path]:
    """``path`` and its per-model parts (``model_checkpoint``) that exist."""
    parts = path.parent.glob(path.name.replace(".ckpt.npz", ".*.ckpt.npz"))
    return [p for p in (path, *sorted(parts)) if p.exists()]


def save_checkpoint(path: Path, state: dict[str, np.ndarray]) -> None:
    """Write ``state`` (arrays by name) to ``path`` atomically."""
    with atomic_target(path) as tmp, open(tmp, "wb") as fh:  # no copy of it in memory
        np.savez(fh, **state)


def load_checkpoint(path: Path, stamp: str, config: str | None = None) -> dict[str, np.ndarray]:
    """The arrays of the checkpoint at ``path``, validated: readable, written by this
    format, for the config ``stamp`` (``fingerprint``; ``config``: its
    ``describe_config``, to name the keys that differ), and complete. Anything else is a
    ``ConfigError`` with the way out (``--fresh``)."""
    fresh = "run with --fresh to discard it and start afresh"
    try:
        state = read_npz(path)
    except NpzError as err:
        raise ConfigError(f"checkpoint {path} cannot be read ({err}); {fresh}") from None
    if "format" not in state and "fingerprint" not in state:
        raise ConfigError(f"checkpoint {path} is not a checkpoint of hmmjax; {fresh}")
    try:  # format 1, before the one engine, had no "format" key
        found = int(state.get("format", 1)) if np.shape(state.get("format", 1)) == () else -1
    except (TypeError, ValueError):
        found = -1
    if found != FORMAT:
        raise ConfigError(
            f"checkpoint {path} was written by another version of hmmjax (checkpoint format "
            f"{found}, this one reads {FORMAT}); {fresh}"
        )
    if str(state.get("fingerprint")) != stamp:
        raise ConfigError(
            f"checkpoint {path} belongs to a different config"
            + _differences(state.get("config"), config)
            + f"; {fresh}, or run the config that wrote it"
        )
    try:
        unpack(state)
    except (KeyError, ValueError, TypeError) as err:
        raise ConfigError(f"checkpoint {path} is incomplete (no {err}); {fresh}") from None
    return state


def _differences(saved: np.ndarray | None, config: str | None) -> str:
    """ ": sgd.lr (0.5 there, 0.2 here), ..." for the keys of two recorded configs that
    differ (at most 5 named); "" if either is unknown."""
    if saved is None or config is None:
        return ""
    try:
        there, here = json.loads(str(saved)), json.loads(config)
    except ValueError:
        return ""
    flat = [_flatten(there), _flatten(here)]
    keys = sorted(k for k in set(flat[0]) | set(flat[1]) if flat[0].get(k) != flat[1].get(k))
    named = [f"{k} ({_show(flat[0].get(k))} there, {_show(flat[1].get(k))} here)" for k in keys[:5]]
    more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
    return (": " + ", ".join(named) + more) if named else ""


def _flatten(d: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _show(v: object) -> str:
    return "absent" if v is None else json.dumps(v)


class Resume(NamedTuple):
    """Where a checkpoint says to resume: batch ``batch`` at chunk ``chunk``, with the
    current batch's member states (leaves), flags and history when ``chunk > 0``, and
    the finished batches' histories and final states."""

    plan: tuple[int, int]  # (lanes per batch, devices) of the run that wrote it
    batch: int
    chunk: int
    leaves: list[np.ndarray] | None
    dead: np.ndarray | None
    history: dict[str, np.ndarray] | None
    done: dict[str, np.ndarray] | None
    final: list[np.ndarray] | None


def header(stamp: str, config: str, plan: Plan) -> dict[str, np.ndarray]:
    """What every checkpoint of a run starts with: the format, the config's fingerprint
    and record (``describe_config``), and the plan's (batch, devices)."""
    return {
        "format": np.asarray(FORMAT),
        "fingerprint": np.asarray(stamp),
        "config": np.asarray(config),
        "plan": np.asarray([plan.batch, plan.devices]),
        # the lanes and this process's share of the grid (multi-host runs)
        "share": np.asarray([plan.n_lanes, jax.process_index(), jax.process_count()]),
    }


def pack(head: dict[str, np.ndarray], batch: int, chunk: int, states: Any, dead: Any,
         history: Any, done: Any, final: Any) -> dict[str, np.ndarray]:  # fmt: skip
    """The arrays of a checkpoint after ``head`` (``header``; see ``Resume`` for what each
    is; None: absent)."""
    out: dict[str, np.ndarray] = {**head, "batch": np.asarray(batch), "chunk": np.asarray(chunk)}
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
    batch, devices = (int(x) for x in state["plan"])
    return Resume(
        plan=(batch, devices),
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
