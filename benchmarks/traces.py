"""XLA's profile of one call: the complete events of a Perfetto trace (``jax.profiler``),
per process and operation name. Shared by benchmarks/profile_online.py and
benchmarks/profile_sweep.py."""

from __future__ import annotations

import collections
import glob
import gzip
import json
import tempfile
from collections.abc import Callable
from typing import NamedTuple

import jax


class Ops(NamedTuple):
    """Total microseconds and number of events per operation name."""

    time_us: collections.Counter
    calls: collections.Counter


def trace_ops(call: Callable[[], object], python: bool = False) -> dict[str, Ops]:
    """``Ops`` per process of the trace (by its name: "/host:CPU", "/device:GPU:0", ...)
    of what ran during ``call()`` (which must wait for its results). ``python``: trace
    Python's own calls too (their events' names start with "$")."""
    options = jax.profiler.ProfileOptions()
    options.python_tracer_level = int(python)
    with tempfile.TemporaryDirectory() as folder:
        jax.profiler.start_trace(folder, create_perfetto_trace=True, profiler_options=options)
        try:
            call()
        finally:
            jax.profiler.stop_trace()
        (path,) = glob.glob(f"{folder}/**/*perfetto_trace.json.gz", recursive=True)
        with gzip.open(path) as fh:
            trace = json.load(fh)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    names = {e["pid"]: e["args"]["name"] for e in events
             if e.get("ph") == "M" and e.get("name") == "process_name"}  # fmt: skip
    ops: dict[str, Ops] = {}
    for e in events:
        if e.get("ph") == "X":
            process = names.get(e.get("pid"), str(e.get("pid")))
            entry = ops.setdefault(process, Ops(collections.Counter(), collections.Counter()))
            entry.time_us[e.get("name", "")] += e.get("dur", 0)
            entry.calls[e.get("name", "")] += 1
    return ops
