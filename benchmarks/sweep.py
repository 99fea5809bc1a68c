"""A 64-learning-rate HMM-ODE sweep as one compiled call (issues 5 and 8).

    python benchmarks/sweep.py [--quick] [--write] [--full-runs 4]

Setting: N = 10^4, D = 5000 (delta = 0.5), K = M = 2, sign f, erf g, first layer, exact
teacher term, 64 learning rates log-spaced in [0.05, 2], forward Euler dt = 0.01 to
t = 1000 (10^5 steps), 200 log-spaced saves.

- compressed, one call: set-up (eigvalsh of F F^T / N and the p-node state from products
  with F) plus ``jax.vmap`` over the 64 learning rates of ``solve_hmm_state`` with
  p = 33 nodes, timed cold (compilation included) and warm.
- full D, one call: the same vmap on the full per-eigenvalue state (D = 5000 points);
  set-up by the eigen-decomposition (``state_arrays``).
- full D, one run after another: ``solve_hmm`` with ``nodes="full"``, one learning rate
  at a time; ``--full-runs`` of them are timed (the rest of the 64 is not run; the table
  says how many were).
- agreement: max over learning rates and save times of |eg_p / eg_full - 1| (finite
  points only; a diverging learning rate is reported as such).
``--quick``: N = 2000, D = 1000, t = 100.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from hmmjax.data import make_data_model
from hmmjax.networks import init_network
from hmmjax.ode import solve_hmm, solve_hmm_state
from hmmjax.ode.spectral import sample_state, state_from_arrays
from hmmjax.state import state_arrays
from hmmjax.theory import save_times

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
BEGIN, END = "<!-- ode-sweep:begin -->", "<!-- ode-sweep:end -->"
P = 33


def machine() -> str:
    with open("/proc/cpuinfo") as fh:
        cpu = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    return f"{cpu}, {os.cpu_count()} cores"


def timed(fn):
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--full-runs", type=int, default=4, help="sequential full-D runs timed")
    ap.add_argument("--full-batch", action="store_true", help="also the full-D vmap (slow)")
    args = ap.parse_args()
    N, D, t_max = (2000, 1000, 100.0) if args.quick else (10_000, 5000, 1000.0)
    K, M = 2, 2
    ts = save_times(t_max, 200, "log", "euler", 0.01)
    lrs = np.logspace(np.log10(0.05), np.log10(2.0), 64)
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    model = make_data_model(k1, "hmm", N=N, M=M, D=D, f="sign")
    student = init_network(k2, K, N)
    v, A = student.v, model.teacher.v
    opts = dict(v=v, A=A, delta=D / N, solver="euler", dt=0.01)
    rows = []

    def sweep(state):
        with jax.enable_x64(True):
            run = jax.jit(jax.vmap(lambda lr: solve_hmm_state(state, ts, lr=lr, **opts).eg))
            return run(jnp.asarray(lrs))

    # compressed: set-up + one vmapped call, cold and warm
    with jax.enable_x64(True):
        w, F, theta = (jnp.asarray(x, jnp.float64) for x in (student.w, model.F, model.teacher.w))
        state, t_setup = timed(lambda: sample_state(w, F, theta, P))
    eg_p, t_cold = timed(lambda: sweep(state))
    eg_p, t_warm = timed(lambda: sweep(state))
    rows.append((f"compressed p = {P}, one vmapped call", t_setup, t_cold, t_warm, 64))
    print(rows[-1], file=sys.stderr, flush=True)

    # full D
    arrays, t_eigh = timed(lambda: state_arrays(student, model))
    eg_full = None
    if args.full_batch:
        with jax.enable_x64(True):
            full = state_from_arrays({k: jnp.asarray(a, float) for k, a in arrays.items()})
        eg_full, t_cold_f = timed(lambda: sweep(full))
        rows.append((f"full D = {D}, one vmapped call", t_eigh, t_cold_f, None, 64))
        print(rows[-1], file=sys.stderr, flush=True)
    seq, seq_diff = [], []
    picks = np.arange(64)[:: max(1, 64 // max(args.full_runs, 1))][: args.full_runs]
    for i in picks:
        eg, t = timed(lambda i=i: solve_hmm(arrays, ts, lr=lrs[i], nodes="full", solver="euler").eg)
        seq.append(t)
        seq_diff.append(float(np.max(np.abs(np.asarray(eg_p[i]) / np.asarray(eg) - 1))))
    if seq:
        rows.append((f"full D = {D}, one run after another", t_eigh, sum(seq), None, len(seq)))

    L = [
        "## 64-learning-rate HMM-ODE sweep in one call (issues 5, 8)",
        "",
        f"Command: `python benchmarks/sweep.py {' '.join(sys.argv[1:])}`. Machine: {machine()}; "
        f"jax {jax.__version__}; {datetime.date.today().isoformat()}. N = {N}, D = {D}, "
        f"K = M = 2, 64 learning rates in [0.05, 2], Euler dt = 0.01 to t = {t_max:g} "
        f"({int(round(t_max / 0.01))} steps), 200 saves, float64. 'cold' includes compilation.",
        "",
        "| run | set-up (s) | learning rates | first call, cold (s) | second call (s) "
        "| total for 64 incl. set-up (s) |",
        "|---|---|---|---|---|---|",
    ]
    for name, t_set, t_c, t_w, n in rows:
        per = t_c / n
        total = t_set + (t_c if n == 64 else per * 64)
        note = "" if n == 64 else f" (measured {n} runs, {per:.1f} s each; 64 x that)"
        L.append(
            f"| {name} | {t_set:.1f} | {n} | {t_c:.1f} | {'-' if t_w is None else f'{t_w:.1f}'}"
            f" | {total:.1f}{note} |"
        )
    if eg_full is not None:
        a, b = np.asarray(eg_p), np.asarray(eg_full)
        ok = np.isfinite(a).all(1) & np.isfinite(b).all(1)
        diff = np.max(np.abs(a[ok] / b[ok] - 1))
        L += ["", f"Compressed vs full: max |eg_p / eg_full - 1| = {diff:.1e} over the "
              f"{ok.sum()} learning rates whose runs stay finite ({64 - ok.sum()} diverge in "
              "both)."]  # fmt: skip
    if seq_diff:
        L += ["", f"Compressed (vmapped) vs the sequential full-D runs at lr = "
              f"{', '.join(f'{lrs[i]:.3g}' for i in picks)}: max |eg_p / eg_full - 1| = "
              f"{max(seq_diff):.1e}."]  # fmt: skip
    text = "\n".join(L)
    print(text)
    if args.write:
        old = open(RESULTS).read()
        block = f"{BEGIN}\n{text}\n{END}"
        if BEGIN in old:
            i, j = old.index(BEGIN), old.index(END) + len(END)
            new = old[:i] + block + old[j:]
        else:
            new = old.rstrip("\n") + "\n\n" + block + "\n"
        with open(RESULTS + ".tmp", "w") as fh:
            fh.write(new)
        os.replace(RESULTS + ".tmp", RESULTS)


if __name__ == "__main__":
    main()
