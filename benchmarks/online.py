"""Online-SGD throughput on hidden-manifold data, hmmjax against a plain NumPy loop.

Setting: HMM data (teacher on c), f = sign, g = erf, N = 784, D = 10, K = M = 2, first
layer trained, lr = 0.2, float32. E students, each with its own initial weights and data
stream, share F and the teacher. The "hmmjax" rows run the engine's own compiled chunk
(``hmmjax.sweep.engine.compiled_chunk``, what ``simulate`` runs for a config with
``run.ensemble = E``, on the devices it would use): one recording interval of the timed
steps, then its measurement on a test set of 100. On a CPU the engine splits a large
ensemble into two member parts (``engine.member_parts``), one per XLA host device (what
``hmmjax run`` sets up: one per core); "one device" runs the parts on one device as two
independent groups (a Python session without XLA_FLAGS); "1 group" is the same program
unsplit, on one device. The rows
"vmap of advance" are the trainer alone, ``jax.vmap(advance)`` over the members with the
trainer the engine would use (``SGD.batched``: for E >= 16 each step's inputs are made
inside the step loop); "whole blocks" make every block's samples at once instead; "in a
lane axis of one" wraps them in a ``vmap`` over one lane, as the engine ran a single point
before 2026-12-03 (3x slower at E = 256 on a 2-core CPU). The
"XLA options" rows compile the engine's chunk with two XLA:CPU options (``XLA_OPTIONS``).
With ``--devices 2`` (the default) the script also runs the E = 256 ensemble split over
two XLA host devices with ``shard_map`` (one per core).
The NumPy reference does, per step, draw c, x = sign(F^T c / sqrt D), the label, the
student update; for E > 1 vectorised over the ensemble as a NumPy user would write it.

    python benchmarks/online.py [--quick] [--write] [--devices N]

Timing: one call compiles (and warms up), then each configuration is timed ``--reps`` times
with a step count chosen so one repetition takes about ``--seconds``; the table reports the
best repetition. Flops per student-step counted: c F (2 D N), the teacher (2 D M + 2 M),
the fields w x (2 K N) and the rank-K update (2 K N); random numbers, sign, erf and other
elementwise work are not counted.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import sys
import time
from functools import partial

DEVICES = int(sys.argv[sys.argv.index("--devices") + 1]) if "--devices" in sys.argv else 2
# XLA reads this flag when jax initialises: it must be set before jax is imported.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={DEVICES}"
)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402
from scipy.special import erf  # noqa: E402

from hmmjax.config.settings import config_from_dict  # noqa: E402
from hmmjax.data import make_data_model  # noqa: E402
from hmmjax.models.two_layer import init_network  # noqa: E402
from hmmjax.sweep.engine import compiled_chunk, member_parts, placements  # noqa: E402
from hmmjax.sweep.lanes import (  # noqa: E402
    build_lanes,
    lane_shape,
    split_members,
    stream_layout,
)
from hmmjax.sweep.plan import choose_devices  # noqa: E402
from hmmjax.train.online import SGD, advance  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine  # noqa: E402
from peak import fp32_peak  # noqa: E402

N, D, K, M, LR = 784, 10, 2, 2, 0.2
FLOPS_PER_STEP = 2 * D * N + 2 * D * M + 2 * M + 4 * K * N
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
BEGIN, END = "<!-- online-sgd:begin -->", "<!-- online-sgd:end -->"


def best_time(run, steps: int, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run(steps)
        times.append(time.perf_counter() - t0)
    return min(times)


def calibrate(run, seconds: float, first: int) -> int:
    """A step count for which one ``run`` takes about ``seconds`` (after a warm-up call)."""
    run(first)  # compile and warm up
    steps = first
    while True:
        dt = best_time(run, steps, 2)
        if dt > 0.2 * seconds:
            return max(1, int(steps * seconds / dt))
        steps *= 4


def measure(run, seconds: float, first: int, reps: int) -> tuple[int, float]:
    """(steps, best time of ``reps`` runs), with the best run lasting at least seconds / 2."""
    steps = calibrate(run, seconds, first)
    while True:
        t = best_time(run, steps, reps)
        if t > 0.5 * seconds:
            return steps, t
        steps = int(steps * seconds / t)


# ---------------------------------------------------------------- hmmjax


# XLA:CPU compile options that the E = 256 probes of 2026-12-03 found faster for large
# ensembles: matrix products by Eigen (multi-threaded) instead of YNNPACK fusions, and
# 512-bit vectors in the elementwise loops. Given to this benchmark's jit only (the
# "XLA options" rows); a user can set the same through XLA_FLAGS (docs/guides/ensembles.md).
XLA_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "", "xla_cpu_prefer_vector_width": 512}


def hmmjax_runner(E: int, block: int, devices: int = 1, whole_blocks: bool = False,
                  lane_axis: bool = False):  # fmt: skip
    """``jax.vmap(advance)`` over the members; ``lane_axis``: inside a ``vmap`` over a
    lane axis of one, as the engine ran a single point before 2026-12-03 (commit e787ab0)."""
    model = make_data_model(jax.random.PRNGKey(0), "hmm", N=N, M=M, D=D, f="sign", g="erf")
    students = jax.vmap(lambda k: init_network(k, K, N))(jax.random.split(jax.random.PRNGKey(1), E))
    keys = jax.random.split(jax.random.PRNGKey(2), E)
    # as the engine does (the members of the ensemble), or every block's samples at once
    sgd = SGD.create(LR).batched(1 if whole_blocks else E)

    def ensemble(students, keys, stop):
        return jax.vmap(lambda s, k: advance(s, sgd, model, k, 0, stop, block))(students, keys)

    if lane_axis:
        one = partial(jax.tree.map, lambda a: a[None])
        students, keys = one(students), one(keys)
        ensemble = jax.vmap(ensemble, in_axes=(0, 0, None))
    if devices > 1:
        mesh = jax.make_mesh((devices,), ("e",))
        ensemble = jax.shard_map(
            ensemble, mesh=mesh, in_specs=(P("e"), P("e"), P()), out_specs=P("e")
        )
        students, keys = jax.device_put((students, keys), NamedSharding(mesh, P("e")))
    fn = jax.jit(ensemble)
    return lambda steps: jax.block_until_ready(fn(students, keys, jnp.asarray(steps)))


def engine_runner(E: int, block: int, groups: int | None = None, options: dict | None = None,
                  parts: bool = True, devices: str | int = "all"):  # fmt: skip
    """The engine's own compiled chunk on this benchmark's ensemble, laid out as
    ``simulate`` lays it out (``engine.member_parts``: on a CPU, a large ensemble in
    member parts, one per host device): one recording interval of ``steps`` steps, then
    the interval's measurement on a test set of 100. ``groups``: the most independent
    groups of a lane's members (default: the engine's, ``cpu_groups``); ``parts``: False
    for one lane (no member parts); ``devices``: ``run.devices``. ``options``: XLA
    compiler options for this program only."""
    cfg = config_from_dict({
        "data": {"model": "hmm", "N": N, "D": D, "f": "sign"}, "teacher": {"M": M},
        "student": {"K": K, "g": "erf"}, "sgd": {"lr": LR},
        "run": {"ensemble": E, "block": block, "test_size": 100, "devices": devices},
    })  # fmt: skip
    layout = stream_layout([cfg])
    if parts:
        whole = jax.eval_shape(lambda: build_lanes([cfg], layout=layout))
        layout = split_members(layout, member_parts(whole, layout, True, jax.local_devices()))
    chosen = tuple(choose_devices(cfg, layout.n_lanes))
    chunk = compiled_chunk(chosen, True, block, True, groups, layout.parts)
    lanes = build_lanes([cfg], layout=layout)
    split, whole = placements(chosen)

    def place(tree, sharding):
        return tree if sharding is None else jax.device_put(tree, sharding)

    L, Q, members = lane_shape(lanes)
    students = place(lanes.students, split)
    dead = place(jnp.zeros((L, Q, members), bool), split)
    rest = place((lanes.trainer, lanes.model, lanes.keys, lanes.test), split)
    bound = place(jnp.asarray(cfg.run.diverge_eg, jnp.float32), whole)

    def args(steps):
        lo, hi = (place(jnp.asarray(np.array([s])), whole) for s in (0, steps))
        return students, dead, rest, lo, hi, bound

    if options is not None:
        chunk = chunk.lower(*args(1)).compile(compiler_options=options)

    def run(steps):
        jax.block_until_ready(chunk(*args(steps)))

    return run


# ---------------------------------------------------------------- NumPy


def numpy_runner(E: int):
    rng = np.random.default_rng(0)
    F = rng.standard_normal((D, N), dtype=np.float32)
    theta = rng.standard_normal((M, D), dtype=np.float32)
    A = np.ones(M, np.float32)
    w0 = rng.standard_normal((E, K, N), dtype=np.float32)
    v = np.ones(K, np.float32)
    sqrt2, sqrtD, sqrtN = math.sqrt(2), math.sqrt(D), math.sqrt(N)
    c2 = math.sqrt(2 / math.pi)

    def run(steps):
        w = w0.copy()
        for _ in range(steps):
            c = rng.standard_normal((E, D), dtype=np.float32)
            x = np.sign(c @ F / sqrtD)  # (E, N)
            y = erf(c @ theta.T / (sqrtD * sqrt2)) @ A  # (E,)
            lam = np.einsum("ekn,en->ek", w, x) / sqrtN  # (E, K)
            delta = y - erf(lam / sqrt2) @ v
            coef = (LR / sqrtN) * v * c2 * np.exp(-0.5 * lam * lam) * delta[:, None]
            w += coef[:, :, None] * x[:, None, :]
        return w

    return run


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short runs, E = 1 and 256 only")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    ap.add_argument("--devices", type=int, default=2, help="XLA host devices (set before import)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.5, help="target time per repetition")
    args = ap.parse_args()
    seconds = 0.4 if args.quick else args.seconds
    reps = 2 if args.quick else args.reps

    # (E, implementation, block). "hmmjax": the engine's chunk (what simulate runs, in
    # the engine's independent groups); "vmap of advance": the trainer alone, vmapped
    # over the members as before the lanes; "whole blocks": every block's samples at once.
    configs = [(1, "numpy", None), (1, "hmmjax", 64)]
    if not args.quick:
        configs += [(16, "numpy", None), (16, "hmmjax", 64)]
    configs += [(256, "numpy", None), (256, "hmmjax", 64), (256, "hmmjax, one device", 64)]
    configs += [(256, "hmmjax, 1 group", 64)]
    if not args.quick:
        configs += [(256, "vmap of advance", 16), (256, "vmap of advance", 64)]
        configs += [(256, "vmap of advance, whole blocks", 16)]
        configs += [(256, "vmap of advance, whole blocks", 64)]
        configs += [(256, "vmap of advance in a lane axis of one", 64)]
    if jax.default_backend() == "cpu":
        configs += [(1, "hmmjax, XLA options", 64), (256, "hmmjax, XLA options", 64)]
    if args.devices > 1:
        configs += [(256, f"vmap of advance, {args.devices} devices", 4)]
    load = os.getloadavg()[0]  # other processes on the machine distort the timings
    peak = fp32_peak(2048 if args.quick else 4096, reps)
    rows = []
    for E, impl, block in configs:
        options = XLA_OPTIONS if "XLA options" in impl else None
        if impl == "numpy":
            run = numpy_runner(E)
        elif impl.startswith("hmmjax"):
            one = "1 group" in impl
            run = engine_runner(E, block, 1 if one else None, options, parts=not one,
                                devices=1 if "one device" in impl or one else "all")  # fmt: skip
        else:
            devices = args.devices if "devices" in impl else 1
            run = hmmjax_runner(E, block, devices, whole_blocks="whole" in impl,
                                lane_axis="lane axis" in impl)  # fmt: skip
        steps, t = measure(run, seconds, 64 if impl == "numpy" else 256, reps)
        rate = E * steps / t
        gflops = rate * FLOPS_PER_STEP / 1e9
        name = impl if block is None else f"{impl} (block {block})"
        rows.append((E, name, steps, t, steps / t, rate, gflops, 100 * gflops / peak))
        print(f"E={E:4d} {name:32s} {rate / 1e6:8.3f} M student-steps/s", file=sys.stderr)

    head = (
        "| E | implementation | steps | best time (s) | SGD steps/s | student-steps/s "
        "| GFLOP/s | % of FP32 peak |\n|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {E} | {name} | {steps} | {t:.3f} | {sps:,.0f} | {rate:,.0f} | {gf:.1f} | {pct:.1f} |\n"
        for E, name, steps, t, sps, rate, gf, pct in rows
    )
    cmd = "python benchmarks/online.py " + " ".join(sys.argv[1:])
    meta = (
        f"Command: `{cmd.strip()}`  \n"
        f"Machine: {machine()}; jax {jax.__version__}, {jax.devices()[0].platform} backend, "
        f"{args.devices} XLA host devices; date {datetime.date.today().isoformat()}; "
        f"load average at start {load:.1f}  \n"
        f"Practical FP32 peak (best jnp float32 matmul): {peak:.1f} GFLOP/s. "
        f"Flops counted per student-step: {FLOPS_PER_STEP} "
        f"(2DN + 2DM + 2M + 4KN). Times are the best of {reps} repetitions after a warm-up.\n"
    )
    table = meta + "\n" + head + body
    print(table)
    if args.write:
        write_results(table)


def write_results(table: str) -> None:
    section = (
        "## Online SGD throughput\n\n"
        "HMM data, f = sign, g = erf, N = 784, D = 10, K = M = 2, first layer trained, "
        "lr = 0.2, float32; E students with their own weights and data streams, shared F "
        "and teacher. NumPy: the same loop written per step, vectorised over the ensemble.\n\n"
    )
    block = f"{BEGIN}\n{section}{table}{END}\n"
    text = open(RESULTS).read() if os.path.exists(RESULTS) else "# Benchmark results\n\n"
    if BEGIN in text:
        pre, rest = text.split(BEGIN, 1)
        text = pre + block + rest.split(END, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    with open(RESULTS, "w") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
