"""Automatic spectral nodes: the probe's estimate against the true node error, and the cost
of ``nodes = "auto"`` against a run at the p it picks (issue 16).

    python benchmarks/nodes.py [--quick] [--write] [--only estimate|sweep|cli]

- ``estimate``: compressed runs at p = 5, 9, 17, 33 nodes, each with its probe on the
  2p - 1 nested nodes (``solve_hmm_state(probe=...)``), against the full ODE on all D
  eigenvalues (Euler dt = 0.01 for all): the true error max_t |eg_p / eg_full - 1| and the
  estimate ``node_error``; and that the probe leaves the run unchanged.
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


def estimate_rows() -> list[str]:
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from hmmjax.ode import node_error, probe_size, solve_hmm_sample, solve_hmm_state  # noqa: PLC0415
    from hmmjax.ode.spectral import sample_eigenvalues, sample_state  # noqa: PLC0415

    rows = []
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        for N, D, K, M, lr, T in ((1000, 500, 2, 2, 0.2, 100.0), (1000, 500, 2, 2, 1.5, 300.0),
                                  (2000, 1000, 4, 2, 0.5, 300.0)):  # fmt: skip
            F = rng.standard_normal((D, N))
            w, th = rng.standard_normal((K, N)), rng.standard_normal((M, D))
            v, A = np.ones(K), np.ones(M)
            ts = np.linspace(0, T, 51)
            opts = dict(lr=lr, f="sign", g="erf", solver="euler", dt=0.01)
            full = np.asarray(solve_hmm_sample(w, v, F, th, A, ts, nodes="full", **opts).eg)
            rho = sample_eigenvalues(jnp.asarray(F))
            for p in (5, 9, 17, 33):
                st = sample_state(w, F, th, p, rho)
                pr = sample_state(w, F, th, probe_size(p), rho)
                plain = solve_hmm_state(st, ts, v=v, A=A, delta=D / N, **opts)
                probed = solve_hmm_state(st, ts, v=v, A=A, delta=D / N, probe=pr, **opts)
                true = float(np.max(np.abs(np.asarray(plain.eg) / full - 1)))
                est = float(node_error(probed))
                same = float(np.max(np.abs(np.asarray(probed.eg) - np.asarray(plain.eg))))
                rows.append(f"| {N} | {D} | {K} | {lr} | {T:g} | {p} | {true:.2e} | {est:.2e} | "
                            f"{est / true:.2f} | {same:.0e} |")  # fmt: skip
                print(rows[-1], flush=True)
    return [
        "### The probe's estimate against the true node error",
        "",
        "Sampled F (Gaussian), student w and teacher theta (seeded NumPy), sign f, erf g, "
        "first layer, exact teacher term, Euler dt = 0.01. True: max_t |eg_p / eg_full - 1| "
        "against all D eigenvalues; estimate: ``node_error`` of the probed run; last column: "
        "max |eg| difference between the probed and the plain run at p.",
        "",
        "| N | D | K | lr | t | p | true error | estimate | estimate / true | probed - plain |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
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


def sweep_rows(quick: bool) -> list[str]:
    N, D, T = (2000, 1000, 100.0) if quick else (10_000, 5000, 1000.0)
    auto = child(SWEEP_CHILD.format(bench=str(HERE), N=N, D=D, T=T, nodes="auto"))
    print("auto", auto, flush=True)
    fixed = child(SWEEP_CHILD.format(bench=str(HERE), N=N, D=D, T=T, nodes=auto["p"]))
    print("fixed", fixed, flush=True)
    return [
        "### The 64-learning-rate HMM-ODE sweep, auto against the p it picked",
        "",
        f"N = {N}, D = {D}, K = M = 2, sign f, erf g, lr log in [0.05, 2], Euler dt = 0.01 to "
        f"t = {T:g}, 200 records; `simulate` in a fresh process, cold (no compilation cache).",
        "",
        "| ode.nodes | p | seconds |",
        "| --- | ---: | ---: |",
        f"| auto | {auto['p']} | {auto['seconds']:.1f} |",
        f"| {auto['p']} | {fixed['p']} | {fixed['seconds']:.1f} |",
        "",
        f"auto / fixed: {auto['seconds'] / fixed['seconds']:.2f}x.",
    ]


def cli_rows(quick: bool) -> list[str]:
    import jax  # noqa: PLC0415

    from hmmjax.data.base import make_data_model  # noqa: PLC0415
    from hmmjax.io.state import save_state  # noqa: PLC0415
    from hmmjax.models.two_layer import init_network  # noqa: PLC0415

    T = 50 if quick else 300
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = make_data_model(jax.random.PRNGKey(0), "hmm", N=2000, M=2, D=1000, f="sign")
        save_state(tmp / "s.npz", init_network(jax.random.PRNGKey(1), 4, 2000), model)
        times = {}
        for nodes in ("auto", None):
            picked = nodes or str(times["auto"][1])
            out = str(tmp / f"{picked}.nc")
            cmd = [sys.executable, "-m", "hmmjax", "ode", str(tmp / "s.npz"), "--lr", "0.5",
                   "--t-max", str(T), "--nodes", picked, "--out", out]  # fmt: skip
            t = time.perf_counter()
            subprocess.run(cmd, check=True, env=ENV, capture_output=True)
            seconds = time.perf_counter() - t
            import xarray as xr  # noqa: PLC0415

            with xr.open_dataset(tmp / f"{picked}.nc") as ds:
                p = int(ds.attrs.get("ode_points", ds.attrs.get("points", -1)))
            times[nodes or "fixed"] = (seconds, p)
            print(nodes or "fixed", times[nodes or "fixed"], flush=True)
    (ta, pa), (tf, pf) = times["auto"], times["fixed"]
    return [
        "### `hmmjax ode` on a K = 4, D = 1000 state file",
        "",
        f"N = 2000, D = 1000, K = 4, M = 2, lr = 0.5, t = {T}, default solver; each command "
        "end to end in a fresh process, cold.",
        "",
        "| --nodes | p | seconds |",
        "| --- | ---: | ---: |",
        f"| auto | {pa} | {ta:.1f} |",
        f"| {pa} | {pf} | {tf:.1f} |",
        "",
        f"auto / fixed: {ta / tf:.2f}x.",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sweep, shorter CLI run")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    ap.add_argument("--only", choices=("estimate", "sweep", "cli"))
    args = ap.parse_args()
    lines = [
        "## Automatic spectral nodes (issue 16)",
        "",
        f"Command: `python benchmarks/nodes.py{' --quick' if args.quick else ''}`  ",
        f"Machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
    ]
    parts = {"estimate": estimate_rows, "sweep": lambda: sweep_rows(args.quick),
             "cli": lambda: cli_rows(args.quick)}  # fmt: skip
    for name, part in parts.items():
        if args.only in (None, name):
            lines += [*part(), ""]
    text = "\n".join(lines).rstrip()
    print(text)
    if args.write:
        write_section("nodes", text)


if __name__ == "__main__":
    main()
