"""Where the time of a whole ``simulate`` call goes: the host's Python against the device.

    python benchmarks/profile_sweep.py [--case grid] [--t 10 0.02] [--tiny] [--top 15]

Runs a case of benchmarks/gpu.py (default ``grid``: the 1024-point lr x K x seed grid at
N = 784) end to end through ``hmmjax.experiments.simulate``, at each time ``--t`` (run.t_max):
a first call (compiling), a second timed call, then a third under ``cProfile`` and
``jax.profiler`` (a Perfetto trace in a temporary folder). Prints, per t:

- the second call's wall time, so that the difference between two t gives the cost of
  the SGD steps alone (the rest is set-up, test sets, measurements, host work);
- the host functions with the largest cumulative time (cProfile; ``block_until_ready``
  and ``device_get`` are where the host waits for the device);
- the operations of the compiled programs with the largest total time, per process of
  the trace (on a GPU its device streams; on a CPU the host's XLA threads). The
  profilers slow the third call down: the shares matter, not the sums.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HMMJAX_COMPILE_CACHE", "off")

import jax  # noqa: E402
from gpu import TINY, Sizes, cases  # noqa: E402
from traces import trace_ops  # noqa: E402

from hmmjax.config.settings import config_from_dict  # noqa: E402
from hmmjax.experiments.driver import simulate  # noqa: E402


def main(argv: list[str] | None = None) -> list[str]:
    """Print (and return) the report's lines."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="grid", help="a case of benchmarks/gpu.py")
    ap.add_argument("--t", type=float, nargs="+", default=[10.0, 0.02], help="run.t_max values")
    ap.add_argument("--tiny", action="store_true", help="gpu.py's tiny sizes (a CPU check)")
    ap.add_argument("--top", type=int, default=15, help="rows per table")
    args = ap.parse_args(argv)
    d = cases(TINY if args.tiny else Sizes())[args.case]
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.extend(text.split("\n"))

    say(f"jax {jax.__version__}, {jax.devices()[0].device_kind}; case {args.case}")
    for t in args.t:
        d["run"]["t_max"] = t
        cfg = config_from_dict(d)
        t0 = time.perf_counter()
        simulate(cfg, progress=False)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        simulate(cfg, progress=False)
        second = time.perf_counter() - t0
        say(f"\n## t = {t}: first call {first:.2f} s, second {second:.2f} s")
        prof = cProfile.Profile()

        def third(prof=prof, cfg=cfg):
            prof.enable()
            simulate(cfg, progress=False)
            prof.disable()

        ops = trace_ops(third)
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(args.top)
        say(out.getvalue().split("\n", 4)[-1].strip("\n"))
        for process, (counts, _) in sorted(ops.items()):
            total = sum(counts.values())
            say(f"\n{process}: {total / 1e3:.1f} ms in {len(counts)} operation names")
            for name, us in counts.most_common(args.top):
                say(f"  {us / 1e3:10.2f} ms  {name[:110]}")
    return lines


if __name__ == "__main__":
    main()
