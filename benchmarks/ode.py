"""HMM ODE benchmarks (issue 4): Euler step time, spectral set-up, adaptive vs Euler.

Everything is measured in one run, hmmjax next to a plain NumPy implementation of the same
forward-Euler step (float64, docs/theory.md 5.2, vectorised over the eigenvalues with
``np.einsum`` as a NumPy user would write it; full I3 and I4 tensors as in section 4).

    python benchmarks/ode.py [--quick] [--write]

1. Time per Euler step (erf g, sign f, first layer only, lr = 0.2, float64), averaged and
   exact teacher term, K = M = 2, D = 5000 and K = 4, M = 2, D = 1000. The initial states
   come from random samples (``make_data_model``, ``init_network``, ``state_arrays``).
   hmmjax: ``solve_hmm(..., solver="euler", dt=0.01)`` over ``--steps`` steps with 11
   saves; one call compiles (warm-up), then ``--reps`` timed calls, median / steps. NumPy:
   ``--np-steps`` steps per repetition, median of ``--reps``. The same timing is repeated in
   a child process pinned to one core (see the notes in RESULTS.md).
   Beside it, the compressed ODE (docs/theory.md 5.3) with p = 33 nodes, the same call otherwise.
2. The spectral set-up at N = 10^4, D = 5000: ``spectral_basis`` (Omega = F F^T / N and
   eigh) and ``state_arrays`` (the full initial state); for the compressed ODE
   ``sample_eigenvalues`` (eigvalsh) and ``sample_state`` (eigenvalues plus the matrix
   polynomial, no eigenvectors); float64, first (cold, includes compilation) and second
   call; NumPy ``F @ F.T / N`` + ``np.linalg.eigh`` once.
3. Adaptive vs Euler, K = M = 2, D = 5000, to t = 1000, saves every 5: Tsit5 (rtol 1e-6,
   atol 1e-9) and Euler dt = 0.01 against Euler dt = 1e-3 (the fine curve), plus a tight
   Tsit5 (rtol 1e-10, atol 1e-12). Right-hand-side evaluations are counted by a
   ``jax.debug.callback`` in the right-hand side (a separate, untimed run); wall times are
   the median of ``--reps`` runs after a warm-up on a short span (Euler dt = 1e-3: one run).

``--quick`` uses D = 1000 (N = 2000) for the D = 5000 cases and t = 200 in part 3.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

if "--cores" in sys.argv:  # must happen before jax starts its thread pools
    os.sched_setaffinity(0, set(range(int(sys.argv[sys.argv.index("--cores") + 1]))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from hmmjax.core.activations import gaussian_constants  # noqa: E402
from hmmjax.data import make_data_model  # noqa: E402
from hmmjax.io.state import state_arrays  # noqa: E402
from hmmjax.models.two_layer import init_network  # noqa: E402
from hmmjax.observables.order_params import spectral_basis  # noqa: E402
from hmmjax.ode import (  # noqa: E402
    hmm_observables,
    hmm_problem,
    hmm_rhs,
    solve,
    solve_hmm,
    spectral,  # noqa: E402
)

LR, M = 0.2, 2
NODES = 33  # compressed ODE (docs/theory.md 5.3): what nodes="auto" picks here at node_rtol 1e-8
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
BEGIN, END = "<!-- ode:begin -->", "<!-- ode:end -->"
TEACHERS = ("averaged", "exact")


# --- the NumPy reference: docs/theory.md 4 and 5.2, as a NumPy user writes them ------------------


def np_integrals(C: np.ndarray):
    """I2 (n,n), I3 (n,n,n), I4 (n,n,n,n) of erf g, full tensors by broadcasting."""
    c = 1.0 + np.diag(C)
    cc = np.outer(c, c)
    I2 = (2 / np.pi) * np.arcsin(C / np.sqrt(cc))
    L3 = cc - C**2
    num = C[None, :, :] * c[:, None, None] - C[:, :, None] * C[:, None, :]
    I3 = (2 / np.pi) * num / (c[:, None, None] * np.sqrt(L3)[:, None, :])
    L4 = cc - C**2
    C2 = C**2
    L1 = (
        L4[:, :, None] * c[None, None, :]
        - C2[None, :, :] * c[:, None, None]
        - C2[:, None, :] * c[None, :, None]
        + 2 * C[:, :, None] * C[:, None, :] * C[None, :, :]
    )
    Cab, Cac, Cad = C[:, :, None, None], C[:, None, :, None], C[:, None, None, :]
    Cbc, Cbd, Ccd = C[None, :, :, None], C[None, :, None, :], C[None, None, :, :]
    L0 = (
        L4[:, :, None, None] * Ccd
        - Cbc * Cbd * c[:, None, None, None]
        - Cac * Cad * c[None, :, None, None]
        + Cab * Cac * Cbd
        + Cab * Cad * Cbc
    )
    ratio = L0 / np.sqrt(L1[:, :, :, None] * L1[:, :, None, :])
    I4 = (4 / np.pi**2) / np.sqrt(L4)[:, :, None, None] * np.arcsin(ratio)
    return I2, I3, I4


class NumpyHMM:
    """Forward Euler for the HMM ODE of docs/theory.md 5.2 (first layer only)."""

    def __init__(self, a, lr: float, teacher: str, f: str = "sign"):
        k = gaussian_constants(f)
        self.mu1, self.zeta, self.f2 = k.mu1, k.zeta, k.f2
        self.rho, self.T, self.A = a["rho"], a["T"], a["A"]
        self.Ttilde, self.lr = a["Ttilde"], lr
        self.beta = a["beta"] if teacher == "exact" else None
        self.delta = float(a["D"]) / float(a["N"])

    def observables(self, r, sigma, W, v):
        Q = self.zeta * W + self.mu1**2 * sigma.mean(-1)
        R = self.mu1 * r.mean(-1)
        C = np.block([[Q, R], [R.T, self.T]])
        u = np.concatenate([-v, self.A])
        return Q, R, C, u

    def eg(self, r, sigma, W, v):
        _, _, C, u = self.observables(r, sigma, W, v)
        return 0.5 * u @ np_integrals(C)[0] @ u

    def step(self, r, sigma, W, v, dt):
        K = v.size
        Q, R, C, u = self.observables(r, sigma, W, v)
        _, I3, I4 = np_integrals(C)
        T, A, rho, mu1, zeta, eta, delta = (
            self.T, self.A, self.rho, self.mu1, self.zeta, self.lr, self.delta,
        )  # fmt: skip
        ks, ns = np.arange(K), K + np.arange(M)
        Qd, Td = np.diag(Q), np.diag(T)
        I3_kkj, I3_kjj = I3[ks, ks, :K], I3[:, ks, ks][:K]
        I3_kkn, I3_knn = I3[ks, ks, K:], I3[:K][:, ns, ns]
        off = ~np.eye(K, dtype=bool)
        det_kj = np.where(off, np.outer(Qd, Qd) - Q**2, 1.0)
        det_kn = np.outer(Qd, Td) - R**2
        c_kj = np.where(off, np.outer(v, v) / det_kj, 0.0)
        c_kn = np.outer(v, A) / det_kn
        a = (
            (c_kj * (-Qd[None, :] * I3_kkj + Q * I3_kjj)).sum(1)
            - v**2 / Qd * I3[ks, ks, ks]
            + (c_kn * (Td[None, :] * I3_kkn - R * I3_knn)).sum(1)
        )
        G = np.diag(a) + c_kj * (-Qd[:, None] * I3_kjj + Q * I3_kkj)
        E = c_kn * (Qd[:, None] * I3_knn - R * I3_kkn)
        P = np.einsum("klc,c->kl", I3[:K, :K], u)
        Phi = np.einsum("klcd,c,d->kl", I4[:K, :K], u, u)
        vvPhi = np.outer(v, v) * Phi

        d = zeta * delta + mu1**2 * rho
        if self.beta is None:
            teacher = (E @ self.Ttilde)[:, :, None] * rho
        else:
            teacher = np.einsum("kn,nt,mt->kmt", E, self.beta, self.beta) * rho
        dr = (eta / delta) * (d * np.einsum("kj,jmt->kmt", G, r) + mu1 * teacher)
        Gs = np.einsum("kj,jlt->klt", G, sigma)
        Er = np.einsum("kn,lnt->klt", E, r)
        quad = zeta * rho + mu1**2 * rho**2 / delta
        dsigma = (eta / delta) * (
            d * (Gs + Gs.transpose(1, 0, 2)) + mu1 * rho * (Er + Er.transpose(1, 0, 2))
        ) + eta**2 * vvPhi[:, :, None] * quad
        vP = v[:, None] * P
        dW = eta * (vP + vP.T) + eta**2 * self.f2 * vvPhi
        return r + dt * dr, sigma + dt * dsigma, W + dt * dW, v


# --- helpers ---------------------------------------------------------------------------------


def sample_state(seed: int, K: int, N: int, D: int) -> dict[str, np.ndarray]:
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    model = make_data_model(k1, "hmm", N=N, M=M, D=D, f="sign")
    return state_arrays(init_network(k2, K, N), model)


def busy_seconds() -> tuple[float, float]:
    """(CPU seconds all processes have used, CPU seconds this process and its children have)."""
    with open("/proc/stat") as f:
        jiffies = [int(x) for x in f.readline().split()[1:]]
    busy = sum(jiffies) - jiffies[3] - jiffies[4]  # all but idle and iowait
    t = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), t.user + t.system + t.children_user + t.children_system


def median_time(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def hmmjax_step_us(a, teacher: str, steps: int, reps: int, nodes="full") -> tuple[float, float]:
    """Median us per Euler step of solve_hmm (after one compiling call) and eg(end)."""
    ts = np.linspace(0, steps, 11).round() * 0.01

    def run():
        sol = solve_hmm(
            a, ts, lr=LR, f="sign", g="erf", teacher=teacher, solver="euler", nodes=nodes
        )
        return float(sol.eg[-1])

    eg = run()
    return median_time(run, reps) / steps * 1e6, eg


def numpy_step_us(a, teacher: str, steps: int, reps: int) -> tuple[float, float]:
    ode = NumpyHMM(a, LR, teacher)
    y0 = (a["r"], a["sigma"], a["W"], a["v"])
    out = {}

    def run():
        y = y0
        for _ in range(steps):
            y = ode.step(*y, 0.01)
        out["eg"] = ode.eg(*y)

    return median_time(run, reps) / steps * 1e6, out["eg"]


def step_cases(quick: bool) -> list[tuple[int, int, int]]:
    return [(2, 5000 if not quick else 1000, 10_000 if not quick else 2000), (4, 1000, 2000)]


def pinned_steps(path: str, args) -> dict:
    """Part 1 for hmmjax again in a child process pinned to one core."""
    cmd = [sys.executable, os.path.abspath(__file__), "--cores", "1", "--steps-only", path]
    cmd += ["--steps", str(args.steps), "--reps", str(args.reps)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# --- the three parts -----------------------------------------------------------------------


def part_setup(quick: bool, reps: int):
    N, D = (2000, 1000) if quick else (10_000, 5000)
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    model = make_data_model(k1, "hmm", N=N, M=M, D=D, f="sign")
    student = init_network(k2, 2, N)
    rows = []
    with jax.enable_x64(True):
        F = jnp.asarray(model.F, jnp.float64)
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            jax.block_until_ready(spectral_basis(F))
            times.append(time.perf_counter() - t0)
        rows.append(("hmmjax `spectral_basis(F)` (F F^T / N, eigh)", *times))
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        arrays = state_arrays(student, model)
        times.append(time.perf_counter() - t0)
    rows.append(("hmmjax `state_arrays(student, model)` (full state)", *times))
    with jax.enable_x64(True):
        w, theta = (jnp.asarray(x, jnp.float64) for x in (student.w, model.teacher.w))
        for name, fn in [
            ("hmmjax `sample_eigenvalues(F)` (F F^T / N, eigvalsh)",
             lambda: spectral.sample_eigenvalues(F)),
            (f"hmmjax `sample_state(w, F, theta, {NODES})` (eigvalsh + {NODES - 2} products "
             "F (F^T V), no eigenvectors)", lambda: spectral.sample_state(w, F, theta, NODES)),
        ]:  # fmt: skip
            times = []
            for _ in range(2):
                t0 = time.perf_counter()
                jax.block_until_ready(fn())
                times.append(time.perf_counter() - t0)
            rows.append((name, *times))
    Fn = np.asarray(model.F, np.float64)
    t0 = time.perf_counter()
    np.linalg.eigh(Fn @ Fn.T / N)
    rows.append(("NumPy `F @ F.T / N` + `np.linalg.eigh`", time.perf_counter() - t0, None))
    return (N, D), rows, arrays


def part_steps(states, args, pinned):
    rows = []
    for (K, N, D), a in states.items():
        for teacher in TEACHERS:
            t_jax, eg_jax = hmmjax_step_us(a, teacher, args.steps, args.reps)
            t_np, eg_np = numpy_step_us(a, teacher, args.np_steps, args.reps)
            t_p, _ = hmmjax_step_us(a, teacher, args.steps, args.reps, NODES)
            # Cross-check: hmmjax (full and compressed) after the NumPy number of steps.
            ts = np.array([args.np_steps * 0.01])
            kw = dict(lr=LR, f="sign", g="erf", teacher=teacher, solver="euler")
            diff = abs(float(solve_hmm(a, ts, nodes="full", **kw).eg[-1]) / eg_np - 1)
            diff_p = abs(float(solve_hmm(a, ts, nodes=NODES, **kw).eg[-1]) / eg_np - 1)
            p = pinned.get(f"{K},{D},{teacher}") if pinned else None
            rows.append((K, M, D, N, teacher, t_jax, p, t_np, diff, t_p, diff_p))
    return rows


def part_adaptive(a, t_max: float, reps: int):
    ts = np.linspace(0.0, t_max, int(t_max / 5) + 1)
    counter = [0]

    def count():
        counter[0] += 1

    def counted_rhs(t, y, args):
        jax.debug.callback(count)
        return hmm_rhs(t, y, args)

    configs = [
        ("Euler dt = 1e-3 (fine reference)", dict(solver="euler", dt=1e-3)),
        ("Euler dt = 0.01", dict(solver="euler", dt=0.01)),
        ("Tsit5 rtol = 1e-6, atol = 1e-9", dict(solver="tsit5", rtol=1e-6, atol=1e-9)),
        ("Tsit5 rtol = 1e-10, atol = 1e-12", dict(solver="tsit5", rtol=1e-10, atol=1e-12)),
        (f"Euler dt = 0.01, p = {NODES} nodes", dict(solver="euler", dt=0.01, nodes=NODES)),
        (
            f"Tsit5 rtol = 1e-6, atol = 1e-9, p = {NODES} nodes",
            dict(solver="tsit5", rtol=1e-6, atol=1e-9, nodes=NODES),
        ),
    ]
    results = []
    for name, opts in configs:
        if opts["solver"] == "euler":
            evals = int(round(t_max / opts["dt"]))  # one evaluation per step, exactly
        else:
            counter[0] = 0
            solver_opts = {k: x for k, x in opts.items() if k != "nodes"}
            with jax.enable_x64(True):
                y0, args = hmm_problem(a, lr=LR, f="sign", g="erf", nodes=opts.get("nodes", "full"))
                sol = solve(counted_rhs, hmm_observables, y0, args, ts, **solver_opts)
                jax.block_until_ready(sol.eg)
            evals = counter[0]

        def run(opts=opts):
            sol = solve_hmm(a, ts, lr=LR, f="sign", g="erf", **{"nodes": "full", **opts})
            jax.block_until_ready(sol.eg)
            return sol

        # Warm-up (compiles) on save times of the same shape and Euler bound on the steps
        # per interval, but a short span: [0, 4.5, 4.51, ..., 6.49].
        warm = np.concatenate([[0.0], 4.5 + 0.01 * np.arange(len(ts) - 1)])
        jax.block_until_ready(
            solve_hmm(a, warm, lr=LR, f="sign", g="erf", **{"nodes": "full", **opts}).eg
        )
        n_reps = 1 if opts.get("dt") == 1e-3 else reps
        wall = median_time(run, n_reps)
        sol = run()
        results.append((name, evals, int(sol.num_steps), wall, np.asarray(sol.eg)))
    fine, tight = results[0][4], results[3][4]
    rows = []
    for name, evals, nsteps, wall, eg in results:
        d_fine = np.max(np.abs(eg / fine - 1))
        d_tight = np.max(np.abs(eg / tight - 1))
        rows.append((name, evals, nsteps, wall, d_fine, d_tight))
    return rows


# --- output ----------------------------------------------------------------------------------


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def report(meta, setup, steps, adaptive, args) -> str:
    (N, D), setup_rows = setup
    L = [
        "## ODE: full and compressed (issues 4, 8)",
        "",
        f"Command: `{meta['command']}`. Machine: {meta['cpu']}, {meta['cores']} cores; "
        f"{meta['date']}; jax {meta['jax']}, NumPy {meta['numpy']}; float64. Load average "
        f"(1 min) {meta['load_start']:.2f} at the start; other processes used "
        f"{meta['others']:.2f} cores on average during the run (/proc/stat minus this "
        f"process){': measured under load' if meta['loaded'] else ''}.",
        "",
        "### Time per forward-Euler step (erf g, sign f, first layer, lr = 0.2)",
        "",
        f"hmmjax: `solve_hmm(..., solver='euler', dt=0.01)` over {args.steps} steps (11 saves),"
        f" one compiling call, then the median of {args.reps} calls, divided by the steps. "
        f"NumPy: the same step (docs/theory.md 5.2, np.einsum over eigenvalues, full I3, I4), "
        f"{args.np_steps} steps, median of {args.reps}. 'pinned': hmmjax in a child process "
        f"restricted to one core (`os.sched_setaffinity`). 'rel. diff eg': hmmjax vs NumPy "
        f"after {args.np_steps} steps. 'p nodes': the compressed ODE of docs/theory.md 5.3 "
        f"(`nodes={NODES}`, the same call otherwise), its eg against the NumPy full ODE. "
        f"The published C++ integrator takes about 800 us (K=2, "
        f"D=5000) and 600 us (K=4, D=1000) per step (issue 4; not measured here).",
        "",
        "| K | M | D | N | teacher term | hmmjax us/step | hmmjax pinned to 1 core "
        f"| NumPy us/step | NumPy / hmmjax | rel. diff eg | hmmjax p = {NODES} nodes us/step "
        "| rel. diff eg (p nodes) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for K, Mm, Dd, Nn, teacher, tj, tp, tn, diff, t_p, diff_p in steps:
        L.append(
            f"| {K} | {Mm} | {Dd} | {Nn} | {teacher} | {tj:.1f} | {fmt(tp, '.1f')} "
            f"| {tn:.0f} | {tn / tj:.1f}x | {diff:.1e} | {t_p:.1f} | {diff_p:.1e} |"
        )
    L += [
        "",
        f"### Spectral set-up, N = {N}, D = {D} (float64)",
        "",
        "| step | first call (s) | second call (s) |",
        "|---|---|---|",
    ]
    for name, t1, t2 in setup_rows:
        L.append(f"| {name} | {t1:.2f} | {fmt(t2, '.2f')} |")
    L += [
        "",
        f"### Adaptive vs Euler, K = M = 2, D = {D}, N = {N}, t = 0..{args.t_max:g}",
        "",
        "Saves every 5 time units. RHS evaluations: Euler one per step; Tsit5 counted by a "
        "`jax.debug.callback` in the right-hand side (untimed run). Diffrax's "
        "`num_steps` counts all attempted steps; Tsit5 is FSAL, so evaluations = "
        "6 x steps + 1. Wall: median of "
        f"{args.reps} runs after a compiling run (Euler dt = 1e-3: one run). Max rel. diff: "
        "max over the saved times of |eg / eg_ref - 1|.",
        "",
        "| solver | RHS evaluations | steps | wall (s) | max rel. diff vs Euler 1e-3 "
        "| max rel. diff vs tight Tsit5 |",
        "|---|---|---|---|---|---|",
    ]
    for name, evals, nsteps, wall, d_fine, d_tight in adaptive:
        L.append(f"| {name} | {evals} | {nsteps} | {wall:.2f} | {d_fine:.1e} | {d_tight:.1e} |")
    ev = {name: evals for name, evals, *_ in adaptive}
    e01, ts6 = ev["Euler dt = 0.01"], ev["Tsit5 rtol = 1e-6, atol = 1e-9"]
    L += [
        "",
        f"Tsit5 (rtol 1e-6) uses {e01 / ts6:.0f}x fewer RHS evaluations than Euler dt = 0.01.",
    ]
    L += ["", *NOTES, ""]
    return "\n".join(L)


NOTES = [
    "Notes:",
    "",
    "- Where the time went (before: about 150-180 us/step at D = 5000, profiled with "
    "`jax.profiler` and `--xla_cpu_enable_xprof_traceme`): the means over tau as XLA "
    "reductions (summed element by element in float64: ~25 us each at D = 5000), "
    "the K x K contractions as `dot`s that write (K, K D) intermediates before the "
    "elementwise update, the construction of G and E fused into (and repeated inside) the "
    "per-eigenvalue loops, and the full (K+M)^3, (K+M)^4 integral tensors (the arcsin of "
    "I4 costs ~7 ns per entry). Now: means as matrix-vector products with the weights 1/D, "
    "contractions as K-term broadcast sums fused into one pass per array, G and E "
    "materialised, only the student rows of I3 (K n^2) and I4 (K^2 n^2). Diffrax's own "
    "per-step overhead is small (1-5 us; one `diffeqsolve` per save interval).",
    "- XLA splits each large loop fusion (more than 512 KB touched) over the two cores "
    "(`outer_dimension_partitions`); on this VM the hand-off costs more than it saves, "
    "and it suffers most when another process uses the other core. Pinning the process "
    "to one core (`taskset -c 0`, or `os.sched_setaffinity` before importing jax) disables "
    "the split: the 'pinned' column. At K = 4, D = 1000 the fusions are below the "
    "threshold and both columns agree.",
    "- Tsit5 takes about the same number of steps for rtol from 1e-5 to 1e-7: its step is "
    "limited by stability (the largest rates d_tau G), not by accuracy. The Euler dt = 1e-3 "
    "reference itself differs from the tight Tsit5 by its own O(dt) error; the Tsit5 curve "
    "sits within that error of it.",
]


def write_results(text: str) -> None:
    block = f"{BEGIN}\n{text}\n{END}\n"
    old = open(RESULTS).read() if os.path.exists(RESULTS) else ""
    if BEGIN in old and END in old:
        i, j = old.index(BEGIN), old.index(END) + len(END)
        new = old[:i] + block.rstrip("\n") + old[j:]
    else:
        new = old + ("\n" if old and not old.endswith("\n") else "") + ("\n" if old else "")
        new += block
    with open(RESULTS, "w") as f:
        f.write(new)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, short runs")
    p.add_argument("--write", action="store_true", help="update the ODE section of RESULTS.md")
    p.add_argument("--reps", type=int, default=5, help="timed repetitions (median)")
    p.add_argument("--steps", type=int, default=None, help="hmmjax Euler steps per timing")
    p.add_argument("--np-steps", type=int, default=None, help="NumPy Euler steps per timing")
    p.add_argument("--t-max", type=float, default=None, help="end time of part 3")
    p.add_argument("--cores", type=int, default=None, help="restrict to this many cores")
    p.add_argument("--steps-only", metavar="NPZ", help=argparse.SUPPRESS)
    args = p.parse_args()
    args.steps = args.steps or (2000 if args.quick else 5000)
    args.np_steps = args.np_steps or (50 if args.quick else 200)
    args.t_max = args.t_max or (200.0 if args.quick else 1000.0)

    if args.steps_only:  # child process of pinned_steps: hmmjax step times as JSON
        out = {}
        with np.load(args.steps_only) as z:
            for key in sorted({k.split("/")[0] for k in z.files}):
                a = {k.split("/")[1]: z[k] for k in z.files if k.startswith(key + "/")}
                K, D = a["sigma"].shape[0], a["rho"].shape[0]
                for teacher in TEACHERS:
                    t, _ = hmmjax_step_us(a, teacher, args.steps, args.reps)
                    out[f"{K},{D},{teacher}"] = t
        print(json.dumps(out))
        return

    load_start = os.getloadavg()[0]
    busy0, own0, wall0 = *busy_seconds(), time.perf_counter()
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if "model name" in ln),
        platform.processor(),
    )
    print(f"# ODE benchmarks: {cpu}, {os.cpu_count()} cores, load {load_start:.2f}", flush=True)

    (N, D), setup_rows, big = part_setup(args.quick, args.reps)
    print("set-up done", flush=True)
    states = {}
    for K, Dd, Nn in step_cases(args.quick):
        states[(K, Nn, Dd)] = big if (K == 2 and Dd == D) else sample_state(1, K, Nn, Dd)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "states.npz")
        np.savez(path, **{f"{K}_{Dd}/{k}": v for (K, _, Dd), a in states.items() for k, v in
                          a.items() if k not in ("F", "w", "theta")})  # fmt: skip
        pinned = pinned_steps(path, args)
    steps = part_steps(states, args, pinned)
    print("steps done", flush=True)
    adaptive = part_adaptive(big, args.t_max, args.reps)
    busy1, own1, wall1 = *busy_seconds(), time.perf_counter()
    others = ((busy1 - busy0) - (own1 - own0)) / (wall1 - wall0)  # cores used by others
    meta = dict(
        command="python benchmarks/ode.py" + "".join(f" {a}" for a in sys.argv[1:]),
        cpu=cpu,
        cores=os.cpu_count(),
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        jax=jax.__version__,
        numpy=np.__version__,
        load_start=load_start,
        others=others,
        loaded=load_start >= 0.5 or others >= 0.25,
    )
    text = report(meta, ((N, D), setup_rows), steps, adaptive, args)
    print(text)
    if args.write:
        write_results(text)
        print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
