"""Online-SGD throughput with structured feature matrices (``data.features``), in one run.

Setting: HMM data (teacher on c), f = sign, g = erf, D = N / 2, K = M = 2, first layer
trained, float32, E = 8 members (``jax.vmap(advance)``, one device), blocks of ``--block``
steps. For each N of ``--sizes`` and each kind of F: student-steps/s, the flop count of one
student-step and the share of the machine's fp32 matmul peak (measured in the same run).

Flop per student-step: the student and the teacher (4 K N + 2 D M) plus the features:
- gaussian: c F, 2 D N (F stored: D N floats; run only where it fits in ``--max-gib``);
- hadamard: F^T c as Kronecker factors of dense Hadamard matrices (``hadamard_factors``),
  2 N sum(m_i) for factors m_i (what the machine executes; log2 N adds per component
  would be the butterfly's count);
- dct: a real FFT of length N, counted as 2.5 N log2 N (the usual count of a real DCT).

    python benchmarks/features.py [--sizes 14 16 17] [--write] [--tiny]
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import sys
import time

import jax
import jax.numpy as jnp

from hmmjax.data import make_data_model
from hmmjax.data.features import hadamard_factors
from hmmjax.models.two_layer import init_network
from hmmjax.train.online import SGD, advance

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, write_section  # noqa: E402
from peak import fp32_peak  # noqa: E402

K, M, LR, E = 2, 2, 0.2, 8
KINDS = ("gaussian", "dct", "hadamard")


def hadamard_flops(N: int) -> int:
    return 2 * N * sum(1 << k for k in hadamard_factors(N.bit_length() - 1))


def flops_per_step(kind: str, N: int, D: int) -> float:
    base = 4 * K * N + 2 * D * M
    if kind == "gaussian":
        return base + 2 * D * N
    if kind == "hadamard":
        return base + hadamard_flops(N)
    return base + 2.5 * N * math.log2(N)


def runner(kind: str, N: int, D: int, block: int):
    model = make_data_model(jax.random.PRNGKey(0), "hmm", N=N, M=M, D=D, f="sign", g="erf",
                            features=kind)  # fmt: skip
    students = jax.vmap(lambda k: init_network(k, K, N))(jax.random.split(jax.random.PRNGKey(1), E))
    keys = jax.random.split(jax.random.PRNGKey(2), E)
    sgd = SGD.create(LR)

    @jax.jit
    def ensemble(students, keys, stop):
        return jax.vmap(lambda s, k: advance(s, sgd, model, k, 0, stop, block))(students, keys)

    return lambda steps: jax.block_until_ready(ensemble(students, keys, jnp.asarray(steps)))


def timed(run, seconds: float) -> tuple[int, float]:
    """(steps, seconds) of a run lasting about ``seconds`` after a compiling call."""
    run(1)
    steps = 1
    while True:
        t0 = time.perf_counter()
        run(steps)
        dt = time.perf_counter() - t0
        if dt > seconds:
            return steps, dt
        steps = max(steps * 2, int(steps * 1.2 * seconds / max(dt, 1e-3)))


def main(argv: list[str] | None = None) -> list[str]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[14, 16, 17], help="log2 N")
    ap.add_argument("--seconds", type=float, default=3.0, help="length of one timed run")
    ap.add_argument("--block", type=int, default=16, help="steps drawn per block")
    ap.add_argument("--max-gib", type=float, default=4.0, help="largest Gaussian F to store")
    ap.add_argument("--tiny", action="store_true", help="N = 2^6 (the tests)")
    ap.add_argument("--write", action="store_true", help="write the table to RESULTS.md")
    args = ap.parse_args(argv)
    # full float32 products, as hmmjax's runs compute them (hmmjax.sweep.numerics) and as
    # peak.fp32_peak measures: JAX's default on NVIDIA GPUs would round them to TF32
    with jax.default_matmul_precision("float32"):
        return measure(args)


def measure(args) -> list[str]:
    sizes = [6] if args.tiny else args.sizes
    seconds = 0.05 if args.tiny else args.seconds
    peak = fp32_peak(256 if args.tiny else 2048)
    rows = []
    for n in sizes:
        N = 1 << n
        D = N // 2
        for kind in KINDS:
            if kind == "gaussian" and 4 * D * N / 2**30 > args.max_gib:
                rows.append(f"| 2^{n} | {kind} | F would take {4 * D * N / 2**30:.0f} GiB "
                            "(not run) | | |")  # fmt: skip
                continue
            steps, dt = timed(runner(kind, N, D, args.block), seconds)
            rate = E * steps / dt
            fl = flops_per_step(kind, N, D)
            share = rate * fl / 1e9 / peak
            rows.append(f"| 2^{n} | {kind} | {rate:,.0f} | {fl / 1e6:.2f} | {100 * share:.1f}% |")
            print(rows[-1], flush=True)
    table = "\n".join(
        [
            f"Structured features: online SGD throughput, D = N / 2, K = M = 2, E = {E}, "
            f"block {args.block}, float32 (full float32 products), one device. fp32 matmul "
            f"peak measured in the same run: {peak:.0f} GFLOP/s.",
            "",
            f"Command: `python benchmarks/features.py{' --write' if args.write else ''}`; "
            f"machine: {machine()}; jax {jax.__version__}; "
            f"{datetime.date.today().isoformat()}.",
            "",
            "| N | features | student-steps/s | MFLOP / student-step | share of peak |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
    print(table)
    if args.write and not args.tiny:
        write_section("features", table)
    return rows


if __name__ == "__main__":
    main()
