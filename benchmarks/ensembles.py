"""Ways to run one point's ensemble (each member its own stream) on one CPU device (issue 16).

    python benchmarks/ensembles.py [E] [NAME-FILTER ...]

HMM data, N = 784, D = 10, K = M = 2, sign f, erf g, lr = 0.2, float32, one XLA host device;
512 SGD steps per member (4096 for E < 64); best of 3 after a compiling call. Variants:

- ``step bB``: ``jax.vmap`` over members of ``advance`` (draw B steps, then step after step);
- ``delayed bB``: ``jax.vmap`` over members of blocks as matrix products
  (``train.online.delayed_block``, the lanes' path for many students);
- ``step-groups bB gG``, ``delayed-groups bB gG``: ``lax.map`` over groups of G members,
  each group vmapped.

Printed: student-steps/s. Exploratory (not written to RESULTS.md). ``step bB`` makes every
block's samples at once (``SGD.batched(1)``); the engine now runs E >= 16 members with each
step's samples made in the loop (``benchmarks/online.py``, ``benchmarks/profile_online.py``).
"""

import os
import sys

# one host device; the caller's other XLA options kept (a test that imports this module
# keeps its own)
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=1"
).strip()
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
from common import best_seconds  # noqa: E402

from hmmjax.data import make_data_model  # noqa: E402
from hmmjax.models.two_layer import init_network  # noqa: E402
from hmmjax.train.base import run_blocks  # noqa: E402
from hmmjax.train.online import SGD, advance, delayed_block, draw_block  # noqa: E402

N, D, K, M = 784, 10, 2, 2
E = int(sys.argv[1]) if len(sys.argv) > 1 else 256
model = make_data_model(jax.random.PRNGKey(0), "hmm", N=N, M=M, D=D, f="sign")
students = jax.vmap(lambda k: init_network(k, K, N))(jax.random.split(jax.random.PRNGKey(1), E))
keys = jax.random.split(jax.random.PRNGKey(2), E)
sgd = SGD.create(0.2)


def per_step(s, k, stop, block):
    return advance(s, sgd, model, k, 0, stop, block)


def delayed(s, k, stop, block):
    def update(net, data, i0, i1):
        x = data.x.reshape(-1, N)
        return delayed_block(sgd, net, data, x @ x.T, i0, i1)

    return run_blocks(s, lambda b0: draw_block(model, k, b0, block, 1), update, 0, stop, block)


def whole(member, block):
    inner = jax.vmap(lambda s, k, stop: member(s, k, stop, block), in_axes=(0, 0, None))
    return jax.jit(lambda s, stop: inner(s, keys, stop))


def grouped(member, block, g):
    inner = jax.vmap(lambda s, k, stop: member(s, k, stop, block), in_axes=(0, 0, None))

    @jax.jit
    def f(s, stop):
        sg = jax.tree.map(lambda a: a.reshape(E // g, g, *a.shape[1:]), s)
        kg = keys.reshape(E // g, g, *keys.shape[1:])
        out = jax.lax.map(lambda t: inner(t[0], t[1], stop), (sg, kg))
        return jax.tree.map(lambda a: a.reshape(E, *a.shape[2:]), out)

    return f


variants = {f"step b{b}": whole(per_step, b) for b in (1, 4, 16)}
variants.update({f"delayed b{b}": whole(delayed, b) for b in (8, 16)})
for b, g in ((16, 16), (16, 64)):
    variants[f"step-groups b{b} g{g}"] = grouped(per_step, b, g)
    variants[f"delayed-groups b{b} g{g}"] = grouped(delayed, b, g)
only = sys.argv[2:]
for name, f in variants.items():
    if only and not any(o in name for o in only):
        continue
    steps = 512 if E >= 64 else 4096
    jax.block_until_ready(f(students, steps))
    best = best_seconds(lambda f=f, steps=steps: jax.block_until_ready(f(students, steps)), 3)
    print(f"E={E} {name}: {E * steps / best / 1e6:.2f} M student-steps/s", flush=True)
