"""The empirical NTK (jvp / vjp blocks against the full Jacobian, the two-layer closed
form against both) and the kernel methods."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hmmjax.data.invariant import InvariantData, sample
from hmmjax.models.alpha_net import InvariantNet, init_net
from hmmjax.observables.ntk import (
    empirical_ntk,
    kernel_regression,
    kernel_svm,
    label_alignment,
    network_ntk,
    sign_error,
    two_layer_ntk,
)


@functools.partial(jax.jit, static_argnums=0)
def _jacobian_ntk(apply, params, x1, x2):
    """J(x1) J(x2)^T from jax.jacrev of the outputs on the whole (tiny) data sets."""

    def flat(x):
        J = jax.jacrev(lambda p: jax.vmap(lambda xi: apply(p, xi))(x))(params)
        return jnp.concatenate([leaf.reshape(x.shape[0], -1) for leaf in jax.tree.leaves(J)], 1)

    return flat(x1) @ flat(x2).T


def _mlp(params, x):
    """A three-layer tanh network with a dict of parameters: any pytree works."""
    h = jnp.tanh(params["w1"] @ x + params["b1"])
    h = jnp.tanh(params["w2"] @ h)
    return params["v"] @ h / h.shape[0]


@pytest.mark.parametrize("block", [1, 3, 64])
def test_empirical_ntk_is_the_jacobian_product(block):
    with jax.enable_x64(True):
        k = jax.random.split(jax.random.PRNGKey(0), 6)
        params = {
            "w1": jax.random.normal(k[0], (6, 3), jnp.float64),
            "b1": jax.random.normal(k[1], (6,), jnp.float64),
            "w2": jax.random.normal(k[2], (5, 6), jnp.float64),
            "v": jax.random.normal(k[3], (5,), jnp.float64),
        }
        x1 = jax.random.normal(k[4], (7, 3), jnp.float64)
        x2 = jax.random.normal(k[5], (4, 3), jnp.float64)
        K = empirical_ntk(_mlp, params, x1, x2, block=block)
        np.testing.assert_allclose(K, _jacobian_ntk(_mlp, params, x1, x2), atol=1e-10, rtol=0)
        Ks = empirical_ntk(_mlp, params, x1, block=block)
        np.testing.assert_allclose(Ks, _jacobian_ntk(_mlp, params, x1, x1), atol=1e-10, rtol=0)
        np.testing.assert_allclose(Ks, Ks.T, atol=1e-12)


@functools.cache
def _apply(act):
    """f(params, x) of a 6-unit network with activation ``act`` (one function per act, so
    that the jitted Jacobian compiles once)."""

    def apply(params, x):
        omega, b, beta = params
        return InvariantNet(omega, b, beta, jnp.ones_like(b), jnp.asarray(6.0, b.dtype), act)(x)

    return apply


@pytest.mark.parametrize("act", ["relu", "softplus", "tanh", "erf"])
def test_two_layer_closed_form_equals_the_generic_route(act):
    with jax.enable_x64(True):
        data = InvariantData(d=4)
        x1, _ = sample(jax.random.PRNGKey(1), 9, data, jnp.float64)
        x2, _ = sample(jax.random.PRNGKey(2), 5, data, jnp.float64)
        padded = init_net(jax.random.PRNGKey(3), 6, 4, width=10, act=act, dtype=jnp.float64)
        net = padded.unpad()
        generic = network_ntk(net, x1, x2, generic=True, block=4)
        direct = _jacobian_ntk(_apply(act), net.params, x1, x2)
        np.testing.assert_allclose(generic, direct, atol=1e-10, rtol=0)
        np.testing.assert_allclose(two_layer_ntk(net, x1, x2), direct, atol=1e-10, rtol=0)
        # padded units do not count
        np.testing.assert_allclose(two_layer_ntk(padded, x1, x2), direct, atol=1e-10, rtol=0)
        np.testing.assert_allclose(network_ntk(net, x1), two_layer_ntk(net, x1, x1), atol=1e-14)


def test_kernel_regression_is_ridge_regression_on_the_features():
    rng = np.random.default_rng(0)
    phi, phi_test = rng.standard_normal((30, 8)), rng.standard_normal((50, 8))
    y = np.sign(rng.standard_normal(30))
    K = phi @ phi.T
    ridge = 1e-2
    lam = ridge * np.trace(K) / K.shape[0]
    w = np.linalg.solve(phi.T @ phi + lam * np.eye(8), phi.T @ y)
    pred = kernel_regression(K, y, phi_test @ phi.T, ridge=ridge)
    np.testing.assert_allclose(pred, phi_test @ w, rtol=1e-9, atol=1e-12)
    # ridgeless with more features than samples: interpolates the training labels
    phi = rng.standard_normal((20, 60))
    y = np.sign(rng.standard_normal(20))
    K = phi @ phi.T
    np.testing.assert_allclose(kernel_regression(K, y, K), y, atol=1e-6)
    assert sign_error(y, kernel_regression(K, y, K)) == 0.0


def test_kernel_svm_beats_chance_on_a_separable_problem():
    rng = np.random.default_rng(1)

    def draw(n):
        x = rng.standard_normal((n, 2))
        x = x[np.abs(x[:, 0] - 0.5 * x[:, 1]) > 0.2]  # a margin around the line
        return x, np.sign(x[:, 0] - 0.5 * x[:, 1])

    x, y = draw(200)
    xt, yt = draw(2000)
    scale = 1e-3  # SVM results do not depend on the kernel's scale
    decision = kernel_svm(scale * x @ x.T, y, scale * xt @ x.T)
    assert decision.shape == yt.shape
    assert sign_error(yt, decision) < 0.05
    assert sign_error(y, kernel_svm(x @ x.T, y, x @ x.T)) == 0.0


def test_label_alignment_of_a_label_kernel():
    rng = np.random.default_rng(2)
    y = np.sign(rng.standard_normal(40))
    noise = 1e-2 * rng.standard_normal((40, 40))
    al = label_alignment(np.outer(y, y) + noise @ noise.T, y, k=5)
    assert al.eigenvalues.shape == (5,) and np.all(np.diff(al.eigenvalues) <= 0)
    assert al.eigenvalues[0] == pytest.approx(40, rel=1e-2)
    assert al.weights[0] > 0.999
    np.testing.assert_allclose(al.cumulative, np.cumsum(al.weights))
    full = label_alignment(rng.standard_normal((40, 3)) @ rng.standard_normal((3, 40)), y)
    assert full.cumulative[-1] == pytest.approx(1.0)  # all eigenvectors: |y|^2


def test_ntk_of_a_network_at_initialisation_is_order_one_over_h():
    data = InvariantData(d=5)
    x, _ = sample(jax.random.PRNGKey(0), 64, data)
    for h in (100, 400):
        net = init_net(jax.random.PRNGKey(1), h, 5)
        diag = float(jnp.mean(jnp.diag(two_layer_ntk(net, x)))) * h
        # E[relu(z)^2] + E[beta^2 relu'(z)^2] (1 + |x|^2/d), z ~ N(0, 2): 1 + 0.5 * 2 = 2
        assert diag == pytest.approx(2.0, rel=0.15)
    assert math.isfinite(diag)
