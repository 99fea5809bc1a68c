"""Automatic spectral nodes: the probe's estimate against the true node error, and the cost
of ``nodes = "auto"`` against a run at the p it picks (issue 16).

    python benchmarks/nodes.py [--quick] [--write] [--only estimate|sweep|cli] [--repeat R]

- ``estimate``: compressed runs at p = 17, 33, 65 nodes on seven cases, each with its
  probe on p + 8 nodes (``probe_size``) and, for comparison, on the 2p - 1 nested nodes
  (``solve_hmm_state(probe=...)``), against the full ODE on all D eigenvalues (Euler
  dt = 0.01 for all): the true error max_t |eg_p / eg_full - 1| and the estimates
  ``node_error``; and that the probe leaves the run unchanged.
- ``sweep``: the 64-learning-rate HMM-ODE sweep (N = 10^4, D = 5000, K = M = 2, sign f,
  erf g, lr log in [0.05, 2], Euler dt = 0.01 to t = 1000, 200 records) through
  ``simulate``, with ``ode.nodes = "auto"`` and with the p it picked, each in a fresh
  process, timed around ``simulate`` (drawing, the spectral set-up, compilation, solve).
- ``cli``: ``hmmjax ode`` on a K = 4, M = 2, N = 2000, D = 1000 state file to t = 300
  (lr 0.5), ``--nodes auto`` and ``--nodes`` at the p it picked, each command timed end to
  end (interpreter start, reading, compiling, solving, writing the results and figure).

The persistent compilation cache is off in every timed process (``HMMJAX_COMPILE_CACHE=off``):
these are cold runs. ``--quick``: N = 2000, D = 1000 and t = 100 for the sweep, t = 50 for
the CLI case.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ["HMMJAX_COMPILE_CACHE"] = "off"

from common import machine, write_section  # noqa: E402

ROOT = HERE.parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path])}


CASES = (  # N, D, K, M, lr, t, f, g, second layer trained
    (1000, 500, 2, 2, 0.2, 100.0, "sign", "erf", False),
    (1000, 500, 2, 2, 1.5, 300.0, "sign", "erf", False),
    (2000, 1000, 4, 2, 0.5, 300.0, "sign", "erf", False),
    (500, 1000, 2, 2, 0.5, 300.0, "sign", "erf", False),  # delta = 2: an atom at 0
    (1000, 500, 3, 2, 1.0, 1000.0, "erf", "erf", True),
    (1000, 250, 2, 1, 0.3, 300.0, "sign", "linear", False),
    (1000, 900, 2, 2, 2.5, 200.0, "tanh", "erf", False),
)


def estimate_rows() -> list[str]:
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from hmmjax.ode import (  # noqa: PLC0415
        PROBE_EXTRA,
        node_error,
        probe_size,
        solve_hmm_sample,
        solve_hmm_state,
    )
    from hmmjax.ode.spectral import sample_eigenvalues, sample_state  # noqa: PLC0415

    rows = []
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        for N, D, K, M, lr, T, f, g, both in CASES:
            F = rng.standard_normal((D, N))
            w, th = rng.standard_normal((K, N)), rng.standard_normal((M, D))
            v, A = np.ones(K), np.ones(M)
            ts = np.linspace(0, T, 101)
            opts = dict(lr=lr, f=f, g=g, both=both, solver="euler", dt=0.01)
            full = np.asarray(solve_hmm_sample(w, v, F, th, A, ts, nodes="full", **opts).eg)
            rho = sample_eigenvalues(jnp.asarray(F))
            for p in (17, 33, 65):
                st = sample_state(w, F, th, p, rho)
                plain = solve_hmm_state(st, ts, v=v, A=A, delta=D / N, **opts)
                true = float(np.max(np.abs(np.asarray(plain.eg) / full - 1)))
                est, same = {}, 0.0
                for q in (probe_size(p), 2 * p - 1):
                    pr = sample_state(w, F, th, q, rho)
                    probed = solve_hmm_state(st, ts, v=v, A=A, delta=D / N, probe=pr, **opts)
                    est[q] = float(node_error(probed))
                    diff = np.abs(np.asarray(probed.eg) - np.asarray(plain.eg))
                    same = max(same, float(np.max(diff)))
                new, old = est[probe_size(p)], est[2 * p - 1]
                trained = "yes" if both else "no"
                rows.append(f"| {N} | {D} | {K} | {lr} | {T:g} | {f} | {g} | {trained} | {p} |"
                            f" {true:.2e} | {new:.2e} | {new / true:.2f} | {old:.2e} | "
                            f"{old / true:.2f} | {same:.0e} |")  # fmt: skip
                print(rows[-1], flush=True)
    return [
        "### The probe's estimate against the true node error",
        "",
        "Sampled F (Gaussian), student w and teacher theta (seeded NumPy), exact teacher term, "
        "Euler dt = 0.01, 101 save times. True: max_t |eg_p / eg_full - 1| against all D "
        "eigenvalues; estimate: ``node_error`` of the run probed on ``probe_size(p)`` nodes "
        f"(what ``auto`` uses: p + max({PROBE_EXTRA}, p // 4)), and beside it on the 2p - 1 "
        "nested nodes (the probe before issue 16's last change: p - 1 more points); last "
        "column: max |eg| difference between the probed and the plain run at p. A true "
        "error near 1e-15 is rounding: there the ratio means nothing.",
        "",
        "| N | D | K | lr | t | f | g | v trained | p | true error | estimate (probe_size) "
        "| / true | estimate (2p - 1) | / true | probed - plain |",
        "| ---: | ---: | ---: | ---: | ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |",
        *rows,
    ]


SWEEP_CHILD = """
import json, sys, time
sys.path.insert(0, {bench!r})
from hmmjax.config.settings import config_from_dict
from hmmjax.experiments.driver import simulate
from sweep import ode_config
d = ode_config({N}, {D}, {T})
d["ode"]["nodes"] = {nodes!r}
cfg = config_from_dict(d)
t = time.perf_counter()
ds = simulate(cfg, progress=False)
print(json.dumps({{"seconds": time.perf_counter() - t, "p": int(ds.attrs["ode_points"])}}))
"""


def child(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=ENV, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def paired(time_auto, time_fixed, repeat: int) -> tuple[int, list[float], list[float]]:
    """``repeat`` timings of auto and of the fixed p it picks, interleaved (auto, fixed,
    auto, ...) so that slow spells of a shared machine fall on both: (p, autos, fixeds).
    ``time_auto()`` returns (seconds, p); ``time_fixed(p)`` the seconds."""
    autos, fixeds, p = [], [], None
    for _ in range(repeat):
        seconds, p = time_auto()
        autos.append(seconds)
        fixeds.append(time_fixed(p))
        print("auto", autos[-1], "fixed", fixeds[-1], "p", p, flush=True)
    return p, autos, fixeds


def paired_table(p: int, autos: list[float], fixeds: list[float], what: str) -> list[str]:
    def cells(xs):
        return f"{' / '.join(f'{x:.1f}' for x in xs)} | {min(xs):.1f} | {statistics.median(xs):.1f}"

    return [
        f"| {what} | p | seconds, each run | min | median |",
        "| --- | ---: | --- | ---: | ---: |",
        f"| auto | {p} | {cells(autos)} |",
        f"| {p} | {p} | {cells(fixeds)} |",
        "",
        f"auto / fixed: {min(autos) / min(fixeds):.2f}x of the minima, "
        f"{statistics.median(autos) / statistics.median(fixeds):.2f}x of the medians.",
    ]


def sweep_rows(quick: bool, repeat: int) -> list[str]:
    N, D, T = (2000, 1000, 100.0) if quick else (10_000, 5000, 1000.0)

    def run(nodes):
        return child(SWEEP_CHILD.format(bench=str(HERE), N=N, D=D, T=T, nodes=nodes))

    def time_auto():
        out = run("auto")
        return out["seconds"], out["p"]

    p, autos, fixeds = paired(time_auto, lambda p: run(p)["seconds"], repeat)
    return [
        "### The 64-learning-rate HMM-ODE sweep, auto against the p it picked",
        "",
        f"N = {N}, D = {D}, K = M = 2, sign f, erf g, lr log in [0.05, 2], Euler dt = 0.01 to "
        f"t = {T:g}, 200 records; `simulate` in a fresh process, cold (no compilation cache), "
        f"timed around `simulate`; {repeat} pairs, interleaved.",
        "",
        *paired_table(p, autos, fixeds, "ode.nodes"),
    ]


def cli_rows(quick: bool, repeat: int) -> list[str]:
    import jax  # noqa: PLC0415
    import xarray as xr  # noqa: PLC0415

    from hmmjax.data.base import make_data_model  # noqa: PLC0415
    from hmmjax.io.state import save_state  # noqa: PLC0415
    from hmmjax.models.two_layer import init_network  # noqa: PLC0415

    T = 50 if quick else 300
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = make_data_model(jax.random.PRNGKey(0), "hmm", N=2000, M=2, D=1000, f="sign")
        save_state(tmp / "s.npz", init_network(jax.random.PRNGKey(1), 4, 2000), model)

        def run(nodes: str) -> tuple[float, int]:
            out = str(tmp / f"{nodes}.nc")
            cmd = [sys.executable, "-m", "hmmjax", "ode", str(tmp / "s.npz"), "--lr", "0.5",
                   "--t-max", str(T), "--nodes", nodes, "--out", out]  # fmt: skip
            t = time.perf_counter()
            subprocess.run(cmd, check=True, env=ENV, capture_output=True)
            seconds = time.perf_counter() - t
            with xr.open_dataset(out) as ds:
                return seconds, int(ds.attrs.get("ode_points", ds.attrs.get("points", -1)))

        p, autos, fixeds = paired(lambda: run("auto"), lambda p: run(str(p))[0], repeat)
    return [
        "### `hmmjax ode` on a K = 4, D = 1000 state file",
        "",
        f"N = 2000, D = 1000, K = 4, M = 2, lr = 0.5, t = {T}, default solver; each command "
        f"end to end in a fresh process, cold; {repeat} pairs, interleaved.",
        "",
        *paired_table(p, autos, fixeds, "--nodes"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sweep, shorter CLI run")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    ap.add_argument("--only", choices=("estimate", "sweep", "cli"))
    ap.add_argument("--repeat", type=int, default=3, help="timed pairs of auto and fixed")
    args = ap.parse_args()
    lines = [
        "## Automatic spectral nodes (issue 16)",
        "",
        f"Command: `python benchmarks/nodes.py{' --quick' if args.quick else ''}`  ",
        f"Machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
    ]
    parts = {"estimate": estimate_rows, "sweep": lambda: sweep_rows(args.quick, args.repeat),
             "cli": lambda: cli_rows(args.quick, args.repeat)}  # fmt: skip
    for name, part in parts.items():
        if args.only in (None, name):
            lines += [*part(), ""]
    text = "\n".join(lines).rstrip()
    print(text)
    if args.write:
        write_section("nodes", text)


if __name__ == "__main__":
    main()
