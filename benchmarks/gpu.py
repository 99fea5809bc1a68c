"""The accelerator benchmark in one command (issue 16): ensembles, grids and the HMM ODE.

    python benchmarks/gpu.py [--tiny] [--write] [--only NAME ...]

Rows (each end to end through ``hmmjax.experiments.simulate``, timed on a second call so
that compilation is left out; the first call's time is shown too):

- ``ensemble``: online SGD, HMM data, N = 784, D = 10, K = M = 2, E = 4096, t = 10;
- ``grid``: the 1024-point grid lr (16, log in [0.05, 2]) x K (1, 2, 4, 8) x seed (16),
  N = 784, D = 10, E = 1, t = 10;
- ``ode-fixed``, ``ode-auto``: the 64-lr HMM-ODE sweep (N = 10^4, D = 5000, lr log in
  [0.05, 2], Euler dt = 0.01 to t = 1000) with ``ode.nodes = 33`` and ``"auto"``;
- ``large-ensemble``: N = 10^4, D = 5000, E = 64, t = 1;
- ``large-grid``: N = 10^4, D = 5000, 64 learning rates, E = 4, t = 1.

The runs compute float32 matrix products in full float32 (``hmmjax.sweep.numerics``), and
so does the peak's product (JAX's default on NVIDIA GPUs would round both to TF32).

Columns: student-steps/s (points x members x SGD steps / time), GFLOP/s (flop per
student-step: 2 D N + 2 D M + 2 M for the sample, 4 K N for the student; a sample shared
by the points of a lane, ``hmmjax.sweep.lanes``, is counted once per lane), and the share
of the device's peak, measured here as the best float32 matrix product
(``peak.fp32_peak``). The ODE rows give the time only.

``--tiny``: every size cut down (N = 64, E = 8, ...) so that the script runs in seconds
on a CPU (the tests run it so). On an NVIDIA H200 the whole script took 191 s
(RESULTS.md, 2026-12-04 18:13 UTC; ``--write`` puts the table there).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HMMJAX_COMPILE_CACHE", "off")  # first calls compile: cold

import jax  # noqa: E402
from common import machine, write_section  # noqa: E402
from peak import fp32_peak  # noqa: E402

from hmmjax.config.settings import config_from_dict  # noqa: E402
from hmmjax.experiments.driver import simulate  # noqa: E402
from hmmjax.sweep.lanes import point_configs, stream_layout  # noqa: E402


@dataclass(frozen=True)
class Sizes:
    N_small: int = 784
    D_small: int = 10
    E: int = 4096
    t_small: float = 10.0
    grid_lr: int = 16
    grid_seeds: int = 16
    N_large: int = 10_000
    D_large: int = 5000
    E_large: int = 64
    lrs_large: int = 64
    ode_t: float = 1000.0
    peak_n: int = 8192


TINY = Sizes(N_small=64, D_small=8, E=8, t_small=2.0, grid_lr=2, grid_seeds=2, N_large=200,
             D_large=100, E_large=4, lrs_large=4, ode_t=5.0, peak_n=256)  # fmt: skip


def online(N, D, *, E, t, grid=None, test_size=1000) -> dict:
    d = {
        "data": {"model": "hmm", "N": N, "D": D, "f": "sign"},
        "student": {"K": 2, "g": "erf"},
        "teacher": {"M": 2},
        "sgd": {"lr": 0.2},
        "run": {"t_max": t, "n_times": 10, "ensemble": E, "test_size": test_size,
                "checkpoint": False, "precision": "float32"},
    }  # fmt: skip
    if grid:
        d["grid"] = grid
    return d


def ode(N, D, t, nodes, lrs) -> dict:
    return {
        "data": {"model": "hmm", "N": N, "D": D, "f": "sign"},
        "student": {"K": 2, "g": "erf"},
        "teacher": {"M": 2},
        "run": {"t_max": t, "n_times": 100, "ensemble": 1, "test_size": 100, "mode": "ode",
                "precision": "float64", "checkpoint": False},
        "ode": {"nodes": nodes, "solver": "euler", "dt": 0.01},
        "grid": {"lr": {"start": 0.05, "stop": 2.0, "num": lrs, "spacing": "log"}},
    }  # fmt: skip


def cases(z: Sizes) -> dict[str, dict]:
    lr = {"start": 0.05, "stop": 2.0, "spacing": "log"}
    return {
        "ensemble": online(z.N_small, z.D_small, E=z.E, t=z.t_small),
        "grid": online(z.N_small, z.D_small, E=1, t=z.t_small, grid={
            "lr": {**lr, "num": z.grid_lr}, "K": [1, 2, 4, 8],
            "seed": {"start": 0, "stop": z.grid_seeds - 1, "step": 1}}),  # fmt: skip
        "ode-fixed": ode(z.N_large, z.D_large, z.ode_t, 33, z.lrs_large),
        "ode-auto": ode(z.N_large, z.D_large, z.ode_t, "auto", z.lrs_large),
        "large-ensemble": online(z.N_large, z.D_large, E=z.E_large, t=1.0),
        "large-grid": online(z.N_large, z.D_large, E=4, t=1.0, grid={
            "lr": {**lr, "stop": 1.0, "num": z.lrs_large}}),  # fmt: skip
    }


def work(cfg) -> tuple[int, float]:
    """(student-steps, flop) of an online config: samples counted once per lane."""
    cfgs = point_configs(cfg)
    steps = members = flop = 0
    layout = stream_layout(cfgs)
    for c in cfgs:
        n = round(c.run.t_max * c.data.N) * c.run.ensemble
        steps += n
        flop += n * 4 * c.student.K * c.data.N
    for row in layout.points:  # one sample stream per lane and member
        c = cfgs[row[0]]
        n = round(c.run.t_max * c.data.N) * c.run.ensemble
        members += n
        flop += n * (2 * c.data.D * c.data.N + 2 * c.data.D * c.teacher.M + 2 * c.teacher.M)
    return steps, float(flop)


def run(names: list[str], z: Sizes) -> list[str]:
    peak = fp32_peak(z.peak_n)
    dev = jax.devices()[0]
    print(f"device {dev.device_kind}: float32 matmul peak {peak:.0f} GFLOP/s", flush=True)
    rows = []
    for name, d in cases(z).items():
        if names and name not in names:
            continue
        cfg = config_from_dict(d)
        t0 = time.perf_counter()
        simulate(cfg, progress=False)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        ds = simulate(cfg, progress=False)
        wall = time.perf_counter() - t0
        if cfg.run.mode == "ode":
            rate = gflops = share = "-"
            extra = f"p = {ds.attrs.get('ode_points', '?')}"
        else:
            steps, flop = work(cfg)
            rate = f"{steps / wall:,.0f}"
            gflops = f"{flop / wall / 1e9:.3g}"
            share = f"{100 * flop / wall / 1e9 / peak:.3g}%"
            extra = ""
        cells = [name, f"{first:.2f}", f"{wall:.2f}", rate, gflops, share, extra]
        rows.append("| " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    return [
        "## Accelerator benchmark (issue 16)",
        "",
        f"Command: `python benchmarks/gpu.py{' --tiny' if z == TINY else ''}`  ",
        f"Machine: {machine()}; device {dev.device_kind} ({dev.platform}), "
        f"{len(jax.devices())} device(s); jax {jax.__version__}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  ",
        f"Peak: best float32 {z.peak_n} x {z.peak_n} matrix product, {peak:,.0f} GFLOP/s.",
        "",
        "| case | first call (s) | second call (s) | student-steps/s | GFLOP/s | of peak | |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        *rows,
    ]


def main(argv: list[str] | None = None) -> list[str]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="tiny sizes (a CPU check)")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    ap.add_argument("--only", nargs="*", default=[], help="run only these cases")
    args = ap.parse_args(argv)
    lines = run(args.only, TINY if args.tiny else Sizes())
    print("\n".join(lines))
    if args.write:
        write_section("gpu", "\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
