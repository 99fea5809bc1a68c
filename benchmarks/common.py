"""Helpers shared by the benchmark scripts: the machine's description, the best time of
repeated calls, and writing a section of RESULTS.md atomically. Standard library only (no
JAX)."""

from __future__ import annotations

import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "RESULTS.md")


def machine() -> str:
    """CPU model (from /proc/cpuinfo) and core count."""
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def best_seconds(call, repeats: int) -> float:
    """The shortest wall time of ``repeats`` calls of ``call()`` (which must return when its
    work is done: wrap a JAX call in ``jax.block_until_ready``); warm it up first."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t0)
    return best


def write_section(name: str, text: str, path: str = RESULTS) -> None:
    """Replace (or append) the section between ``<!-- name:begin/end -->`` of ``path``,
    writing a temporary file and renaming it over the old one."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    old = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    block = f"{begin}\n{text}\n{end}"
    if begin in old:
        i, j = old.index(begin), old.index(end) + len(end)
        new = old[:i] + block + old[j:]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    with open(path + ".tmp", "w") as fh:
        fh.write(new)
    os.replace(path + ".tmp", path)
