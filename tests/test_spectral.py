"""Spectral compression (THEORY.md 5.3): nodes, barycentric Lagrange basis, aggregation,
the matrix-polynomial route against the eigen-decomposition route, Marchenko-Pastur law."""

from math import comb

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hmmjax.data.base import make_data_model
from hmmjax.io.state import state_arrays
from hmmjax.models.two_layer import init_network
from hmmjax.ode import spectral as sp


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def mp_moment(k: int, delta: float) -> float:
    """int rho^k dMP (atom included): Narayana polynomials."""
    if k == 0:
        return 1.0
    return sum(delta**r / (r + 1) * comb(k, r) * comb(k - 1, r) for r in range(k))


def mp_weights_trapezoid(nodes, delta: float, n: int = 4000) -> np.ndarray:
    """Independent route: x = c + h cos(phi) turns sqrt((b-x)(x-a)) dx into h^2 sin^2(phi)
    dphi, a smooth periodic integrand: the trapezoidal rule in phi converges geometrically."""
    s = np.sqrt(delta)
    a, b = (1 - s) ** 2, (1 + s) ** 2
    c, h = (a + b) / 2, (b - a) / 2
    phi = np.linspace(0, np.pi, n + 1)
    q = np.full(n + 1, np.pi / n)
    q[[0, -1]] /= 2
    x = c + h * np.cos(phi)
    wq = q * h**2 * np.sin(phi) ** 2 / (2 * np.pi * delta * x)
    if delta > 1:
        x, wq = np.append(x, 0.0), np.append(wq, 1 - 1 / delta)
    return np.asarray(sp.lagrange_values(jnp.asarray(nodes), jnp.asarray(x))) @ wq


def sample(N: int, D: int, K: int, M: int, seed: int = 0):
    model = make_data_model(jax.random.PRNGKey(seed), "hmm", N=N, M=M, D=D, dtype=jnp.float64)
    student = init_network(jax.random.PRNGKey(seed + 1), K, N, dtype=jnp.float64)
    return student, model


# --- nodes and the Lagrange basis -------------------------------------------------------


def test_chebyshev_nodes():
    x = sp.chebyshev_nodes(9, 0.5, 2.5)
    assert x.dtype == jnp.float64 and x.shape == (9,)
    assert float(x[0]) == 0.5 and float(x[-1]) == 2.5 and np.all(np.diff(x) > 0)
    np.testing.assert_allclose(x + x[::-1], 3.0, atol=1e-15)  # symmetric
    np.testing.assert_allclose(sp.chebyshev_nodes(5, 0.5, 2.5), x[::2], atol=1e-15)  # nested
    with pytest.raises(ValueError, match="nodes p = 1: need p >= 2"):
        sp.chebyshev_nodes(1, 0.0, 1.0)
    with pytest.raises(ValueError, match="lo = 2, hi = 1: need lo < hi"):
        sp.chebyshev_nodes(4, 2.0, 1.0)


def test_lagrange_values_interpolate_polynomials_exactly():
    p = 12
    nodes = sp.chebyshev_nodes(p, 0.1, 3.0)
    np.testing.assert_array_equal(sp.lagrange_values(nodes, nodes), np.eye(p))
    x = jnp.asarray(np.random.default_rng(0).uniform(0.1, 3.0, 50))
    L = sp.lagrange_values(nodes, x)
    assert L.shape == (p, 50)
    np.testing.assert_allclose(L.sum(0), 1.0, atol=1e-14)
    coef = np.random.default_rng(1).normal(size=p)  # degree p - 1
    np.testing.assert_allclose(
        np.polyval(coef, nodes) @ L, np.polyval(coef, x), rtol=1e-12, atol=1e-8
    )
    assert sp.lagrange_values(nodes, x.reshape(5, 10)).shape == (p, 5, 10)


@pytest.mark.parametrize("lo, hi", [(0.0, 6.0), (1.0, 1.01)])
def test_lagrange_values_stable_for_many_nodes(lo, hi):
    # p = 128 on a long and on a very short interval: no overflow, spectral accuracy
    nodes = sp.chebyshev_nodes(128, lo, hi)
    x = jnp.linspace(lo, hi, 1001)
    f = lambda t: np.exp(np.sin(3 * (t - lo) / (hi - lo)))  # noqa: E731
    approx = f(np.asarray(nodes)) @ sp.lagrange_values(nodes, x)
    np.testing.assert_allclose(approx, f(np.asarray(x)), atol=1e-13)


