"""Spectral engine measurements (issue 8, docs/theory.md 5.2-5.3): fidelity, accuracy, N -> inf.

    python benchmarks/spectral.py [--quick] [--write] [--parts fidelity,accuracy,limit]

1. Fidelity: online SGD (an ensemble of E data streams from the same F, teacher and
   initial weights, ``run.same_init``) against the ODE from that state with the exact and
   with the averaged (published) teacher term; sign f, erf g, K = M = 2, delta = 0.5,
   lr = 0.2, t = 30, two samples (seeds) at each of N = 500, 1000, 2000, and one
   both-layers case. Late-time difference: the ensemble-mean eg (from the simulated
   weights' order parameters, docs/theory.md 4) over the recorded times t >= 24, against the ODE
   at the same times: mean(sim) / mean(ODE) - 1. Band: the standard error of that
   ensemble mean, relative.
2. Accuracy: the compressed ODE (p nodes, docs/theory.md 5.3) against the full per-eigenvalue ODE
   (5.2) from the same sample state, Euler dt = 0.01 to t = 1000 (exact teacher term),
   N = 1000, D = 500: K = M = 2 (lr 0.5), K = 4, M = 2 (lr 0.5), K = M = 2 both layers
   (lr 0.3). Max over 200 log-spaced save times of |eg_p / eg_full - 1|.
3. N -> infinity: the Marchenko-Pastur curve (no F sampled) against ODEs of samples with
   the same initialisation law (w ~ N(0, 1), theta ~ N(0, 1), v = A = 1), K = M = 2,
   delta = 0.5, lr = 0.5, to t = 100 (Tsit5, rtol 1e-9); 16 samples at N = 1000 and 4000
   (the first three also with the full-D ODE) and 8 at N = 16000 (compressed only: the
   eigen-decomposition at D = 8000 is not needed, the compressed sample ODE equals the
   full one to the accuracy of part 2). Per sample the max over t of |eg_N / eg_inf - 1|,
   its RMS over the samples and the fitted rate in N; and the same max for the mean
   curve over the samples (finite-N bias plus its standard error). The sample-to-sample spread comes
   mostly from the teacher (T = theta theta^T / D fluctuates by O(1/sqrt D)) and is there
   already at t = 0.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time

import jax
import numpy as np

from hmmjax.config.settings import Config
from hmmjax.data.base import make_data_model
from hmmjax.experiments.driver import simulate
from hmmjax.io.state import state_arrays
from hmmjax.models.two_layer import init_network
from hmmjax.ode import solve_hmm, solve_hmm_limit, solve_hmm_sample

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
BEGIN, END = "<!-- spectral:begin -->", "<!-- spectral:end -->"


def machine() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown CPU"
    return f"{cpu}, {os.cpu_count()} cores"


# --- 1. fidelity -------------------------------------------------------------------------


def fidelity(quick: bool):
    E = 8 if quick else 16
    cases = [(N, seed, False) for N in (500, 1000, 2000) for seed in (1, 2)]
    cases.append((1000, 3, True))
    if quick:
        cases = [(500, 1, False), (500, 2, True)]
    rows = []
    for N, seed, both in cases:
        cfg = Config().replace(
            data=dict(model="hmm", N=N, D=N // 2, f="sign"),
            student=dict(K=2, g="erf", train_second=both,
                         second_layer="gaussian" if both else "ones"),
            teacher=dict(M=2),
            sgd=dict(lr=0.2),
            run=dict(mode="both", same_init=True, t_max=30.0, n_times=60, spacing="linear",
                     ensemble=E, seed=seed, test_size=500),
            ode=dict(teacher_term="exact", nodes="auto"),
        )  # fmt: skip
        t0 = time.perf_counter()
        sim = simulate(cfg, progress=False)
        avg = simulate(cfg.replace(run=dict(mode="ode"), ode=dict(teacher_term="averaged")),
                       progress=False)  # fmt: skip
        late = sim.t >= 24.0
        mean_sim = float(sim.eg.mean("member")[late].mean())
        sem = float(sim.eg[:, late].mean("t").std("member")) / np.sqrt(E)
        exact = float(sim.eg_ode[late].mean())
        averaged = float(avg.eg_ode[late].mean())
        rows.append(dict(N=N, D=N // 2, seed=seed, both=both, E=E, eg=mean_sim,
                         band=sem / mean_sim, exact=mean_sim / exact - 1,
                         averaged=mean_sim / averaged - 1, p=int(sim.attrs.get("ode_points", 0)),
                         seconds=time.perf_counter() - t0))  # fmt: skip
        print("fidelity", rows[-1], file=sys.stderr, flush=True)
    return rows


def fidelity_table(rows) -> list[str]:
    L = [
        "| N | D | seed | layers | E | mean eg (sim, t >= 24) | band (1 s.e.) "
        "| rel. diff, exact term | rel. diff, averaged term | ODE nodes (auto) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        L.append(
            f"| {r['N']} | {r['D']} | {r['seed']} | {'both' if r['both'] else 'first'} "
            f"| {r['E']} | {r['eg']:.5f} | {r['band']:.1e} | {r['exact']:+.2%} "
            f"| {r['averaged']:+.2%} | {r['p']} |"
        )
    worst = max(abs(r["exact"]) for r in rows)
    worst_avg = max(abs(r["averaged"]) for r in rows)
    L += ["", f"Largest |difference|: exact term {worst:.2%}, averaged term {worst_avg:.2%}."]
    return L


# --- 2. accuracy ---------------------------------------------------------------------------


def sample(N, D, K, M, seed, second_layer="ones"):
    model = make_data_model(jax.random.PRNGKey(seed), "hmm", N=N, M=M, D=D, f="sign")
    student = init_network(jax.random.PRNGKey(seed + 1), K, N, second_layer=second_layer)
    return student, model


def accuracy(quick: bool):
    t_max = 200.0 if quick else 1000.0
    ts = np.unique(np.round(np.concatenate([[0], np.logspace(-2, np.log10(t_max), 200)]), 2))
    cases = [("K = M = 2", 2, False, 0.5), ("K = 4, M = 2", 4, False, 0.5),
             ("K = M = 2, both layers", 2, True, 0.3)]  # fmt: skip
    rows = []
    for name, K, both, lr in cases:
        student, model = sample(1000, 500, K, 2, seed=7 + K, second_layer="gaussian" if both
                                else "ones")  # fmt: skip
        arrays = state_arrays(student, model)
        kw = dict(lr=lr, both=both, solver="euler", dt=0.01)
        t0 = time.perf_counter()
        full = np.asarray(solve_hmm(arrays, ts, nodes="full", **kw).eg)
        t_full = time.perf_counter() - t0
        row = dict(case=name, lr=lr, eg_end=full[-1], full_s=t_full)
        for p in (16, 32, 64, "auto"):
            t0 = time.perf_counter()
            sol = solve_hmm(arrays, ts, nodes=p, **kw)
            row[p] = (float(np.max(np.abs(np.asarray(sol.eg) / full - 1))), sol.points,
                      time.perf_counter() - t0)  # fmt: skip
        rows.append(row)
        print("accuracy", row, file=sys.stderr, flush=True)
    return rows, t_max


def accuracy_table(rows, t_max) -> list[str]:
    L = [
        f"| case | lr | eg(t = {t_max:g}) | full D = 500: wall (s) | p = 16 | p = 32 | p = 64 "
        "| auto (p chosen) | auto: wall incl. the node search (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        a = r["auto"]
        L.append(
            f"| {r['case']} | {r['lr']} | {r['eg_end']:.3e} | {r['full_s']:.1f} "
            f"| {r[16][0]:.1e} | {r[32][0]:.1e} | {r[64][0]:.1e} | {a[0]:.1e} ({a[1]}) "
            f"| {a[2]:.1f} |"
        )
    return L


# --- 3. N -> infinity ----------------------------------------------------------------------


def limit(quick: bool):
    ts = np.array([0.0, 0.5, 1, 2, 5, 10, 20, 30, 50, 70, 100])
    kw = dict(lr=0.5, solver="tsit5", rtol=1e-9, atol=1e-12)
    t0 = time.perf_counter()
    inf = np.asarray(solve_hmm_limit(0.5, ts, v=np.ones(2), A=np.ones(2), q0=1.0, **kw).eg)
    t_inf = time.perf_counter() - t0
    Ns = {1000: 4, 4000: 4} if quick else {1000: 16, 4000: 16, 16000: 8}
    rows = []
    for N, n_samples in Ns.items():
        curves, errs_full, agree = [], [], []
        for seed in range(n_samples):
            student, model = sample(N, N // 2, 2, 2, seed=100 * seed + N)
            args = (student.w, student.v, model.F, model.teacher.w, model.teacher.v, ts)
            eg = np.asarray(solve_hmm_sample(*args, nodes="auto", **kw).eg)
            curves.append(eg)
            if N <= 4000 and seed < 3:
                eg_full = np.asarray(solve_hmm_sample(*args, nodes="full", **kw).eg)
                errs_full.append(np.max(np.abs(eg_full / inf - 1)))
                agree.append(np.max(np.abs(eg / eg_full - 1)))
        curves = np.array(curves)
        per_sample = np.max(np.abs(curves / inf - 1), axis=1)
        early = np.max(np.abs(curves / inf - 1)[:, ts <= 10], axis=1)
        mean_curve = curves.mean(0)
        rows.append(dict(N=N, n=n_samples, rms=np.sqrt(np.mean(per_sample**2)),
                         rms_early=np.sqrt(np.mean(early**2)),
                         mean=np.max(np.abs(mean_curve / inf - 1)),
                         mean_se=np.max(curves.std(0) / np.sqrt(n_samples) / inf),
                         err_full=np.sqrt(np.mean(np.square(errs_full))) if errs_full else None,
                         agree=max(agree) if agree else None))  # fmt: skip
        print("limit", rows[-1], file=sys.stderr, flush=True)
    logN = np.log([r["N"] for r in rows])
    slope = np.polyfit(logN, np.log([r["rms"] for r in rows]), 1)[0]
    slope_early = np.polyfit(logN, np.log([r["rms_early"] for r in rows]), 1)[0]
    return rows, (slope, slope_early), inf, t_inf


def limit_table(rows, slopes, inf, t_inf) -> list[str]:
    L = [
        f"N -> infinity curve: eg(0) = {inf[0]:.4f}, eg(100) = {inf[-1]:.4f}; computed in "
        f"{t_inf:.1f} s (nodes auto, no F sampled).",
        "",
        "| N | D | samples | per sample: max_t rel. diff to the limit, RMS over samples "
        "| same over t <= 10 | sample-mean curve: max_t rel. diff | its standard error "
        "| full-D ODE: RMS (first 3 samples) | compressed vs full-D (max) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ef = "-" if r["err_full"] is None else f"{r['err_full']:.2e}"
        ag = "-" if r["agree"] is None else f"{r['agree']:.1e}"
        L.append(
            f"| {r['N']} | {r['N'] // 2} | {r['n']} | {r['rms']:.2e} | {r['rms_early']:.2e} "
            f"| {r['mean']:.2e} "
            f"| {r['mean_se']:.1e} | {ef} | {ag} |"
        )
    L += ["", f"Fitted rates of the per-sample RMS difference (least squares on log-log; "
          f"1/sqrt(N) self-averaging gives -0.5): over t <= 100 ~ N^{slopes[0]:.2f}, over "
          f"t <= 10 ~ N^{slopes[1]:.2f}."]  # fmt: skip
    return L


# --- main ----------------------------------------------------------------------------------


def write_results(text: str) -> None:
    block = f"{BEGIN}\n{text}\n{END}\n"
    old = open(RESULTS).read() if os.path.exists(RESULTS) else "# Benchmark results\n"
    if BEGIN in old:
        i, j = old.index(BEGIN), old.index(END) + len(END)
        new = old[:i] + block.rstrip("\n") + old[j:]
    else:
        new = old.rstrip("\n") + "\n\n" + block
    tmp = RESULTS + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(new)
    os.replace(tmp, RESULTS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small cases, short runs")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    ap.add_argument("--parts", default="fidelity,accuracy,limit")
    args = ap.parse_args()
    parts = args.parts.split(",")
    t0 = time.perf_counter()
    L = [
        "## Spectral engine: fidelity, accuracy, N -> infinity (issue 8)",
        "",
        f"Command: `python benchmarks/spectral.py {' '.join(sys.argv[1:])}`. Machine: "
        f"{machine()}; jax {jax.__version__}; {datetime.date.today().isoformat()}. "
        "ODEs in float64, simulations in float32. Definitions in the script's docstring.",
    ]
    if "fidelity" in parts:
        L += ["", "### Fidelity: simulation vs ODE, exact and averaged teacher term", ""]
        L += fidelity_table(fidelity(args.quick))
    if "accuracy" in parts:
        L += ["", "### Accuracy: compressed (p nodes) vs full ODE, max_t |eg_p / eg_full - 1|", ""]
        L += accuracy_table(*accuracy(args.quick))
    if "limit" in parts:
        L += ["", "### N -> infinity: sampled F against the Marchenko-Pastur curve", ""]
        L += limit_table(*limit(args.quick))
    L += ["", f"Total run time {time.perf_counter() - t0:.0f} s."]
    text = "\n".join(L)
    print(text)
    if args.write:
        write_results(text)


if __name__ == "__main__":
    main()
