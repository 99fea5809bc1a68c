"""Checkpoints of the engine: one file format, one place that reads and writes it.

A checkpoint is an ``.npz`` file written atomically after every compiled chunk: the
format, the fingerprint and record of the config it belongs to, the plan (points per
batch, devices), the batch and chunk reached, the members' states (the leaves of the
trainer's state pytree), their divergence flags, the history recorded so far, and the
histories and final states of the finished batches. ``load_checkpoint`` validates a file
before any work: unreadable (truncated, damaged, not an ``.npz``), another format, another
config (naming the keys that differ), incomplete or inconsistent (indices out of range),
it is refused with the way out (``--fresh``); ``check_resume`` then checks it against the
run that resumes it (its plan, its students' states, its measurements).
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
    "save_checkpoint",
    "load_checkpoint",
    "check_resume",
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


def save_checkpoint(path: Path, state: dict[str, np.ndarray]) -> None:
    """Write ``state`` (arrays by name) to ``path`` atomically."""
    with atomic_target(path) as tmp, open(tmp, "wb") as fh:  # no copy of it in memory
        np.savez(fh, **state)


def load_checkpoint(path: Path, stamp: str, config: str | None = None) -> dict[str, np.ndarray]:
    """The arrays of the checkpoint at ``path``, validated: readable, written by this
    format, for the config ``stamp`` (``fingerprint``; ``config``: its
    ``describe_config``, to name the keys that differ), and complete. Anything else is a
    ``ConfigError`` with the way out (``--fresh``)."""
    fresh = _FRESH
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
    except _Inconsistent as err:
        raise ConfigError(f"checkpoint {path} is inconsistent: {err}; {fresh}") from None
    except (KeyError, ValueError, TypeError) as err:
        raise ConfigError(f"checkpoint {path} is incomplete (no {err}); {fresh}") from None
    return state


_FRESH = "run with --fresh to discard it and start afresh"


class _Inconsistent(ValueError):
    """What makes a checkpoint's arrays disagree with each other or with the run."""


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
    """The ``Resume`` of a loaded checkpoint; ``_Inconsistent`` if its batch and chunk
    are not indices (whole numbers >= 0) or its plan not (lanes per batch, devices), the
    first a multiple of the second."""
    chunk = _index(state, "chunk")
    leaves = _numbered(state, "net") if chunk > 0 else None
    done = _prefixed(state, "done") or None
    plan = np.asarray(state["plan"])
    if plan.shape != (2,) or plan.dtype.kind not in "iu" or min(plan) < 1 or plan[0] % plan[1]:
        raise _Inconsistent(
            f"plan = {plan.tolist()}, expected [lanes per batch, devices]: whole numbers >= 1, "
            "the first a multiple of the second"
        )
    batch, devices = (int(x) for x in plan)
    return Resume(
        plan=(batch, devices),
        batch=_index(state, "batch"),
        chunk=chunk,
        leaves=leaves,
        dead=state["net_dead"] if chunk > 0 else None,
        history=_prefixed(state, "cur") if chunk > 0 else None,
        done=done,
        final=_numbered(state, "final") if done is not None else None,
    )


def check_resume(resume: Resume, path: Path | None, *, batch: int, n_batches: int,
                 n_chunks: int, chunk: int, students: Any, measured: dict[str, Any],
                 keep_final: bool) -> None:  # fmt: skip
    """Refuse (``ConfigError``, with the way out) a checkpoint (at ``path``) that does not
    fit the run resuming it: its batch and chunk beyond the run's ``n_batches`` batches
    (of ``batch`` lanes) and the ``n_chunks`` chunks (of ``chunk`` intervals) of a batch,
    or its states (the members' leaves, flags) or histories (records: one at the start,
    ``chunk`` per chunk done) not of the shapes of the run's ``students`` (leaves
    (L, Q, E, ...), arrays or their shapes) and ``measured`` (one measurement of them by
    name, leaves (L, Q, E, ...)); the finished batches' final states too when the run
    keeps them (``keep_final``)."""
    try:
        _check_resume(resume, batch, n_batches, n_chunks, chunk, students, measured,
                      keep_final)  # fmt: skip
    except _Inconsistent as err:
        where = "the checkpoint" if path is None else f"checkpoint {path}"
        raise ConfigError(f"{where} is inconsistent: {err}; {_FRESH}") from None


