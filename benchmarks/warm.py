"""Warm starts: ``hmmjax run`` with the persistent compilation cache cold and warm (issue 16).

    python benchmarks/warm.py [--write] [--config CONFIG] [--set KEY=VALUE ...]

Three runs of the same command, each a fresh process, each timed end to end (interpreter
start to exit, the run itself, the results file and the figure): with the cache off
(``HMMJAX_COMPILE_CACHE=off``), with an empty cache (it is filled), and again (warm: every
program is loaded). 'compiling': the seconds of the XLA compilations each run did, from
JAX's own log (``JAX_LOG_COMPILES=1``: one line per compilation), summed.

By default two commands: the quickstart (simulation) and a run with the ODE beside the
simulation (configs/hmm_ode_vs_sim.toml to t = 10 with 4 members; the ODE program was
compiled in every run until its host callbacks were removed, hmmjax.ode.solve).
``--config`` (with its ``--set``) runs that one command instead.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import machine, write_section  # noqa: E402

ROOT = HERE.parent
CASES = (
    ("configs/quickstart.toml", []),
    ("configs/hmm_ode_vs_sim.toml", ["run.t_max=10", "run.ensemble=4"]),
)
COMPILED = re.compile(r"Finished XLA compilation of .* in ([0-9.e-]+) sec")


def run(config: str, sets: list[str], cache: str, out: Path) -> tuple[float, float]:
    env = {**os.environ, "HMMJAX_COMPILE_CACHE": cache, "JAX_LOG_COMPILES": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path])}  # fmt: skip
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    args = [sys.executable, "-m", "hmmjax", "run", config, "--quiet", "--set",
            f"output.out={out}", "--set", f"output.figure={out.with_suffix('.png')}"]  # fmt: skip
    for s in sets:
        args += ["--set", s]
    t = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t
    compiling = sum(float(m) for m in COMPILED.findall(done.stderr))
    return wall, compiling


def three_runs(config: str, sets: list[str]) -> tuple[list[tuple[str, float, float]], int]:
    """Cache off, cold and warm: (label, wall, compiling) each, and the cache's entries."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = tmp / "cache"
        rows = []
        for label, where in (("cache off", "off"), ("cold (empty cache)", str(cache)),
                             ("warm (second run)", str(cache))):  # fmt: skip
            wall, compiling = run(config, sets, where, tmp / "r.nc")
            rows.append((label, wall, compiling))
            print(config, label, f"{wall:.1f} s, compiling {compiling:.1f} s", flush=True)
        return rows, len(list(cache.iterdir()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", help="one config instead of the default two")
    ap.add_argument("--set", action="append", default=[], dest="sets")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    if args.sets and args.config is None:
        ap.error("--set changes the command given with --config; give --config too")
    cases = CASES if args.config is None else ((args.config, args.sets),)
    table, commands = [], []
    for config, sets in cases:
        rows, entries = three_runs(config, sets)
        command = " ".join(["hmmjax run", config, *(f"--set {s}" for s in sets)])
        commands.append(f"`{command}` (the cache held {entries} programs after its cold run)")
        table += [f"| {config} | {label} | {wall:.1f} | {c:.1f} |" for label, wall, c in rows]
    lines = [
        "## Warm starts: the persistent compilation cache (issue 16)",
        "",
        "Command: `python benchmarks/warm.py`, which runs each of "
        f"{' and '.join(commands)} three times  ",
        f"Machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  ",
        "Each run a fresh process, end to end; 'compiling': the XLA compilations the run "
        "did (``JAX_LOG_COMPILES``, summed).",
        "",
        "| config | run | wall (s) | compiling (s) |",
        "| --- | --- | ---: | ---: |",
        *table,
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("warm", text)


if __name__ == "__main__":
    main()
