"""Random draws shared by every model: the same samples whatever the working precision.

Gaussians are always drawn in float32 and then cast, so a float64 run sees exactly the
samples of the float32 run with the same keys: precision is a numerical setting, not a
change of sample.

Two mechanisms:

- ``normal(key, shape)``: ``jax.random.normal``, for one-off draws (initial weights, the
  feature matrix F, the teacher).
- ``normal_counter(key_words, steps, n, batch)``: counter-based standard normals for data
  streams, shape (n, *steps.shape, batch). Normal (i, s, b), component i of sample b of
  step s, is a pure function of (key, s, i, b): it is word ``i mod 2`` of
  ``threefry2x32(key, (s, (i // 2) batch + b))``, made Gaussian the way
  ``jax.random.normal`` does (a uniform in (-1, 1), then ``sqrt(2) erfinv``). Nothing is
  derived per step: a whole block of steps is one elementwise computation that XLA fuses
  into vectorised loops, also under ``vmap`` over ensemble members. Step indices must lie
  in [0, 2^32). Normal i does not depend on n: the first n normals of a draw of n' > n
  are the draw of n, which is what lets a sweep pad the latent and input dimensions.

``threefry2x32`` is Random123's threefry2x32_20 (20 rounds), the function behind JAX's
default PRNG (``jax.extend.random.threefry_2x32``), written as plain uint32 array code.
Key words come from ``jax.random.key_data`` (``key_words``): threefry keys only, the
default ``jax.random.key``/``PRNGKey`` implementation.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, UInt32

__all__ = [
    "seed_key",
    "normal",
    "key_words",
    "threefry2x32",
    "normal_from_bits",
    "normal_counter",
    "subkey_words",
]


_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


_PARITY = 0x1BD11BDA


_LOW = float(np.nextafter(np.float32(-1.0), np.float32(0.0)))  # largest float32 > -1


def seed_key(seed: int) -> jax.Array:
    """The threefry key of an integer seed in [0, 2^64): the words (seed >> 32,
    seed mod 2^32), which is what ``jax.random.PRNGKey(seed)`` gives for every seed it
    takes (below 2^32 without x64, where larger seeds wrap). Distinct seeds, distinct keys."""
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed = {seed}: expected an integer 0 <= seed < 2^64")
    return jnp.asarray([seed >> 32, seed & 0xFFFFFFFF], jnp.uint32)


def normal(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
    """Standard normal draws of ``shape`` in ``dtype`` (drawn in float32, then cast)."""
    return jax.random.normal(key, shape, jnp.float32).astype(dtype)


def key_words(key: jax.Array) -> UInt32[Array, "... 2"]:
    """The two uint32 words of a threefry key (typed ``jax.random.key`` or legacy
    ``PRNGKey``), batched keys giving shape (..., 2). Other PRNG implementations (rbg) are
    not supported: their keys have a different number of words."""
    words = jax.random.key_data(key)
    if words.shape[-1] != 2:
        raise ValueError(
            f"counter-based draws need threefry keys (2 uint32 words); got {words.shape[-1]} "
            "words: use the default jax.random.key/PRNGKey implementation"
        )
    return words.astype(jnp.uint32)


def _rotl(x, r: int):
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def threefry2x32(
    key: UInt32[Array, "2"], x0: UInt32[Array, "..."], x1: UInt32[Array, "..."]
) -> tuple[UInt32[Array, "..."], UInt32[Array, "..."]]:
    """Threefry-2x32 with 20 rounds of the counter pair (x0, x1) under ``key`` = (k0, k1).

    Elementwise in x0 and x1 (broadcast together). Equals JAX's
    ``threefry_2x32(key, concatenate([x0, x1]))`` split in halves.
    """
    k0 = key[..., 0].astype(jnp.uint32)
    k1 = key[..., 1].astype(jnp.uint32)
    ks = (k0, k1, k0 ^ k1 ^ np.uint32(_PARITY))
    x0 = jnp.asarray(x0, jnp.uint32)
    x1 = jnp.asarray(x1, jnp.uint32)
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 = x0 + x1
            x1 = _rotl(x1, r) ^ x0
        x0 = x0 + ks[(i + 1) % 3]
        x1 = x1 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x0, x1


def normal_from_bits(bits: UInt32[Array, "..."]) -> Float[Array, "..."]:
    """float32 standard normals from uint32 words, as ``jax.random.normal`` does it: 23 bits
    give a uniform in [nextafter(-1, 0), 1), then sqrt(2) erfinv."""
    one = np.float32(1.0).view(np.uint32)
    f = jax.lax.bitcast_convert_type((bits >> np.uint32(9)) | one, jnp.float32) - 1.0
    u = jnp.maximum(np.float32(_LOW), f * np.float32(1.0 - _LOW) + np.float32(_LOW))
    return np.float32(math.sqrt(2.0)) * jax.lax.erf_inv(u)


def normal_counter(
    key: UInt32[Array, "2"],
    steps: UInt32[Array, "*S"] | int,
    n: int,
    batch: int = 1,
    dtype=jnp.float32,
) -> Float[Array, "n *S B"]:
    """Standard normals (i, s, b) for i < ``n``, s in ``steps`` (any shape S), b < ``batch``:
    shape (n, *S, batch).

    ``key`` holds the two key words (see ``key_words``). Normal (i, s, b) is word
    ``i mod 2`` of ``threefry2x32(key, (s, (i // 2) batch + b))``, made Gaussian as
    ``jax.random.normal`` does; drawn in float32, then cast to ``dtype``. It does not
    depend on ``n``.

    The layout puts the steps and the batch minor: XLA's CPU loops vectorise the minor axis,
    and with one as short as a latent dimension (D = 10) the fused threefry and erfinv run
    several times slower.
    """
    h = -(-n // 2)
    s = jnp.asarray(steps).astype(jnp.uint32)[..., None]
    shape = (h, *s.shape[:-1], batch)
    i = jax.lax.broadcasted_iota(jnp.uint32, shape, 0)
    b = jax.lax.broadcasted_iota(jnp.uint32, shape, len(shape) - 1)
    y0, y1 = threefry2x32(key, s, i * np.uint32(batch) + b)
    z = normal_from_bits(jnp.stack([y0, y1], axis=1).reshape(2 * h, *shape[1:])[:n])
    return z.astype(dtype)


def subkey_words(key: UInt32[Array, "2"], index: int) -> UInt32[Array, "2"]:
    """Key words of the independent sub-stream ``index`` of ``key``: threefry2x32(key,
    (2^32 - 1, index)). Data models draw each group of normals (latent c, noise xi, label
    noise) from its own sub-stream, so a group's normals do not depend on the sizes of
    the others."""
    y0, y1 = threefry2x32(key, np.uint32(0xFFFFFFFF), np.uint32(index))
    return jnp.stack([y0, y1], axis=-1)
