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

import jax
from traces import trace_ops  # benchmarks/traces.py (this script's folder)

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
    ops = trace_ops(lambda: jax.block_until_ready(fn(students, keys, steps)), python=True)
    total: collections.Counter = collections.Counter()
    calls: collections.Counter = collections.Counter()
    for times, counts in ops.values():
        for name, t in times.items():
            # the compiled program's operations (not the runtime's own, nor Python's)
            if not any(c in name for c in ("$", "::", "end:", "Pjit")):
                total[name] += t
                calls[name] += counts[name]
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
