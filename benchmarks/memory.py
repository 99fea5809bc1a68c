"""The memory plan against the measured peak: grids of different shapes, each run in its
own process (issue 15).

    python benchmarks/memory.py [--write] [--only NAME ...]
    python benchmarks/memory.py --one CONFIG.toml [--set KEY=VALUE ...]   # one grid, JSON

Every grid runs in a fresh Python process (``--one``), on two XLA host devices like
``hmmjax run`` on a 2-core machine. The process reads its resident memory (VmRSS) once JAX
has started and hmmjax is imported (the baseline), runs ``simulate`` (the code path of
``hmmjax run``: memory plan, set-up, training, ODE where asked) with a checkpoint file, and
reads its peak resident memory (VmHWM; not ``ru_maxrss``, into which Linux folds the peak
of the parent process across exec) at the end. The estimate is the plan's
``need_bytes`` (Dataset attribute ``memory_need_gib``): XLA's accounting of the compiled
set-up draw and chunk plus the lanes and host arrays, times the stated safety factor, plus
the runtime allowance (``hmmjax.sweep.memory``). The table: grid, estimate, measured peak
above baseline, their ratio; ``--write`` puts it into RESULTS.md (section ``memory-plan``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HMMJAX_COMPILE_CACHE", "off")  # the children measure cold runs

# name -> (config, overrides): online (shared data), unshared data, finite training set,
# large N, the ODE with the simulation, a grid of several shapes, an invariant manifold
GRIDS: dict[str, tuple[str, list[str]]] = {
    "online, shared data, 3 lr": (
        "configs/quickstart.toml",
        ["data.N=3000", "data.D=1500", "run.test_size=20000", "run.t_max=0.3",
         "grid.lr=[0.1, 0.2, 0.5]"],
    ),
    "unshared data, 2 lr": (
        "configs/quickstart.toml",
        ["data.N=2000", "data.D=1000", "run.test_size=10000", "run.ensemble=4",
         "data.shared=false", "run.t_max=0.2", "grid.lr=[0.1, 0.2]"],
    ),
    "finite set, 2 K": (
        "configs/quickstart.toml",
        ["data.N=1000", "data.D=500", "finite.P=4000", "sgd.batch=8", "run.test_size=20000",
         "run.t_max=0.5", "grid.K=[2, 4]"],
    ),
    "large N": (
        "configs/quickstart.toml",
        ["data.N=20000", "data.D=200", "run.test_size=4000", "run.ensemble=4",
         "run.t_max=0.05", "grid.lr=[0.2, 0.5]"],
    ),
    "ODE and simulation": (
        "configs/quickstart.toml",
        ["data.N=2000", "data.D=1000", "run.mode=\"both\"", "ode.nodes=17",
         "run.test_size=20000", "run.t_max=0.5", "grid.lr=[0.2, 0.5]"],
    ),
    "several shapes: N x K": (
        "configs/quickstart.toml",
        ["data.D=500", "run.test_size=10000", "run.t_max=0.3", "grid.N=[1000, 2000]",
         "grid.K=[2, 4]"],
    ),
    "invariant stripe": (
        "configs/invariant_alpha.toml",
        ["data.N=50", "finite.P=2000", "run.test_size=20000", "run.ensemble=8",
         "invariant.max_steps=300"],
    ),
}
# fmt: on


def _status(field: str) -> int:
    """A memory field of /proc/self/status, in bytes (VmRSS: now; VmHWM: the peak)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def one(config: str, overrides: list[str]) -> dict:
    """Run one grid in this process: estimate, peak above baseline (bytes), seconds."""
    os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    import jax  # noqa: PLC0415 (after the host-device flag)

    from hmmjax.config import load_config  # noqa: PLC0415 (as above)
    from hmmjax.experiments import simulate  # noqa: PLC0415 (as above)

    jax.numpy.zeros(1).block_until_ready()
    base = _status("VmRSS")
    cfg = load_config(ROOT / config, overrides)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ds = simulate(cfg, progress=False, checkpoint=Path(tmp) / "grid.ckpt.npz")
    # VmHWM, not ru_maxrss: Linux folds the parent's peak into ru_maxrss across exec
    peak = _status("VmHWM")
    return {
        "estimate": ds.attrs["memory_need_gib"] * 2**30,
        "peak": peak - base,
        "baseline": base,
        "seconds": time.perf_counter() - t0,
        "plan": ds.attrs["plan"],
    }


def measure(config: str, overrides: list[str]) -> dict:
    """``one`` in a fresh process (what a test or the table calls)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", config]
    for o in overrides:
        cmd += ["--set", o]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows: dict[str, dict]) -> str:
    gib = 2**30
    lines = [
        "| grid | estimate (GiB) | measured peak above baseline (GiB) | measured / estimate |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['estimate'] / gib:.3f} | {r['peak'] / gib:.3f} | "
                     f"{r['peak'] / r['estimate']:.2f} |")  # fmt: skip
    return "\n".join(lines)


def _write(text: str) -> None:
    path = ROOT / "benchmarks" / "RESULTS.md"
    body = path.read_text()
    start, end = "<!-- memory-plan -->", "<!-- /memory-plan -->"
    block = f"{start}\n{text}\n{end}"
    if start in body:
        body = body[: body.index(start)] + block + body[body.index(end) + len(end) :]
    else:
        body = body.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(body)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--one", metavar="CONFIG.toml")
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--only", nargs="*", help="names of GRIDS to run (default: all)")
    p.add_argument("--write", action="store_true", help="write the table into RESULTS.md")
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.set)))
        return 0
    rows = {}
    for name, (config, overrides) in GRIDS.items():
        if args.only and name not in args.only:
            continue
        rows[name] = measure(config, overrides)
        r = rows[name]
        print(f"{name}: estimate {r['estimate'] / 2**30:.3f} GiB, peak {r['peak'] / 2**30:.3f}"
              f" GiB, {r['seconds']:.0f} s; {r['plan']}", flush=True)  # fmt: skip
    text = table(rows)
    print(text)
    bad = [n for n, r in rows.items() if r["peak"] > r["estimate"]]
    if args.write:
        cmd = "python benchmarks/memory.py --write"
        _write(
            f"## Memory plan: estimate against measured peak\n\n`{cmd}`, "
            f"{time.strftime('%Y-%m-%d')}, {platform.node() or 'this machine'} "
            f"({os.cpu_count()} CPU cores, two XLA host devices), jax "
            f"{__import__('jax').__version__}. Each grid in its own process; peak = "
            "VmHWM at the end minus VmRSS once JAX and hmmjax are loaded. Grids and overrides: "
            "`GRIDS` in benchmarks/memory.py.\n\n" + text
        )
    if bad:
        print(f"peak above the estimate: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
