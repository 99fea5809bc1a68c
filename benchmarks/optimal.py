"""Gradients through the ODE (issue 20): time and memory of one gradient of eg(t_max) with
respect to a piecewise-linear schedule, against one forward solve, as the Euler steps grow.

    python benchmarks/optimal.py [--steps 1000 10000 100000] [--write]

Cases: the i.i.d. ODE (K = M = 2, erf, label noise 0.3) and the N -> infinity HMM ODE
(sign manifold, delta = 0.5, 33 spectral nodes, with an initial overlap), Euler with
dt = 0.01 and 50 save times, a 16-piece schedule. Memory: the compiled program's
temporary buffers (XLA's ``memory_analysis``), which is what the adjoint decides: diffrax's
default recursive checkpointing keeps a number of states that grows like the logarithm of
the steps between two save times, not like the steps. Time: the best of 3 calls after a
warm-up. ``--write`` puts the table in benchmarks/RESULTS.md (section ``optimal-grad``).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import best_seconds, machine, write_section  # noqa: E402

from hmmjax.core.schedules import Piecewise  # noqa: E402
from hmmjax.ode import solve_hmm_limit, solve_iid  # noqa: E402

PIECES = 16
DT = 0.01


def models(t_max: float):
    """eg at t_max as a function of the schedule's values, for each case."""
    ts = np.linspace(t_max / 50, t_max, 50)
    knots = np.linspace(0.0, t_max, PIECES + 1)
    Q0, R0 = np.array([[1.0, 0.1], [0.1, 0.8]]), np.array([[0.1, 0.0], [0.0, 0.05]])

    def iid(values):
        s = Piecewise(knots, values)
        return solve_iid(Q0, R0, np.ones(2), np.eye(2), np.ones(2), ts, lr=0.5, noise=0.3,
                         schedule=s, solver="euler", dt=DT).eg[-1]  # fmt: skip

    def hmm(values):
        s = Piecewise(knots, values)
        return solve_hmm_limit(0.5, ts, v=np.ones(2), A=np.ones(2), q0=1.0, lr=0.5, R0=R0,
                               nodes=33, schedule=s, solver="euler", dt=DT).eg[-1]  # fmt: skip

    return {"i.i.d. ODE": iid, "HMM ODE (33 nodes)": hmm}


def measure(f, x) -> tuple[float, float]:
    """(seconds of the best of 3 calls, MiB of temporary buffers) of jit(f) at x."""
    compiled = jax.jit(f).lower(x).compile()
    temp = compiled.memory_analysis().temp_size_in_bytes / 2**20
    jax.block_until_ready(compiled(x))
    return best_seconds(lambda: jax.block_until_ready(compiled(x)), 3), temp


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[1000, 10_000, 100_000])
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    rows = []
    with jax.enable_x64(True):
        x = jnp.linspace(1.0, 0.5, PIECES + 1)
        for steps in args.steps:
            for name, f in models(steps * DT).items():
                fwd, fwd_mib = measure(f, x)
                grad, grad_mib = measure(jax.grad(f), x)
                rows.append((name, steps, fwd, grad, fwd_mib, grad_mib))
                print(f"{name}, {steps} steps: forward {fwd:.3f} s {fwd_mib:.2f} MiB, "
                      f"gradient {grad:.3f} s {grad_mib:.2f} MiB", flush=True)  # fmt: skip
    table = "\n".join([
        "## Gradients through the ODE: time and memory against the Euler steps",
        "",
        f"Command: `python benchmarks/optimal.py{' --steps ' + ' '.join(map(str, args.steps))}"
        "`: eg(t_max) and its gradient with respect to a 16-piece schedule, Euler dt = 0.01, "
        "50 save times, float64; memory: the compiled program's temporary buffers (XLA).",
        f"Machine: {machine()}, CPU; jax {jax.__version__}; date "
        f"{datetime.date.today().isoformat()}.",
        "",
        "| ODE | Euler steps | forward (s) | gradient (s) | gradient / forward | "
        "forward memory (MiB) | gradient memory (MiB) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *[f"| {n} | {s} | {a:.3g} | {b:.3g} | {b / a:.1f}x | {c:.3g} | {d:.3g} |"
          for n, s, a, b, c, d in rows],
    ])  # fmt: skip
    print(table)
    if args.write:
        write_section("optimal-grad", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
