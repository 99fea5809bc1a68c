"""One compiled sweep against one run after another: the HMM ODE and online SGD (issues 5, 8).

    python benchmarks/sweep.py [--quick] [--write] [--only ode|sim] [--ode-runs 8]
                               [--sim-runs 128] [--sim-tmax T] [--full-runs 4]

Two XLA host devices are made (``--xla_force_host_platform_device_count=2``, set before
jax is imported); ``run.devices`` chooses how many a sweep shards its grid over.

ODE (section ``ode-sweep`` of RESULTS.md). N = 10^4, D = 5000 (delta = 0.5), K = M = 2,
sign f, erf g, first layer, exact teacher term, 64 learning rates log-spaced in
[0.05, 2], forward Euler dt = 0.01 to t = 1000 (10^5 steps), 200 log-spaced records.

- sweep engine: ``simulate(cfg)`` of a config with ``run.mode = "ode"``, ``ode.nodes =
  33`` and ``[grid] lr`` (64 values), timed end to end: drawing F, the teacher and the
  students, the spectral set-up, compilation and the vmapped solve.
- single runs: ``simulate`` of each grid point's own config (``point_configs``), one
  after another; ``--ode-runs`` of the 64, evenly spaced, are timed and the total is
  extrapolated to 64 unless all are run. Their eg against the sweep's: max |eg_sweep /
  eg_single - 1| over the save times where both are finite.
- hand-written vmap (the previous benchmark): ``sample_state`` (eigvalsh of F F^T / N,
  products with F) once, then ``jax.vmap`` over the 64 learning rates of
  ``solve_hmm_state`` with p = 33 nodes, cold and warm.
- full D, one run after another: ``solve_hmm(..., nodes="full")`` after the
  eigen-decomposition (``state_arrays``), ``--full-runs`` of them timed.
``run.precision = "float64"`` (the ODE is float64 in any case) and ``run.test_size = 100``
(the ODE does not use the test set).

Online SGD (section ``sim-sweep``). HMM data, N = 784, D = 10, M = 2, sign f, erf g,
first layer, ensemble 1, float32, test set of 500; grid: 8 learning rates log-spaced in
[0.05, 2] x K in (1, 2, 4, 8) x seeds 0-3 (128 points) to t = ``--sim-tmax``, 20
records, chunk 20.

- sweep: ``simulate(cfg)`` with ``run.devices`` = 1 and 2, a first call (compilation
  included) and a second one.
- single runs: ``simulate`` of ``--sim-runs`` points' own configs (``run.devices = 1``),
  one after another, evenly spaced over the grid (so every K is compiled once); the
  total is extrapolated to 128 unless all run. Final eg_sim against the sweep's: max
  relative difference over the points that stay finite in both.
- NumPy: the per-step reference loop of benchmarks/online.py (``numpy_runner``, E = 1,
  with its module constants K and LR set to the point's), one point per K.
Throughput: student-steps/s = (sum over points of the SGD steps round(t N) x ensemble) /
wall time.

Memory. The kernel's peak resident set (VmHWM of /proc/self/status) is reset before each
timed part (``echo 5 > /proc/self/clear_refs``) and read after it; the process's
lifetime peak (``getrusage(RUSAGE_SELF).ru_maxrss``) is read at the end. For the SGD
grid the plans carry the engine's measured estimate (``hmmjax.sweep.memory``; its check
against measured peaks is benchmarks/memory.py).

``--quick``: ODE at N = 2000, D = 1000, t = 100 (4 single runs, 2 full-D runs); SGD to
t = 2 (16 single runs). Use it to check the script, not for numbers.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import re
import resource
import sys
import time

# XLA reads this flag when jax initialises: it must be set before jax is imported.
os.environ.setdefault("HMMJAX_COMPILE_CACHE", "off")  # first calls compile: cold
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from hmmjax.config.settings import config_from_dict  # noqa: E402
from hmmjax.data import make_data_model  # noqa: E402
from hmmjax.experiments.driver import simulate  # noqa: E402
from hmmjax.io.state import state_arrays  # noqa: E402
from hmmjax.models.two_layer import init_network  # noqa: E402
from hmmjax.ode import solve_hmm, solve_hmm_state  # noqa: E402
from hmmjax.ode.spectral import sample_state  # noqa: E402
from hmmjax.ode.times import save_times  # noqa: E402
from hmmjax.sweep.lanes import point_configs, point_steps, record_times

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, write_section  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "RESULTS.md")
P_NODES = 33
N_LR_ODE = 64
MIB = 2**20


# --- measuring ----------------------------------------------------------------------------


def load() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def cpu_mark() -> tuple[float, float, float]:
    """(busy CPU seconds of the machine from /proc/stat, CPU seconds of this process,
    wall seconds): two marks give the cores other processes used in between."""
    with open("/proc/stat") as fh:
        user, nice, system, _, _, irq, softirq, steal = map(int, fh.readline().split()[1:9])
    busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    t = os.times()
    return busy, t.user + t.system, time.perf_counter()


def other_cores(mark: tuple[float, float, float]) -> float:
    """Cores used on average by other processes since ``mark``."""
    busy, mine, wall = (b - a for a, b in zip(mark, cpu_mark(), strict=True))
    return (busy - mine) / wall


def _status(field: str) -> float:
    """A field of /proc/self/status in MiB."""
    with open("/proc/self/status") as fh:
        return int(re.search(rf"{field}:\s+(\d+)", fh.read()).group(1)) / 1024


_LIFETIME_PEAK = [0.0]  # VmHWM before each reset: the process's peak over the whole run


def reset_peak() -> float:
    """Reset the kernel's peak RSS (VmHWM, and with it ru_maxrss) to the current RSS;
    return that RSS in MiB."""
    lifetime_peak()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return _status("VmRSS")


def peak() -> float:
    """Peak RSS (MiB) since the last ``reset_peak``."""
    return _status("VmHWM")


def lifetime_peak() -> float:
    """Peak RSS (MiB) of the process since it started, across the resets."""
    _LIFETIME_PEAK[0] = max(_LIFETIME_PEAK[0], peak())
    return _LIFETIME_PEAK[0]


def timed(fn):
    """(result, wall seconds) of ``fn()``, waiting for its arrays."""
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - t0


def timed_peak(fn):
    """(result, wall seconds, RSS before, peak RSS during) of ``fn()``, in MiB."""
    before = reset_peak()
    out, t = timed(fn)
    return out, t, before, peak()


def max_rel(a: np.ndarray, b: np.ndarray) -> tuple[float, int, int]:
    """(max |a / b - 1| where both are finite, entries finite in both, entries finite in
    only one)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    both = np.isfinite(a) & np.isfinite(b)
    one = np.isfinite(a) ^ np.isfinite(b)
    diff = float(np.max(np.abs(a[both] / b[both] - 1))) if both.any() else float("nan")
    return diff, int(both.sum()), int(one.sum())


