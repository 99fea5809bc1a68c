"""Regenerate the figure gallery (docs/gallery.md): run every config of ``configs/``, time it.

    python benchmarks/gallery.py [--only NAME ...] [--no-write]

Each config runs as a user would run it, ``hmmjax run configs/NAME.toml -q`` in a child
process (``hmmjax optimise`` for a config with an ``[optimise]`` table; on the CPU, one
XLA host device per core), writing results/gallery/NAME.nc, and
then ``hmmjax plot`` draws docs/NAME.png from that file (the committed figure is the one
the results file gives). The wall time of each run goes to the ``gallery`` section of
benchmarks/RESULTS.md, with the command, the machine and the date. A config that fails
stops nothing: its row says so, and the script exits with 1 at the end.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import time
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, write_section  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "configs")


def hmmjax(*args: str) -> list[str]:
    """The hmmjax command of this interpreter's environment."""
    return [sys.executable, "-m", "hmmjax", *args]


def command_of(path: str) -> str:
    """The hmmjax command of a config: optimise for one with an [optimise] table."""
    with open(path, "rb") as fh:
        return "optimise" if "optimise" in tomllib.load(fh) else "run"


SKIPPED = {"deep_invariant_mnist": "needs MNIST's IDX files in data/mnist/ and a GPU"}
"""Configs run only when named by --only, and why."""


def run_one(name: str) -> tuple[str, float | None]:
    """(status, wall seconds of ``hmmjax run`` or ``optimise``) for configs/NAME.toml."""
    out = os.path.join(ROOT, "results", "gallery", f"{name}.nc")
    fig = os.path.join(ROOT, "docs", f"{name}.png")
    config = os.path.join(CONFIGS, f"{name}.toml")
    t0 = time.perf_counter()
    run = subprocess.run(hmmjax(command_of(config), config, "-q", "--fresh", "--out", out,
                                "--figure", fig), cwd=ROOT)  # fmt: skip
    wall = time.perf_counter() - t0
    if run.returncode != 0:
        return f"run failed (exit {run.returncode})", None
    plot = subprocess.run(hmmjax("plot", out, "--out", fig), cwd=ROOT)
    if plot.returncode != 0:
        return f"plot failed (exit {plot.returncode})", wall
    return "ok", wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = sorted(f[:-5] for f in os.listdir(CONFIGS) if f.endswith(".toml"))
    ap.add_argument("--only", nargs="+", choices=names, metavar="NAME", help="these configs")
    ap.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = ap.parse_args()
    rows = []
    for name in args.only or names:
        if name in SKIPPED and not args.only:
            rows.append((name, f"skipped: {SKIPPED[name]}", None))
            continue
        print(f"gallery: {name}", flush=True)
        status, wall = run_one(name)
        rows.append((name, status, wall))
        print(f"gallery: {name}: {status}, {wall or float('nan'):.1f} s", flush=True)
    table = "\n".join(
        [
            "## Gallery: run time of each config",
            "",
            f"Command: `python benchmarks/gallery.py{' --only ' + ' '.join(args.only) if args.only else ''}`"  # noqa: E501
            f" (each config: `hmmjax run configs/NAME.toml -q`, or `hmmjax optimise` for one "
            "with an `[optimise]` table, compilation included).",
            f"Machine: {machine()}, CPU; date {datetime.date.today().isoformat()}.",
            "",
            "| config | wall time | status |",
            "| --- | --- | --- |",
            *[f"| `{n}` | {'' if w is None else f'{w:.0f} s'} | {s} |" for n, s, w in rows],
        ]
    )
    print(table)
    if not args.no_write and not args.only:
        write_section("gallery", table)
    elif args.only and not args.no_write:
        write_section("gallery-partial", table)
    return 0 if all(s == "ok" or s.startswith("skipped") for _, s, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
