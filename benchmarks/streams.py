"""Shared data streams: a learning-rate sweep at large N against one of its points (issue 16).

    python benchmarks/streams.py [--quick] [--write] [--points 64] [--ensemble 4]

Online SGD on the hidden manifold, N = 10^4, D = 5000, K = M = 2, sign f, erf g, first
layer, float32, E = 4 members, t = 1 (10^4 steps per member), test set of 1000, one XLA
host device. A sample costs 2 D N = 10^8 flop and a student step about 4 K N = 8 10^4:
the samples are the whole cost, and they depend on (seed, member, step) only, so the
points of a learning-rate sweep share them (``hmmjax.sweep.lanes``).

- one point: ``simulate`` of the sweep's first point alone (its own config);
- the sweep: ``simulate`` of ``[grid] lr`` with ``--points`` values (log-spaced in
  [0.05, 1]), one lane of ``--points`` slots;
each timed end to end (drawing F, the teacher, the students and the test set, planning,
compiling, training), a first call and a second one (the compilations cached in memory).
The sweep's first point is compared with the single run (max relative difference of
eg_sim over the records). The ratio sweep / one point is the number the issue asks for
(at most 2; before shared streams about the number of points).

``--quick``: N = 2000, D = 1000, 8 points (to check the script).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
os.environ.setdefault("HMMJAX_COMPILE_CACHE", "off")  # cold is cold: no disk cache here
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from common import machine, write_section  # noqa: E402

from hmmjax.config.settings import config_from_dict  # noqa: E402
from hmmjax.experiments.driver import simulate  # noqa: E402
from hmmjax.sweep.lanes import point_configs  # noqa: E402


def config(N: int, D: int, points: int, ensemble: int) -> dict:
    return {
        "data": {"model": "hmm", "N": N, "D": D, "f": "sign"},
        "student": {"K": 2, "g": "erf"},
        "teacher": {"M": 2},
        "run": {"t_max": 1.0, "n_times": 10, "ensemble": ensemble, "test_size": 1000,
                "mode": "sim", "precision": "float32", "checkpoint": False, "devices": 1},
        "grid": {"lr": {"start": 0.05, "stop": 1.0, "num": points, "spacing": "log"}},
    }  # fmt: skip


def timed(cfg) -> tuple[float, object]:
    t = time.perf_counter()
    ds = simulate(cfg, progress=False)
    return time.perf_counter() - t, ds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, to check the script")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    ap.add_argument("--points", type=int, help="learning rates in the sweep (default 64)")
    ap.add_argument("--ensemble", type=int, default=4, help="members per point")
    args = ap.parse_args()
    N, D = (2000, 1000) if args.quick else (10_000, 5000)
    points = args.points or (8 if args.quick else 64)
    sweep = config_from_dict(config(N, D, points, args.ensemble))
    one = point_configs(sweep)[0]
    rows = []
    for label, cfg in (("one point", one), (f"sweep of {points} lr", sweep)):
        cold, ds = timed(cfg)
        warm, ds = timed(cfg)
        rows.append((label, cold, warm, ds))
        print(f"{label}: {cold:.2f} s, again {warm:.2f} s", flush=True)
    single = rows[0][3]["eg_sim"].values.reshape(-1)
    first = rows[1][3]["eg_sim"].isel(lr=0).values.reshape(-1)
    diff = float(np.nanmax(np.abs(first / single - 1)))
    steps = int(round(N * 1.0)) * args.ensemble
    lines = [
        "## Shared data streams: a learning-rate sweep at large N (issue 16)",
        "",
        f"Command: `python benchmarks/streams.py{' --quick' if args.quick else ''}`  ",
        f"Machine: {machine()}; one XLA host device; jax {jax.__version__}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  ",
        f"HMM, N = {N}, D = {D}, K = M = 2, sign f, erf g, first layer, float32, "
        f"E = {args.ensemble}, t = 1 ({steps // args.ensemble} steps a member), test set of "
        f"1000; sweep: {points} learning rates in [0.05, 1] (log), one lane. End to end "
        "(draw, plan, compile, train); 'again': the same call a second time.",
        "",
        "| run | first call (s) | again (s) | student-steps/s (again) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for (label, cold, warm, _), n in zip(rows, (1, points), strict=True):
        lines.append(f"| {label} | {cold:.2f} | {warm:.2f} | {n * steps / warm:,.0f} |")
    lines += [
        "",
        f"Sweep / one point: {rows[1][1] / rows[0][1]:.2f}x (first calls), "
        f"{rows[1][2] / rows[0][2]:.2f}x (again). The sweep's first point against its "
        f"single run: max relative difference of eg_sim {diff:.1e}.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("streams", text)


if __name__ == "__main__":
    main()