def picks(n: int, total: int) -> np.ndarray:
    """``n`` indices evenly spaced over ``range(total)``, first and last included."""
    n = min(max(n, 1), total)
    return np.unique(np.rint(np.linspace(0, total - 1, n)).astype(int))


def header(args, start_load: float, mark: tuple[float, float, float]) -> str:
    """Command, machine, versions, date, load average and other processes' CPU use of a
    section that began at ``start_load`` and ``mark``."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Command: `python benchmarks/sweep.py {' '.join(sys.argv[1:])}`.  \n"
        f"Machine: {machine()}; jax {jax.__version__} ({jax.devices()[0].platform}, "
        f"{jax.device_count()} XLA host devices), NumPy {np.__version__}; finished {now}. "
        f"Load average (1 min) {start_load:.2f} at the start of this part, "
        f"{load():.2f} at its end; other processes used {other_cores(mark):.2f} cores on "
        "average during it (/proc/stat minus this process)."
    )


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


# --- ODE ----------------------------------------------------------------------------------


def ode_config(N: int, D: int, t_max: float) -> dict:
    """The 64-learning-rate HMM-ODE sweep as a config dict."""
    return {
        "data": {"model": "hmm", "N": N, "D": D, "f": "sign"},
        "student": {"K": 2, "g": "erf"},
        "teacher": {"M": 2},
        "run": {"t_max": t_max, "n_times": 200, "ensemble": 1, "test_size": 100,
                "mode": "ode", "precision": "float64", "checkpoint": False},
        "ode": {"nodes": P_NODES, "solver": "euler", "dt": 0.01},
        "grid": {"lr": {"start": 0.05, "stop": 2.0, "num": N_LR_ODE, "spacing": "log"}},
    }  # fmt: skip


def ode_part(args, N: int, D: int, t_max: float) -> str:
    """Time the ODE sweep four ways; the Markdown of section ode-sweep."""
    start_load, mark = load(), cpu_mark()
    rows, notes, mem = [], [], []

    # 1. the sweep engine, end to end
    cfg = config_from_dict(ode_config(N, D, t_max))
    ds, t_sweep, before, top = timed_peak(lambda: simulate(cfg, progress=False))
    eg_sweep = ds["eg_ode"].values  # (64, n)
    lrs = ds["lr"].values
    rows.append(("sweep engine: `simulate(cfg)`, `[grid] lr` (64 values), p = 33",
                 "incl.", N_LR_ODE, t_sweep, None, t_sweep, ""))  # fmt: skip
    mem.append(("ODE sweep engine, 64 lr", before, top))
    log("ode sweep", t_sweep, ds.attrs.get("ode_points"))

    # 2. the single-run code, one point after another
    cfgs = point_configs(cfg)
    seq_t, seq_d = [], []
    before = reset_peak()
    for i in picks(args.ode_runs, N_LR_ODE):
        one, t = timed(lambda i=i: simulate(cfgs[i], progress=False))
        seq_t.append(t)
        seq_d.append(max_rel(eg_sweep[i], one["eg_ode"].values))
        log("ode single", i, t, seq_d[-1])
    mem.append((f"ODE single runs ({len(seq_t)})", before, peak()))
    n = len(seq_t)
    total = sum(seq_t) * N_LR_ODE / n
    note = "" if n == N_LR_ODE else f"extrapolated: {n} runs timed, mean {np.mean(seq_t):.1f} s"
    rows.append(("single runs: `simulate(point config)`, one after another, p = 33",
                 "incl.", n, sum(seq_t), None, total, note))  # fmt: skip
    d = max(x[0] for x in seq_d)
    one_side = sum(x[2] for x in seq_d)
    notes.append(
        f"Sweep vs single runs (the {n} learning rates timed, {sum(x[1] for x in seq_d)} "
        f"finite values): max |eg_sweep / eg_single - 1| = {d:.1e}"
        + (f"; {one_side} values finite in only one of them." if one_side else ".")
    )

    # 3. hand-written: set-up once, one vmapped call (the previous benchmark)
    ts = save_times(t_max, 200, "log", "euler", 0.01)
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    model = make_data_model(k1, "hmm", N=N, M=2, D=D, f="sign")
    student = init_network(k2, 2, N)
    opts = dict(v=student.v, A=model.teacher.v, delta=D / N, solver="euler", dt=0.01)

    def vmapped(state):
        with jax.enable_x64(True):
            run = jax.jit(jax.vmap(lambda lr: solve_hmm_state(state, ts, lr=lr, **opts).eg))
            return run(jnp.asarray(lrs))

    before = reset_peak()
    with jax.enable_x64(True):
        w, F, theta = (jnp.asarray(x, jnp.float64) for x in (student.w, model.F, model.teacher.w))
        state, t_setup = timed(lambda: sample_state(w, F, theta, P_NODES))
    eg_p, t_cold = timed(lambda: vmapped(state))
    eg_p, t_warm = timed(lambda: vmapped(state))
    mem.append(("ODE hand-written vmap", before, peak()))
    rows.append((f"hand-written: `sample_state` once + `jax.vmap(solve_hmm_state)`, p = {P_NODES}",
                 f"{t_setup:.1f}", N_LR_ODE, t_cold, t_warm, t_setup + t_cold, ""))  # fmt: skip
    log("ode hand", t_setup, t_cold, t_warm)

    # 4. full D, one run after another (the eigen-decomposition once)
    if args.full_runs > 0:
        before = reset_peak()
        arrays, t_eigh = timed(lambda: state_arrays(student, model))
        full_t, full_d = [], []
        chosen = picks(args.full_runs, N_LR_ODE)
        for i in chosen:
            eg, t = timed(lambda i=i: solve_hmm(arrays, ts, lr=lrs[i], nodes="full",
                                                solver="euler").eg)  # fmt: skip
            full_t.append(t)
            full_d.append(max_rel(eg_p[i], eg)[0])
        mem.append((f"ODE full D ({len(full_t)} runs)", before, peak()))
        n = len(full_t)
        rows.append((f"full D = {D}: `state_arrays` once + `solve_hmm(nodes='full')` "
                     "one after another", f"{t_eigh:.1f}", n, sum(full_t), None,
                     t_eigh + sum(full_t) * N_LR_ODE / n,
                     f"extrapolated: {n} runs timed, mean {np.mean(full_t):.1f} s"))  # fmt: skip
        notes.append(
            f"Hand-written p = {P_NODES} vmap vs full-D runs at lr = "
            f"{', '.join(f'{lrs[i]:.3g}' for i in chosen)}: max |eg_p / eg_full - 1| = "
            f"{max(full_d):.1e}."
        )
    target = 240.0
    notes.append(
        f"Target (issue): the sweep in <= {target / 60:.0f} min on 2 cores; measured "
        f"{t_sweep:.0f} s ({'met' if t_sweep <= target else 'missed'}). Single runs / sweep "
        f"= {rows[1][5] / t_sweep:.1f}x. The engine (`sweep_ode._hmm`) computes the "
        f"spectral state once per drawn set-up, here once for the 64 points (row 3's "
        f"set-up: {t_setup:.1f} s); each single run computes it again."
    )

    L = [
        "## 64-learning-rate HMM-ODE sweep (issues 5, 8)",
        "",
        header(args, start_load, mark),
        "",
        f"N = {N}, D = {D}, K = M = 2, sign f, erf g, exact teacher term, 64 learning rates "
        f"log-spaced in [0.05, 2], Euler dt = 0.01 to t = {t_max:g} "
        f"({int(round(t_max / 0.01))} steps), 200 log-spaced records, float64. 'cold': "
        "the first call, compilation included; 'incl.': the set-up (drawing F, the "
        "spectral state) is inside the timed call. Rows 1-2 use the config engine "
        '(`run.mode = "ode"`, `ode.nodes = 33`); rows 3-4 call the ODE directly on '
        "another sample of F.",
        "",
        "| run | set-up (s) | learning rates timed | first call, cold (s) "
        "| second call (s) | total for 64 incl. set-up (s) | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, t_set, n, t_c, t_w, tot, note in rows:
        warm = "-" if t_w is None else f"{t_w:.1f}"
        L.append(f"| {name} | {t_set} | {n} | {t_c:.1f} | {warm} | {tot:.1f} | {note} |")
    L += ["", *[f"- {x}" for x in notes], "", memory_table(mem)]
    return "\n".join(L)


# --- online SGD ---------------------------------------------------------------------------


def sim_config(t_max: float, devices: int) -> dict:
    """The 8 lr x 4 K x 4 seed online-SGD grid as a config dict."""
    return {
        "data": {"model": "hmm", "N": 784, "D": 10, "f": "sign"},
        "student": {"K": 2, "g": "erf"},
        "teacher": {"M": 2},
        "sgd": {"lr": 0.2},
        "run": {"t_max": t_max, "n_times": 20, "ensemble": 1, "test_size": 500, "chunk": 20,
                "mode": "sim", "precision": "float32", "checkpoint": False,
                "devices": devices},
        "grid": {"lr": {"start": 0.05, "stop": 2.0, "num": 8, "spacing": "log"},
                 "K": [1, 2, 4, 8], "seed": [0, 1, 2, 3]},
    }  # fmt: skip


def numpy_rates(cfgs, steps: int) -> list[tuple[str, int, float]]:
    """(point, steps, seconds) of benchmarks/online.py's NumPy loop, one point per K."""
    path = os.path.join(HERE, "online.py")
    spec = importlib.util.spec_from_file_location("online_benchmark", path)
    online = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(online)
    assert (online.N, online.D, online.M) == (784, 10, 2)
    out, seen = [], set()
    lr_mid = sorted({c.sgd.lr for c in cfgs})[3]
    for c in cfgs:
        if c.student.K in seen or c.sgd.lr != lr_mid or c.run.seed != 0:
            continue
        seen.add(c.student.K)
        online.K, online.LR = c.student.K, c.sgd.lr  # read by numpy_runner / its loop
        run = online.numpy_runner(1)
        run(10)  # warm-up
        _, t = timed(lambda run=run: run(steps))
        out.append((f"K = {c.student.K}, lr = {c.sgd.lr:.3g}", steps, t))
        log("numpy", out[-1])
    return out