def _check_resume(resume: Resume, batch: int, n_batches: int, n_chunks: int, chunk: int,
                  students: Any, measured: dict[str, Any], keep_final: bool) -> None:  # fmt: skip
    b, c = resume.batch, resume.chunk
    if b >= n_batches:
        raise _Inconsistent(
            f"batch {b}, but this run has {n_batches} batch(es) (0 .. {n_batches - 1})"
        )
    if c > n_chunks:
        raise _Inconsistent(
            f"chunk {c}, but a batch of this run has {n_chunks} chunk(s) (0 .. {n_chunks} done)"
        )
    if b > 0 and resume.done is None:
        raise _Inconsistent(f"batch {b}, but no history of the batches before it (done_*)")
    if b == 0 and resume.done is not None:
        raise _Inconsistent("batch 0, but a history of finished batches (done_*)")
    like = jax.tree.leaves(students)
    L, Q, E = like[0].shape[:3]
    if c > 0:
        _check_leaves(resume.leaves, "net", [(batch, *a.shape[1:]) for a in like], like)
        dead = np.asarray(resume.dead)
        if dead.shape != (batch, Q, E) or dead.dtype != bool:
            raise _Inconsistent(
                f"net_dead is {_describe(dead)}, this run needs {(batch, Q, E)} bool"
            )
        records = f"{c} chunk(s) done need"
        _check_history(resume.history, "cur", measured, batch * Q, E, 1 + c * chunk, records,
                       chunk)  # fmt: skip
    if resume.done is not None:
        slots = min(b * batch, L) * Q  # the real slots of the finished batches
        records = "a finished batch has"
        _check_history(resume.done, "done", measured, slots, E, 1 + n_chunks * chunk, records,
                       chunk)  # fmt: skip
        if keep_final:
            _check_leaves(resume.final, "final", [(slots, *a.shape[2:]) for a in like], like)


def _check_leaves(leaves: list[np.ndarray] | None, prefix: str, shapes: list[tuple],
                  like: list[Any]) -> None:  # fmt: skip
    """The checkpoint's ``prefix``_0, ... against the state leaves ``like`` (their dtypes)
    in the ``shapes`` the run needs."""
    leaves = leaves or []
    if len(leaves) != len(shapes):
        raise _Inconsistent(
            f"{len(leaves)} state array(s) {prefix}_0 .., but the students of this run have "
            f"{len(shapes)}"
        )
    for i, (a, shape, b) in enumerate(zip(leaves, shapes, like, strict=True)):
        a = np.asarray(a)
        if a.shape != shape or a.dtype != np.dtype(b.dtype):
            raise _Inconsistent(
                f"{prefix}_{i} is {_describe(a)}, this run needs {shape} {np.dtype(b.dtype)}"
            )


def _check_history(history: dict[str, np.ndarray] | None, prefix: str,
                   measured: dict[str, Any], slots: int, members: int, records: int,
                   needing: str, chunk: int) -> None:  # fmt: skip
    """A history (``prefix``_NAME: (slots, members, records, ...)) against the run's
    measurements (``measured``, leaves (L, Q, E, ...)) and divergence flags ("dead")."""
    history = history or {}
    expected = {k: (slots, members, records, *np.shape(m)[3:]) for k, m in measured.items()}
    expected["dead"] = (slots, members, records)
    for k in sorted(set(expected) | set(history)):
        if k not in history:
            raise _Inconsistent(f"no {prefix}_{k} in the history")
        if k not in expected:
            raise _Inconsistent(f"{prefix}_{k} in the history is not recorded by this run")
        shape = np.shape(history[k])
        if len(shape) >= 3 and shape[2] != records:
            raise _Inconsistent(
                f"{prefix}_{k} holds {shape[2]} record(s), but {needing} {records} (one at "
                f"the start, {chunk} per chunk)"
            )
        if shape != expected[k]:
            raise _Inconsistent(f"{prefix}_{k} has shape {shape}, this run needs {expected[k]}")


def _describe(a: np.ndarray) -> str:
    return f"{a.shape} {a.dtype}"


def _index(state: dict[str, np.ndarray], key: str) -> int:
    """The checkpoint's ``key`` (batch, chunk): a whole number >= 0, else ``_Inconsistent``."""
    a = np.asarray(state[key])
    if a.shape != () or a.dtype.kind not in "iu" or int(a) < 0:
        raise _Inconsistent(f"{key} = {a.tolist()!r}, expected an index (a whole number >= 0)")
    return int(a)


def _prefixed(state: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) + 1 :]: a for k, a in state.items() if k.startswith(f"{prefix}_")}


def _numbered(state: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    n = sum(1 for k in state if k.startswith(f"{prefix}_") and k[len(prefix) + 1 :].isdigit())
    return [state[f"{prefix}_{i}"] for i in range(n)]
