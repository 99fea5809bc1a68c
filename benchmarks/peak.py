"""The float32 matrix-product peak the benchmarks report shares of (JAX: import it after
any XLA_FLAGS a script sets).

The product is computed in full float32 (``precision="float32"``), as hmmjax's runs compute
theirs (``hmmjax.sweep.numerics``): JAX's default on NVIDIA GPUs rounds float32 products to
TF32, faster and less exact. On a CPU the setting changes nothing."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from common import best_seconds


def fp32_peak(n: int, repeats: int = 5) -> float:
    """The best time of ``repeats`` n x n float32 products on the default device, in
    GFLOP/s (after a compiling call)."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    f = jax.jit(lambda a: jnp.matmul(a, a, precision="float32"))
    jax.block_until_ready(f(a))
    return 2 * n**3 / best_seconds(lambda: jax.block_until_ready(f(a)), repeats) / 1e9