def sim_part(args, t_max: float) -> str:
    """Time the online-SGD grid; the Markdown of section sim-sweep."""
    start_load, mark = load(), cpu_mark()
    cfg1 = config_from_dict(sim_config(t_max, 1))
    cfgs = point_configs(cfg1)
    P = len(cfgs)
    E = cfg1.run.ensemble
    steps = point_steps(cfgs, record_times(cfgs))[:, -1]
    total_steps = int(steps.sum()) * E
    rows, mem, plans = [], [], {}

    finals = {}
    for dev in (1, 2):
        cfg = config_from_dict(sim_config(t_max, dev))
        for call in ("cold", "warm"):
            ds, t, before, top = timed_peak(lambda cfg=cfg: simulate(cfg, progress=False))
            name = f"sweep, {dev} device{'s' * (dev > 1)}, {call}"
            rows.append((name, P, t, total_steps / t, ""))
            mem.append((f"SGD sweep, {dev} device(s), {call}", before, top))
            plans[dev] = ds.attrs["plan"]
            finals[(dev, call)] = ds["eg_sim"].values[..., -1].reshape(P, E)
            log(rows[-1], plans[dev])

    # the single-run code, one point after another
    seq_t, seq_eg = [], {}
    before = reset_peak()
    chosen = picks(args.sim_runs, P)
    for i in chosen:
        one, t = timed(lambda i=i: simulate(cfgs[i], progress=False))
        seq_t.append(t)
        seq_eg[i] = one["eg_sim"].values[..., -1].reshape(E)
    mem.append((f"SGD single runs ({len(chosen)})", before, peak()))
    n = len(chosen)
    seq_total = sum(seq_t) * P / n
    seq_steps = int(steps[chosen].sum()) * E
    note = "" if n == P else f"extrapolated to {P}: {n} points timed (every K), {sum(seq_t):.1f} s"
    rows.append(("single runs: `simulate(point config)`, one after another", n, sum(seq_t),
                 seq_steps / sum(seq_t), note))  # fmt: skip
    log(rows[-1])

    nps = numpy_rates(cfgs, args.numpy_steps)
    np_steps, np_t = sum(x[1] for x in nps), sum(x[2] for x in nps)
    rows.append(("NumPy per-step loop (benchmarks/online.py), one point after another",
                 len(nps), np_t, np_steps / np_t,
                 "; ".join(f"{name}: {s / t:,.0f}/s" for name, s, t in nps)))  # fmt: skip

    ref = np.array([seq_eg[i] for i in chosen])
    d_all = max_rel(finals[(1, "cold")][chosen], ref)
    by_lr = []
    for lr in sorted({cfgs[i].sgd.lr for i in chosen}):
        sel = [j for j, i in enumerate(chosen) if cfgs[i].sgd.lr == lr]
        by_lr.append(f"{lr:.3g}: {max_rel(finals[(1, 'cold')][chosen[sel]], ref[sel])[0]:.0e}")
    others = [f"{dev} device(s) {call}: {max_rel(fin, finals[(1, 'cold')])[0]:.1e}"
              for (dev, call), fin in finals.items() if (dev, call) != (1, "cold")]  # fmt: skip
    n_dead = int((~np.isfinite(finals[(1, "cold")])).sum())

    L = [
        "## Online-SGD grid in one compiled sweep (issue 5)",
        "",
        header(args, start_load, mark),
        "",
        f"HMM data, N = 784, D = 10, M = 2, sign f, erf g, first layer, ensemble {E}, "
        f"float32, test set 500; grid 8 lr (log-spaced in [0.05, 2]) x K (1, 2, 4, 8) x "
        f"seeds 0-3 = {P} points to t = {t_max:g} (round(t N) = {steps[0]} SGD steps per "
        f"point, {total_steps:,} student-steps in all), 20 records, chunk 20. "
        "Every point runs padded to the grid's K = 8 (zero units): "
        f"{P * max(c.student.K for c in cfgs)} student units computed for "
        f"{sum(c.student.K for c in cfgs)} real ones. "
        "'cold': the first call in the process for that device count, compilation "
        "included; 'warm': the same call again. Every time is end to end "
        "(`simulate`, set-up included).",
        "",
        "| run | points | wall (s) | student-steps/s | time for the 128 points (s) | note |",
        "|---|---|---|---|---|---|",
    ]
    for name, n_pts, t, rate, note in rows:
        L.append(
            f"| {name} | {n_pts} | {t:.1f} | {rate:,.0f} | {total_steps / rate:.1f} | {note} |"
        )
    best = min(r[2] for r in rows[:4])
    L += [
        "",
        f"- Plans: 1 device: {plans[1]}; 2 devices: {plans[2]}.",
        f"- Single runs / best sweep: {seq_total / best:.1f}x; NumPy / best sweep: "
        f"{total_steps / (np_steps / np_t) / best:.0f}x (NumPy at its measured rate for "
        "all points; the time column of the single-run and NumPy rows is that rate "
        "applied to all 128 points).",
        f"- Final eg_sim, sweep (1 device, cold) vs single runs (the {n} points run "
        f"singly; {d_all[1]} finite in both, {d_all[2]} finite in only one): max relative "
        f"difference {d_all[0]:.1e}; by learning rate, {', '.join(by_lr)}. The other "
        f"sweep calls vs that one: {'; '.join(others)}. Points non-finite (diverged) at "
        f"the end of the sweep: {n_dead} of {P}.",
        "",
        memory_table(mem),
        "",
        "The plans above carry the engine's measured memory estimate "
        "(`hmmjax.sweep.memory`; checked against measured peaks by benchmarks/memory.py).",
    ]
    return "\n".join(L)


