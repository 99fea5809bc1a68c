"""Where the time of an online ensemble goes: XLA's own profile of one call, per operation.

    python benchmarks/profile_online.py [--E 256] [--block 16] [--whole-blocks] [--steps 1024]

The setting of benchmarks/online.py (HMM data, sign f, erf g, N = 784, D = 10, K = M = 2,
float32, one device): ``jax.vmap(advance)`` over E members with the trainer the engine
would use (``SGD.batched(E)``), or with every block's samples made at once
(``--whole-blocks``). The call is compiled and run once, then run again under
``jax.profiler`` (a Perfetto trace in a temporary folder); the table lists the operations
of the compiled program with their total time divided by the number of SGD steps, and how
often they ran. The profiler itself slows the run down: the shares matter, not the sum.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import tempfile

import jax

from hmmjax.data import make_data_model
from hmmjax.models.two_layer import init_network
from hmmjax.train.online import SGD, advance

N, D, K, M, LR = 784, 10, 2, 2, 0.2


def profile(E: int, block: int, steps: int, whole_blocks: bool) -> list[tuple[str, float, int]]:
    """(operation, microseconds per SGD step, calls), the slowest first."""
    model = make_data_model(jax.random.PRNGKey(0), "hmm", N=N, M=M, D=D, f="sign", g="erf")
    students = jax.vmap(lambda k: init_network(k, K, N))(jax.random.split(jax.random.PRNGKey(1), E))
    keys = jax.random.split(jax.random.PRNGKey(2), E)
    sgd = SGD.create(LR).batched(1 if whole_blocks else E)
    fn = jax.jit(jax.vmap(lambda s, k, n: advance(s, sgd, model, k, 0, n, block), (0, 0, None)))
    jax.block_until_ready(fn(students, keys, steps))
    with tempfile.TemporaryDirectory() as folder:
        jax.profiler.start_trace(folder, create_perfetto_trace=True)
        jax.block_until_ready(fn(students, keys, steps))
        jax.profiler.stop_trace()
        (path,) = glob.glob(f"{folder}/**/*perfetto_trace.json.gz", recursive=True)
        with gzip.open(path) as fh:
            trace = json.load(fh)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    total: collections.Counter = collections.Counter()
    calls: collections.Counter = collections.Counter()
    for e in events:
        name = e.get("name", "")
        # complete events of the compiled program's operations (not the runtime's own)
        if e.get("ph") == "X" and not any(c in name for c in ("$", "::", "end:", "Pjit")):
            total[name] += e.get("dur", 0)
            calls[name] += 1
    return [(name, t / steps, calls[name]) for name, t in total.most_common()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--E", type=int, default=256, help="ensemble members")
    ap.add_argument("--block", type=int, default=16, help="steps per block")
    ap.add_argument("--steps", type=int, default=1024, help="SGD steps profiled")
    ap.add_argument("--whole-blocks", action="store_true",
                    help="make every block's samples at once (as for few streams)")  # fmt: skip
    ap.add_argument("--top", type=int, default=12, help="operations listed")
    args = ap.parse_args()
    rows = profile(args.E, args.block, args.steps, args.whole_blocks)
    print(f"E = {args.E}, block {args.block}, "
          f"{'whole blocks' if args.whole_blocks else 'as the engine runs it'}")  # fmt: skip
    print("| operation | us per SGD step | calls |\n|---|---|---|")
    for name, us, n in rows[: args.top]:
        print(f"| {name} | {us:.1f} | {n} |")


if __name__ == "__main__":
    main()