@pytest.mark.parametrize("p", [8, 12, 33])
def test_lagrange_values_inside_jit_with_recomputed_nodes(p):
    # regression: with cos evaluated inside jit, XLA rounded the Chebyshev points differently
    # in different fusions, and l_j at its own node came out O(1) wrong
    nodes = sp.chebyshev_nodes(p, 0.0, 3.3)

    def at_recomputed_nodes(n):
        return sp.lagrange_values(n, sp.chebyshev_nodes(p, jnp.min(n), jnp.max(n)))

    np.testing.assert_allclose(jax.jit(at_recomputed_nodes)(nodes), np.eye(p), atol=1e-13)


def test_chebyshev_coefficients_expand_the_basis():
    nodes = sp.chebyshev_nodes(16, 0.2, 2.9)
    y = (2 * np.asarray(nodes) - 3.1) / 2.7
    T = np.cos(np.arange(16)[:, None] * np.arccos(np.clip(y, -1, 1))[None, :])
    np.testing.assert_allclose(sp.chebyshev_coefficients(nodes).T @ T, np.eye(16), atol=1e-13)


# --- aggregation over a sample ----------------------------------------------------------


def test_matrix_polynomial_route_equals_eigendecomposition():
    N, D, K, M, p = 300, 150, 3, 2, 16
    student, model = sample(N, D, K, M)
    st = state_arrays(student, model)
    rho = jnp.asarray(st["rho"])
    c = sp.compress_sample(student.w, model.F, model.teacher.w, p)
    assert c.sigma.shape == (K, K, p) and c.r.shape == (K, M, p) and c.B.shape == (M, M, p)
    nodes = c.nodes
    np.testing.assert_allclose(nodes[jnp.array([0, -1])], rho[jnp.array([0, -1])], rtol=1e-12)
    np.testing.assert_allclose(c.weights, sp.node_weights(nodes, rho), atol=1e-14)
    sigma = sp.aggregate(nodes, rho, jnp.asarray(st["sigma"]))
    r = sp.aggregate(nodes, rho, jnp.asarray(st["r"]))
    beta = jnp.asarray(st["beta"])
    B = sp.aggregate(nodes, rho, jnp.einsum("nt,mt->nmt", beta, beta))
    for got, want in [(c.sigma, sigma), (c.r, r), (c.B, B)]:
        err = float(jnp.max(jnp.abs(got - want)) / jnp.max(jnp.abs(want)))
        assert err < 1e-10, err
    for key in ("W", "T", "Ttilde"):
        np.testing.assert_allclose(getattr(c, key), st[key], rtol=1e-10, atol=1e-12)
    # the exact identities of 5.3: Sigma = sum_j sigma_j, R = mu1 sum_j r_j,
    # Ttilde = sum_j rho_j B_j, T = sum_j B_j
    np.testing.assert_allclose(c.sigma.sum(-1), st["sigma"].mean(-1), rtol=1e-10)
    np.testing.assert_allclose(c.r.sum(-1), st["r"].mean(-1), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose((c.B * nodes).sum(-1), st["Ttilde"], rtol=1e-10)
    np.testing.assert_allclose(c.B.sum(-1), st["T"], rtol=1e-10)


def test_compress_sample_with_given_nodes_and_cover_check():
    student, model = sample(120, 80, 2, 2, seed=3)
    rho = sp.sample_eigenvalues(model.F)
    np.testing.assert_allclose(rho, np.linalg.eigvalsh(np.asarray(model.F @ model.F.T) / 120))
    wide = sp.chebyshev_nodes(10, 0.0, 1.1 * float(rho[-1]))
    c = sp.compress_sample(student.w, model.F, model.teacher.w, wide)
    np.testing.assert_allclose(c.weights, sp.node_weights_from_F(wide, model.F), atol=1e-14)
    S = student.w @ model.F.T / np.sqrt(120)
    np.testing.assert_allclose(c.sigma.sum(-1), S @ S.T / 80, rtol=1e-10)  # Sigma
    narrow = sp.chebyshev_nodes(10, float(rho[0]), 0.9 * float(rho[-1]))
    with pytest.raises(ValueError, match="nodes must cover the spectrum"):
        sp.compress_sample(student.w, model.F, model.teacher.w, narrow)
    sp.check_cover(sp.chebyshev_nodes(4, 1.0, 2.0), jnp.array([1.0 - 1e-9, 2.0 + 1e-9]))
    with pytest.raises(ValueError, match=r"eigenvalues span \[0.5, 2\]"):
        sp.check_cover(sp.chebyshev_nodes(4, 1.0, 2.0), jnp.array([0.5, 2.0]))


def test_more_latent_than_input_dimensions():
    # delta = D / N = 2: D - N exact zero eigenvalues, nodes on [0, max rho]
    student, model = sample(60, 120, 2, 1, seed=5)
    rho = sp.sample_eigenvalues(model.F)
    assert float(jnp.abs(rho[:60]).max()) == 0.0
    st = state_arrays(student, model)
    c = sp.compress_sample(student.w, model.F, model.teacher.w, 12)
    want = sp.aggregate(c.nodes, jnp.asarray(st["rho"]), jnp.asarray(st["sigma"]))
    assert float(jnp.max(jnp.abs(c.sigma - want)) / jnp.max(jnp.abs(want))) < 1e-10


def test_nodes_at_the_eigenvalues_give_exactly_the_full_state():
    # p = D nodes at the (distinct) eigenvalues: w_j = 1 / D, X_j = x_j / D (THEORY 5.2)
    D = 20
    student, model = sample(50, D, 2, 2, seed=7)
    st = state_arrays(student, model)
    rho = jnp.asarray(st["rho"])
    assert float(jnp.min(jnp.diff(rho))) > 1e-3
    np.testing.assert_array_equal(sp.node_weights(rho, rho), np.full(D, 1 / D))
    np.testing.assert_array_equal(sp.lagrange_values(rho, rho), np.eye(D))
    np.testing.assert_allclose(sp.aggregate(rho, rho, st["sigma"]), st["sigma"] / D, rtol=1e-15)
    np.testing.assert_allclose(sp.aggregate(rho, rho, st["r"]), st["r"] / D, rtol=1e-15)
    # (the matrix-polynomial route is not tested on these nodes: their Lagrange basis has a
    # Lebesgue constant ~1e8 at D = 20, and its Chebyshev coefficients cancel catastrophically)


def test_jit_and_vmap():
    student, model = sample(100, 50, 2, 1, seed=2)
    nodes = sp.chebyshev_nodes(8, 0.0, 4.0)
    Z = jnp.concatenate([student.w @ model.F.T / 10.0, model.teacher.w])
    np.testing.assert_allclose(
        jax.jit(sp.node_matrices)(nodes, model.F, Z),
        sp.node_matrices(nodes, model.F, Z),
        rtol=1e-13,
        atol=1e-13,
    )
    deltas = jnp.array([0.25, 0.5, 2.0])
    nodes_b = jax.vmap(lambda d: sp.mp_nodes(8, d))(deltas)
    got = jax.jit(jax.vmap(sp.mp_node_weights))(nodes_b, deltas)
    for i, d in enumerate([0.25, 0.5, 2.0]):
        np.testing.assert_allclose(got[i], sp.mp_node_weights(sp.mp_nodes(8, d), d), atol=1e-14)


# --- Marchenko-Pastur ------------------------------------------------------------------


@pytest.mark.parametrize("delta", [0.5, 1.0, 2.0])
def test_mp_weights_sum_to_one_and_reproduce_the_moments(delta):
    p = 16
    nodes = sp.mp_nodes(p, delta)
    w = sp.mp_node_weights(nodes, delta)
    assert abs(float(w.sum()) - 1) < 1e-14
    for k in range(p):  # sum_j w_j rho_j^k = int rho^k exactly for k <= p - 1
        assert abs(float(w @ nodes**k) / mp_moment(k, delta) - 1) < 1e-12, k
    assert abs(float(w @ nodes) - 1) < 1e-14 and abs(float(w @ nodes**2) - 1 - delta) < 1e-13
    m1 = sp.mp_moment_weights(nodes, delta, power=1)  # int l_j(rho) rho
    for k in range(p):
        assert abs(float(m1 @ nodes**k) / mp_moment(k + 1, delta) - 1) < 1e-12, k


@pytest.mark.parametrize("delta", [0.5, 2.0])
def test_mp_weights_against_density_quadrature(delta):
    nodes = sp.mp_nodes(16, delta)
    np.testing.assert_allclose(
        sp.mp_node_weights(nodes, delta), mp_weights_trapezoid(nodes, delta), atol=1e-12
    )
    x = jnp.linspace(0.0, 7.0, 50)
    assert float(sp.mp_density(x, delta).min()) == 0.0


def test_mp_weights_against_sampled_eigenvalues():
    # the sample's weights converge to the Marchenko-Pastur ones as N grows (delta = 0.5)
    delta, p = 0.5, 12
    errs = []
    for N in (500, 4000):
        D = int(delta * N)
        F = np.random.default_rng(N).normal(size=(D, N))
        rho = jnp.asarray(np.linalg.eigvalsh(F @ F.T / N))  # NumPy: 3x faster than JAX's here
        lo, hi = sp.mp_support(delta)
        nodes = sp.chebyshev_nodes(p, min(float(lo), float(rho[0])), max(float(hi), float(rho[-1])))
        diff = sp.node_weights(nodes, rho) - sp.mp_node_weights(nodes, delta)
        errs.append(float(jnp.max(jnp.abs(diff))))
    assert errs[1] < 1e-2 and errs[1] < errs[0] / 2, errs


def test_mp_atom_at_zero():
    delta = 2.0
    nodes = sp.mp_nodes(10, delta)
    assert float(nodes[0]) == 0.0
    w = sp.mp_node_weights(nodes, delta)
    # a sample with D = 2N has half its eigenvalues at 0: same weights as the law with its atom
    F = jax.random.normal(jax.random.PRNGKey(0), (1200, 600), jnp.float64)
    rho = sp.sample_eigenvalues(F)
    wide = sp.chebyshev_nodes(10, 0.0, max(float(nodes[-1]), float(rho[-1])))
    err = jnp.abs(sp.node_weights(wide, rho) - sp.mp_node_weights(wide, delta))
    assert float(err.max()) < 5e-3, err
    assert abs(float(w.sum()) - 1) < 1e-14


def test_mp_initial_state():
    K, M, p, delta, q0, mu1 = 3, 2, 12, 0.5, 0.7, np.sqrt(2 / np.pi)
    nodes = sp.mp_nodes(p, delta)
    s = sp.mp_initial_state(nodes, delta, K, M, q0, mu1)
    assert s.sigma.shape == (K, K, p) and s.r.shape == (K, M, p) and s.B.shape == (M, M, p)
    np.testing.assert_allclose(s.sigma.sum(-1), q0 * np.eye(K), atol=1e-14)  # Sigma = q0 int rho
    np.testing.assert_allclose(s.B.sum(-1), np.eye(M), atol=1e-14)  # T
    np.testing.assert_allclose((s.B * nodes).sum(-1), s.Ttilde, atol=1e-14)
    np.testing.assert_array_equal(s.r, 0.0)
    np.testing.assert_allclose(s.W, q0 * np.eye(K))
    R0 = np.arange(K * M, dtype=float).reshape(K, M) / 10
    for profile in (None, lambda x: x**2, jnp.exp):
        s = sp.mp_initial_state(nodes, delta, K, M, q0, mu1, R0=R0, profile=profile)
        np.testing.assert_allclose(mu1 * s.r.sum(-1), R0, atol=1e-14)
    # default profile rho: r_j = (R0 / mu1) int l_j rho
    np.testing.assert_allclose(
        sp.mp_initial_state(nodes, delta, K, M, q0, mu1, R0=R0).r,
        (R0 / mu1)[..., None] * sp.mp_moment_weights(nodes, delta, 1),
        atol=1e-14,
    )


def test_mp_initial_state_matches_a_large_sample():
    # E over w ~ N(0, q0), theta ~ N(0, 1): the sample's aggregated state fluctuates around
    # the Marchenko-Pastur one by O(1/sqrt(D)); K = 40 students average the diagonal
    N, D, K, M, p = 2000, 1000, 40, 1, 8
    student, model = sample(N, D, K, M, seed=11)
    rho = sp.sample_eigenvalues(model.F)
    lo, hi = sp.mp_support(D / N)
    nodes = sp.chebyshev_nodes(p, min(rho[0], lo), max(rho[-1], hi))
    c = sp.compress_sample(student.w, model.F, model.teacher.w, nodes, rho=rho)
    s = sp.mp_initial_state(nodes, D / N, K, M, 1.0, 1.0)
    diag = jnp.diagonal(c.sigma).mean(-1)  # (p,)
    np.testing.assert_allclose(diag, s.sigma[0, 0], atol=1.5e-2)  # measured 7.6e-3
    np.testing.assert_allclose(c.weights, s.weights, atol=3e-3)


def test_mp_bad_inputs():
    with pytest.raises(ValueError, match="delta = -1: need delta > 0"):
        sp.mp_nodes(8, -1)
    with pytest.raises(ValueError, match="delta = 0: need delta > 0"):
        sp.mp_node_weights(sp.chebyshev_nodes(8, 0.0, 1.0), 0.0)
    with pytest.raises(ValueError, match="n_quad = 3: need n_quad >= 8"):
        sp.mp_node_weights(sp.mp_nodes(16, 0.5), 0.5, n_quad=3)
    with pytest.raises(ValueError, match="Marchenko-Pastur law with delta = 2"):
        sp.mp_node_weights(sp.mp_nodes(8, 0.5), 2.0)  # misses the atom at 0