def memory_table(mem) -> str:
    """Peak RSS per timed part."""
    L = [
        "| part | RSS before (MiB) | peak RSS during (MiB) | peak - before (MiB) |",
        "|---|---|---|---|",
    ]
    L += [f"| {name} | {b:.0f} | {p:.0f} | {p - b:.0f} |" for name, b, p in mem]
    return "\n".join(L)


# --- main ---------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, to check the script")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    ap.add_argument("--only", choices=("ode", "sim"), help="run one part only")
    ap.add_argument("--ode-runs", type=int, help="single ODE runs timed (64: all)")
    ap.add_argument("--full-runs", type=int, help="full-D ODE runs timed (0: none)")
    ap.add_argument("--sim-runs", type=int, help="single SGD runs timed (128: all)")
    ap.add_argument("--sim-tmax", type=float, help="t_max of the SGD grid")
    ap.add_argument("--numpy-steps", type=int, help="NumPy SGD steps per point")
    args = ap.parse_args()
    q = args.quick
    defaults = dict(ode_runs=(4, 8), full_runs=(2, 4), sim_runs=(16, 128), sim_tmax=(2.0, 100.0),
                    numpy_steps=(2000, 50_000))  # fmt: skip
    for key, (quick, full) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, quick if q else full)
    N, D, t_max = (2000, 1000, 100.0) if q else (10_000, 5000, 1000.0)

    sections = {}
    if args.only in (None, "ode"):
        sections["ode-sweep"] = ode_part(args, N, D, t_max)
        print(sections["ode-sweep"], flush=True)
    if args.only in (None, "sim"):
        sections["sim-sweep"] = sim_part(args, args.sim_tmax)
        print(sections["sim-sweep"], flush=True)
    top = lifetime_peak()
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    line = (
        f"Peak RSS of the whole benchmark process (all parts it ran): {top:.0f} MiB (VmHWM, "
        f"kept across the per-part resets; ru_maxrss, which the resets also clear, reads "
        f"{ru:.0f} MiB: the peak since the last reset)."
    )
    print("\n" + line)
    for name in sections:
        sections[name] += "\n\n" + line
    if args.write:
        for name, text in sections.items():
            write_section(name, text)


if __name__ == "__main__":
    main()
