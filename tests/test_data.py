"""Data models: shapes, label noise, and the Gaussian equivalent model's statistics."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hmmjax.core.activations import gaussian_constants
from hmmjax.data.base import make_data_model
from hmmjax.data.gaussian import KINDS
from hmmjax.models.two_layer import init_network

N, D, M, B = 40, 12, 3, 7


@pytest.mark.parametrize("kind", KINDS)
def test_sample_shapes(kind):
    model = make_data_model(jax.random.PRNGKey(0), kind, N=N, M=M, D=D)
    batch = model.sample(jax.random.PRNGKey(1), B)
    z_dim = {"iid": N, "hmm": D, "hmm_x": N, "get": D}[kind]
    chex.assert_shape(batch.x, (B, N))
    chex.assert_shape(batch.y, (B,))
    chex.assert_shape(batch.z, (B, z_dim))
    chex.assert_tree_all_finite(batch)
    # the labels are the teacher's output on z (no noise by default)
    np.testing.assert_allclose(batch.y, model.teacher(batch.z), rtol=1e-6, atol=1e-6)


def test_hmm_inputs_are_f_of_the_projected_latent():
    model = make_data_model(jax.random.PRNGKey(0), "hmm", N=N, M=M, D=D, f="tanh")
    batch = model.sample(jax.random.PRNGKey(1), B)
    want = jnp.tanh(batch.z @ model.F / math.sqrt(D))
    np.testing.assert_allclose(batch.x, want, rtol=1e-5, atol=1e-6)


def test_label_noise_has_the_requested_std():
    model = make_data_model(jax.random.PRNGKey(0), "iid", N=N, M=M, noise=0.3)
    batch = model.sample(jax.random.PRNGKey(1), 100_000)
    resid = np.asarray(batch.y - model.teacher(batch.z))
    assert resid.std() == pytest.approx(0.3, rel=0.01)
    clean = model.sample(jax.random.PRNGKey(1), 10, noise=False)
    np.testing.assert_allclose(clean.y, model.teacher(clean.z), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("f", ["sign", "erf", "tanh", "relu"])
def test_gaussian_equivalent_model_matches_the_constants_of_f(f):
    """x = mu0 + mu1 u + sqrt(mu_star) xi: E x = mu0, E x^2 = <f^2>, E[x u] = mu1."""
    model = make_data_model(jax.random.PRNGKey(0), "get", N=N, M=M, D=D, f=f)
    batch = model.sample(jax.random.PRNGKey(1), 50_000)
    u = np.asarray(batch.z @ model.F / math.sqrt(D))
    x = np.asarray(batch.x)
    c = gaussian_constants(f)
    # per-component u has variance |F_i|^2 / D: normalise the moments by it
    var_u = np.asarray((model.F**2).sum(0) / D)
    se = 4 * np.sqrt(2.0 / x.size) * (c.f2 + 1)
    assert x.mean() == pytest.approx(c.mu0, abs=se)
    assert (x * u / var_u).mean() == pytest.approx(c.mu1, abs=se)
    expected_f2 = c.mu0**2 + c.mu1**2 * var_u.mean() + c.mu_star
    assert (x**2).mean() == pytest.approx(expected_f2, abs=4 * se)


def test_unknown_model_and_missing_latent_dimension():
    with pytest.raises(ValueError, match="allowed: iid, hmm, hmm_x, get"):
        make_data_model(jax.random.PRNGKey(0), "mnist", N=N, M=M)
    with pytest.raises(ValueError, match="latent dimension D"):
        make_data_model(jax.random.PRNGKey(0), "hmm", N=N, M=M)


def test_network_initialisations():
    key = jax.random.PRNGKey(3)
    large = init_network(key, 4, 1000)
    small = init_network(key, 4, 1000, init="small")
    assert float(jnp.std(large.w)) == pytest.approx(1.0, rel=0.05)
    assert float(jnp.std(small.w)) == pytest.approx(1e-3, rel=0.05)
    np.testing.assert_array_equal(large.v, np.ones(4))
    np.testing.assert_allclose(init_network(key, 4, 10, scaling="normalise").v, 0.25)
    np.testing.assert_allclose(init_network(key, 4, 10, scaling="meanfield").v, 0.5)
    w = np.arange(20.0).reshape(2, 10)
    np.testing.assert_array_equal(init_network(key, 2, 10, init=w).w, w)
    with pytest.raises(ValueError, match="expected \\(K, N\\) = \\(3, 10\\)"):
        init_network(key, 3, 10, init=w)
    with pytest.raises(ValueError, match="init='medium' is not allowed"):
        init_network(key, 3, 10, init="medium")
