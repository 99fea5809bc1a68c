"""What one XLA CPU device runs at the same time, and what that means for E = 256 (issue 16).

    python benchmarks/concurrency.py [--write] [--tiny]
    taskset -c 0 python benchmarks/concurrency.py     # the same, on one core

Two tables, each row timed in this process (best of a few calls after a compiling one):

1. Independent work on one device. A loop of elementwise steps on a vector small enough
   that XLA does not split an operation over threads, alone and in pairs: two
   independent loops in one program, two programs dispatched together to one device, and
   the two loops on two XLA host devices (``shard_map``). "CPU / wall": the process's CPU
   time over the wall time (1.0: one core busy, 2.0: two).
2. The engine's E = 256 ensemble (benchmarks/online.py's setting: HMM data, N = 784,
   D = 10, K = M = 2) on one device, its members in 1, 2, 4 or 8 independent groups
   (``hmmjax.core.groups``, ``compiled_chunk(..., groups)``), in the two member parts
   the engine makes (one device, then two host devices: what ``hmmjax run`` does), and
   E = 1 beside them.

The script asks for two XLA host devices (``XLA_FLAGS``, read when JAX's backend starts);
where the backend has already started with one device (a test process), the two-device
rows are left out.
"""

from __future__ import annotations

import argparse
import datetime
import os
import resource
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec

# benchmarks/online.py's import adds two host devices to XLA_FLAGS (read when JAX's
# backend starts, not at import)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import best_seconds, machine, write_section  # noqa: E402
from online import engine_runner, measure  # noqa: E402


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(call, reps: int) -> tuple[float, float]:
    """(best wall time of ``reps`` calls, CPU time / wall time over all of them), after a
    warm-up call."""
    call()
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    best = best_seconds(call, reps)
    return best, (_cpu_seconds() - cpu0) / (time.perf_counter() - t0)


def loop_rows(size: int, steps: int, reps: int) -> list[tuple[str, float, float]]:
    """(case, best seconds, CPU / wall) for one loop and the pairs."""

    def loop(w):
        return jax.lax.fori_loop(0, steps, lambda i, v: jnp.tanh(v * 1.0001 + 0.1), w)

    one = jax.jit(loop)
    both = jax.jit(lambda a, b: (loop(a), loop(b)))
    a = jnp.linspace(-1.0, 1.0, size, dtype=jnp.float32)
    b = a + 0.5
    cases = [
        ("one loop", lambda: jax.block_until_ready(one(a))),
        ("two independent loops, one program, one device",
         lambda: jax.block_until_ready(both(a, b))),
        ("two programs dispatched together, one device",
         lambda: jax.block_until_ready((one(a), one(b)))),
    ]  # fmt: skip
    devices = jax.local_devices()
    if len(devices) >= 2:
        mesh = jax.sharding.Mesh(np.array(devices[:2]), ("d",))
        spec = PartitionSpec("d")
        sharded = jax.jit(jax.shard_map(jax.vmap(loop), mesh=mesh, in_specs=spec, out_specs=spec))
        pair = jax.device_put(jnp.stack([a, b]), jax.sharding.NamedSharding(mesh, spec))
        cases.append(("two loops, one per host device (shard_map)",
                      lambda: jax.block_until_ready(sharded(pair))))  # fmt: skip
    return [(name, *timed(call, reps)) for name, call in cases]


def engine_rows(
    E: int, groups: tuple[int, ...], seconds: float, reps: int
) -> list[tuple[str, int, float]]:
    """(layout, members, student-steps/s) of the engine's chunk (benchmarks/online.py) for
    an ensemble of ``E`` in each of ``groups`` on one device, in the engine's member parts
    on one device and on two, and for E = 1."""
    one = dict(parts=False, devices=1)
    layouts = [(f"one device, {g} group{'s' * (g > 1)}", E, dict(groups=g, **one))
               for g in groups]  # fmt: skip
    layouts += [("one device, the engine's 2 member parts", E, dict(devices=1))]
    if len(jax.local_devices()) >= 2:
        layouts += [("2 host devices, the engine's 2 member parts", E, dict(devices=2))]
    layouts += [("one device", 1, dict(devices=1))]
    rows = []
    for name, members, kw in layouts:
        steps, t = measure(engine_runner(members, 64, **kw), seconds, 64, reps)
        rows.append((name, members, members * steps / t))
        print(f"{name:45s} E = {members:3d} {members * steps / t / 1e6:6.2f}M", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    ap.add_argument("--tiny", action="store_true", help="short loops and runs (the tests)")
    args = ap.parse_args(argv)
    size, steps = (1024, 200) if args.tiny else (4096, 20000)
    seconds, reps = (0.02, 1) if args.tiny else (0.5, 3)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    cores = len(cpus) or os.cpu_count()
    pinned = f"taskset -c {','.join(map(str, cpus))} " if cores < (os.cpu_count() or 1) else ""
    loops = loop_rows(size, steps, 3 if args.tiny else 5)
    engine = (
        engine_rows(32, (1, 2), seconds, reps)
        if args.tiny
        else engine_rows(256, (1, 2, 4, 8), seconds, reps)
    )
    base = loops[0][1]
    given = sys.argv[1:] if argv is None else argv
    command = " ".join([f"{pinned}python benchmarks/concurrency.py", *given])
    text = (
        f"Command: `{command}`  \nMachine: {machine()}, {cores} of them for this process; jax "
        f"{jax.__version__}, {len(jax.local_devices())} XLA host device(s); date "
        f"{datetime.date.today().isoformat()}\n\n"
        f"Loops of {steps} elementwise steps on {size} float32 numbers:\n\n"
        "| case | best wall (ms) | / one loop | CPU / wall |\n|---|---|---|---|\n"
    )
    text += "".join(f"| {name} | {1e3 * t:.1f} | {t / base:.2f} | {cpu:.2f} |\n"
                    for name, t, cpu in loops)  # fmt: skip
    text += ("\nThe engine's chunk, online SGD at N = 784, block 64 (benchmarks/online.py):\n\n"
             "| layout | E | student-steps/s |\n|---|---|---|\n")  # fmt: skip
    text += "".join(f"| {name} | {E} | {rate:,.0f} |\n" for name, E, rate in engine)
    print(text)
    if args.write:
        section = (f"## What one XLA CPU device runs at the same time: {cores} core(s) "
                   "(issue 16)\n\n" + text)  # fmt: skip
        write_section("concurrency-" + (f"{cores}core" if pinned else "all"), section)
    return text


if __name__ == "__main__":
    main()
