"""Schedule tables (t, factor of the learning rate): reading and checking, with the standard
library only (the config layer checks a ``sgd.schedule_file`` before JAX is imported).

A table file has two numbers a line, t and the factor s(t) of the learning rate, separated
by white space or a comma; text after # is a comment. The times start at 0 and increase
strictly, the factors are finite and >= 0 (``hmmjax.core.schedules.Piecewise``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

__all__ = ["TABLE_LIMIT", "TABLE_MAX_BYTES", "check_table", "read_table"]

TABLE_LIMIT = 1e30
"""Largest time or factor of a table: far from float32's range (3.4e38), where a run in
float32 precision would see inf."""

TABLE_MAX_BYTES = 10 * 2**20
"""Largest table file read (10 MiB: about 10^6 rows)."""


def check_table(times: Sequence[float], values: Sequence[float], where: str = "schedule") -> None:
    """A ValueError naming what is wrong unless (times, values) is a schedule table: the
    same length >= 1, finite, times strictly increasing from 0, values >= 0."""
    times, values = [float(t) for t in times], [float(v) for v in values]
    if len(times) < 1 or len(values) != len(times):
        raise ValueError(
            f"{where}: need times and factors of equal length >= 1; got {len(times)} times "
            f"and {len(values)} factors"
        )
    if not all(math.isfinite(x) and abs(x) <= TABLE_LIMIT for x in (*times, *values)):
        raise ValueError(f"{where}: times and factors must be finite numbers <= {TABLE_LIMIT:g}")
    if times[0] != 0 or any(b <= a for a, b in zip(times, times[1:], strict=False)):
        raise ValueError(f"{where}: the times must start at 0 and increase strictly")
    # distinct in float32 too, where a run in single precision evaluates the schedule
    if any(b - a <= 1e-6 * abs(b) for a, b in zip(times, times[1:], strict=False)):
        raise ValueError(
            f"{where}: successive times must differ by more than 1e-6 of their size "
            "(float32 would merge them)"
        )
    if any(v < 0 for v in values):
        raise ValueError(f"{where}: the factors of the learning rate must be >= 0")


def read_table(path: str | Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(times, factors) of a schedule table file, checked (``check_table``); a ValueError
    with the file and line for anything else."""
    path = Path(path)
    try:
        if not path.is_file():
            raise OSError("not a regular file" if path.exists() else "no such file")
        if path.stat().st_size > TABLE_MAX_BYTES:
            raise OSError(f"larger than {TABLE_MAX_BYTES // 2**20} MiB")
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        reason = f"{type(e).__name__}: {e}"
        raise ValueError(f"schedule file {path}: cannot be read ({reason})") from None
    times, values = [], []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.replace(",", " ").split()
        try:
            if len(parts) != 2:
                raise ValueError
            t, v = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(
                f"schedule file {path}, line {n}: expected two numbers, t and the factor of "
                f"the learning rate; got {line[:60]!r}"
            ) from None
        times.append(t)
        values.append(v)
    check_table(times, values, f"schedule file {path}")
    return tuple(times), tuple(values)
