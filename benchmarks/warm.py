"""Warm starts: ``hmmjax run`` with the persistent compilation cache cold and warm (issue 16).

    python benchmarks/warm.py [--write] [--config configs/quickstart.toml] [--set KEY=VALUE ...]

Three runs of the same command, each a fresh process, each timed end to end (interpreter
start to exit, the run itself, the results file and the figure): with the cache off
(``HMMJAX_COMPILE_CACHE=off``), with an empty cache (it is filled), and again (warm: every
program is loaded). 'compiling': the seconds of the XLA compilations each run did, from
JAX's own log (``JAX_LOG_COMPILES=1``: one line per compilation), summed.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/quickstart.toml")
    ap.add_argument("--set", action="append", default=[], dest="sets")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = tmp / "cache"
        rows = []
        for label, where in (("cache off", "off"), ("cold (empty cache)", str(cache)),
                             ("warm (second run)", str(cache))):  # fmt: skip
            wall, compiling = run(args.config, args.sets, where, tmp / "r.nc")
            rows.append((label, wall, compiling))
            print(label, f"{wall:.1f} s, compiling {compiling:.1f} s", flush=True)
        entries = len(list(cache.iterdir()))
    command = " ".join(["hmmjax run", args.config, *(f"--set {s}" for s in args.sets)])
    lines = [
        "## Warm starts: the persistent compilation cache (issue 16)",
        "",
        f"Command: `python benchmarks/warm.py` (runs `{command}` three times)  ",
        f"Machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  ",
        "Each run a fresh process, end to end; 'compiling': the XLA compilations the run "
        "did (``JAX_LOG_COMPILES``, summed). The cache held "
        f"{entries} programs after the first cached run.",
        "",
        "| run | wall (s) | compiling (s) |",
        "| --- | ---: | ---: |",
        *(f"| {label} | {wall:.1f} | {c:.1f} |" for label, wall, c in rows),
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("warm", text)


if __name__ == "__main__":
    main()
