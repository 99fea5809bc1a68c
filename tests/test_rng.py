"""Counter-based Gaussians: threefry against JAX bit for bit, then the statistics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend.random import threefry_2x32

from hmmjax.core.rng import key_words, normal_counter, normal_from_bits, threefry2x32


def test_threefry_known_answer():
    """Random123's threefry2x32_20 vector: key (0, 0), counter (0, 0)."""
    zero = jnp.zeros((), jnp.uint32)
    y0, y1 = threefry2x32(jnp.zeros(2, jnp.uint32), zero, zero)
    assert (int(y0), int(y1)) == (0x6B200159, 0x99BA4EFE)
    ref = threefry_2x32(jnp.zeros(2, jnp.uint32), jnp.zeros(2, jnp.uint32))
    assert [int(v) for v in ref] == [0x6B200159, 0x99BA4EFE]


@pytest.mark.parametrize("seed", range(4))
def test_threefry_equals_jax_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    key = jnp.asarray(rng.integers(0, 2**32, 2, dtype=np.uint32))
    x0, x1 = (jnp.asarray(rng.integers(0, 2**32, 777, dtype=np.uint32)) for _ in range(2))
    y0, y1 = jax.jit(threefry2x32)(key, x0, x1)
    ref = np.asarray(threefry_2x32(key, jnp.concatenate([x0, x1])))
    np.testing.assert_array_equal(np.concatenate([y0, y1]), ref)


def test_bits_to_normal_as_jax_does():
    key = jax.random.PRNGKey(5)
    bits = jax.random.bits(key, (10_000,), jnp.uint32)
    np.testing.assert_array_equal(normal_from_bits(bits), jax.random.normal(key, (10_000,)))


def test_layout_rule():
    """Normal (i, s, b) is word i mod 2 of threefry(key, (s, (i // 2) batch + b))."""
    kw = key_words(jax.random.PRNGKey(3))
    n, B = 7, 3
    z = normal_counter(kw, jnp.array([5, 9]), n, B)
    assert z.shape == (n, 2, B)
    for i, s, b in [(0, 5, 0), (2, 9, 1), (3, 5, 2), (4, 9, 0), (6, 5, 2)]:
        words = threefry2x32(kw, jnp.uint32(s), jnp.uint32((i // 2) * B + b))
        expected = normal_from_bits(words[i % 2])
        assert float(z[i, int(s == 9), b]) == float(expected)
    # the normals of a step do not depend on which other steps are drawn with it
    np.testing.assert_array_equal(normal_counter(kw, 9, n, B), z[:, 1])
    # nor on how many components are drawn (what padded sweeps rely on)
    np.testing.assert_array_equal(normal_counter(kw, jnp.array([5, 9]), 4, B), z[:4])
    np.testing.assert_array_equal(normal_counter(kw, jnp.array([5, 9]), 12, B)[:n], z)


def test_typed_and_legacy_keys_give_the_same_words():
    np.testing.assert_array_equal(key_words(jax.random.key(7)), key_words(jax.random.PRNGKey(7)))
    with pytest.raises(ValueError, match="threefry"):
        key_words(jax.random.key(7, impl="rbg"))


def test_moments_of_a_million_draws():
    z = np.asarray(normal_counter(key_words(jax.random.PRNGKey(0)), jnp.arange(1000), 1000))
    z = z.astype(np.float64).ravel()
    n = z.size
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / n)
    assert abs(np.mean(z**4) - 3) < 5 * np.sqrt(96 / n)  # var(z^4) = 105 - 9
    assert abs(np.mean(z**3)) < 5 * np.sqrt(15 / n)
    # tails: P(|z| > 3) = 0.0026998
    p = np.mean(np.abs(z) > 3)
    assert abs(p - 0.0026998) < 5 * np.sqrt(0.0027 / n)


def test_no_correlation_between_steps_positions_and_members():
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    n, S = 10, 20_000
    z = np.stack([np.asarray(normal_counter(key_words(k), jnp.arange(S), n)) for k in keys])
    bound = 5 / np.sqrt(n * S)

    def corr(a, b):
        return np.corrcoef(a.ravel(), b.ravel())[0, 1]

    assert abs(corr(z[0][:, :-1], z[0][:, 1:])) < bound  # consecutive steps
    assert abs(corr(z[0][:-1], z[0][1:])) < bound  # consecutive positions in a step
    assert abs(corr(z[0][: n // 2], z[0][n // 2 :])) < bound  # the two words of a pair
    assert abs(corr(z[0], z[1])) < bound  # two members
    assert abs(corr(z[0] ** 2, z[1] ** 2)) < bound * 2  # and not through their sizes


def test_different_keys_and_steps_differ():
    kw = key_words(jax.random.split(jax.random.PRNGKey(2), 2))
    a = normal_counter(kw[0], jnp.arange(4), 6)
    b = normal_counter(kw[1], jnp.arange(4), 6)
    assert np.all(np.asarray(a) != np.asarray(b))
    assert np.all(np.asarray(a[:, 0]) != np.asarray(a[:, 1]))
    # vmapped over keys equals one key at a time
    both = jax.vmap(lambda k: normal_counter(k, jnp.arange(4), 6))(kw)
    np.testing.assert_array_equal(both[1], b)


def test_float64_sees_the_float32_samples():
    with jax.enable_x64(True):
        kw = key_words(jax.random.PRNGKey(4))
        z32 = normal_counter(kw, jnp.arange(3), 5, 2, dtype=jnp.float32)
        z64 = normal_counter(kw, jnp.arange(3), 5, 2, dtype=jnp.float64)
        assert z64.dtype == jnp.float64
        np.testing.assert_array_equal(z64, z32.astype(jnp.float64))
