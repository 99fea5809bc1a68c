"""Gaussian integrals of THEORY.md section 4 against Monte Carlo and exact identities.

Monte Carlo: S samples of the local fields z ~ N(0, C) (NumPy, fixed seed). Every
integral is a mean of a product h(z) over samples; its standard error is
sqrt((mean(h^2) - mean(h)^2) / S), computed from the same samples. Each closed form must
lie within Z_TOL standard errors of the MC mean, entry by entry (plus a rounding floor far
below the standard errors, for entries whose integrand has zero variance).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hmmjax.core.activations import activation
from hmmjax.core.integrals import covariance, eg, eg_from_covariance, i2, i3, i4, j2

N_SAMPLES = 400_000
Z_TOL = 5.0  # ~256 entries per tensor: P(any |z| > 5) ~ 1.5e-4 for exact formulas
K, M = 2, 2


def _random_cov(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3 * n))
    C = X @ X.T / (3 * n)
    # Give the fields different scales, as Q, R, T have in practice.
    s = rng.uniform(0.5, 1.5, n)
    return C * np.outer(s, s)


@pytest.fixture(scope="module")
def cov() -> np.ndarray:
    return _random_cov(1, K + M)


def _g_np(name: str):
    act = activation(name)

    def fn(x):
        with jax.enable_x64(True):
            return np.asarray(act.fn(jnp.asarray(x)))

    def deriv(x):
        with jax.enable_x64(True):
            return np.asarray(act.deriv(jnp.asarray(x)))

    return fn, deriv


def _mc_mean_se(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of X[s, i] Y[s, j] over samples s, as (i, j) arrays."""
    S = X.shape[0]
    mean = X.T @ Y / S
    second = (X**2).T @ (Y**2) / S
    return mean, np.sqrt(np.maximum(second - mean**2, 0.0) / S)


@pytest.fixture(scope="module", params=["erf", "linear"])
def mc(request, cov):
    """MC means and standard errors of I2, I3, I4, J2 for one g."""
    g = request.param
    n = cov.shape[0]
    rng = np.random.default_rng(2)
    z = rng.multivariate_normal(np.zeros(n), cov, size=N_SAMPLES)
    fn, deriv = _g_np(g)
    gz, dz = fn(z), deriv(z)
    S = N_SAMPLES
    out = {}
    out["i2"] = _mc_mean_se(gz, gz)
    out["j2"] = _mc_mean_se(dz, dz)
    X3 = (dz[:, :, None] * z[:, None, :]).reshape(S, n * n)  # (a, b)
    m, s = _mc_mean_se(X3, gz)
    out["i3"] = (m.reshape(n, n, n), s.reshape(n, n, n))
    X4 = (dz[:, :, None] * dz[:, None, :]).reshape(S, n * n)  # (a, b)
    Y4 = (gz[:, :, None] * gz[:, None, :]).reshape(S, n * n)  # (c, d)
    m, s = _mc_mean_se(X4, Y4)
    out["i4"] = (m.reshape((n,) * 4), s.reshape((n,) * 4))
    u = np.random.default_rng(3).standard_normal(n)
    h = 0.5 * (gz @ u) ** 2
    out["eg"] = (h.mean(), h.std() / math.sqrt(S), u)
    return g, out


@pytest.mark.parametrize("name,fn", [("i2", i2), ("i3", i3), ("i4", i4), ("j2", j2)])
def test_integral_matches_monte_carlo(mc, cov, name, fn):
    g, out = mc
    mean, se = out[name]
    with jax.enable_x64(True):
        exact = np.asarray(fn(jnp.asarray(cov), g))
    assert exact.shape == mean.shape
    err = np.abs(exact - mean)
    bound = Z_TOL * se + 1e-12
    worst = np.max(err / bound)
    assert worst < 1.0, f"{name}({g}): max |exact - MC| / ({Z_TOL} SE) = {worst:.3f}"


def test_eg_matches_monte_carlo(mc, cov):
    g, out = mc
    mean, se, u = out["eg"]
    with jax.enable_x64(True):
        val = float(eg_from_covariance(jnp.asarray(cov), jnp.asarray(u), g))
    assert abs(val - mean) < Z_TOL * se


def test_linear_identities(cov):
    n = cov.shape[0]
    with jax.enable_x64(True):
        C = jnp.asarray(cov)
        np.testing.assert_array_equal(i2(C, "linear"), cov)
        np.testing.assert_array_equal(j2(C, "linear"), np.ones((n, n)))
        np.testing.assert_array_equal(i3(C, "linear"), np.broadcast_to(cov, (n, n, n)))
        np.testing.assert_array_equal(i4(C, "linear"), np.broadcast_to(cov, (n, n, n, n)))
        # eg = 0.5 E[(A.nu - v.lambda)^2] = 0.5 u^T C u for linear g.
        u = jnp.asarray([-0.3, 1.2, 0.7, -0.5])
        np.testing.assert_allclose(eg_from_covariance(C, u, "linear"), 0.5 * u @ C @ u, 1e-15)


def test_symmetries_erf(cov):
    with jax.enable_x64(True):
        C = jnp.asarray(cov)
        I2, J2, I4 = i2(C, "erf"), j2(C, "erf"), i4(C, "erf")
    np.testing.assert_allclose(I2, I2.T, rtol=1e-14)
    np.testing.assert_allclose(J2, J2.T, rtol=1e-14)
    np.testing.assert_allclose(I4, I4.transpose(1, 0, 2, 3), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(I4, I4.transpose(0, 1, 3, 2), rtol=1e-12, atol=1e-15)


def test_covariance_and_eg():
    Q = jnp.array([[1.0, 0.2], [0.2, 0.8]])
    R = jnp.array([[0.1, 0.3], [0.0, -0.2]])
    T = jnp.eye(2)
    C = covariance(Q, R, T)
    np.testing.assert_array_equal(C[:2, 2:], R)
    np.testing.assert_array_equal(C[2:, :2], R.T)
    v, A = jnp.array([1.0, 0.5]), jnp.array([1.0, 1.0])
    u = jnp.concatenate([-v, A])
    assert eg(Q, R, T, v, A, "erf") == pytest.approx(float(eg_from_covariance(C, u, "erf")))
    # A student equal to the teacher has zero error.
    assert float(eg(T, T, T, A, A, "erf")) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("g", ["erf", "linear"])
def test_jit_vmap_dtypes(cov, g):
    def all4(c):
        return i2(c, g), i3(c, g), i4(c, g), j2(c, g)

    batched_all4 = jax.jit(jax.vmap(all4))
    for dtype, tol in [(jnp.float32, 1e-5), (jnp.float64, 1e-13)]:
        with jax.enable_x64(dtype == jnp.float64):
            C = jnp.asarray(cov, dtype)
            batched = batched_all4(jnp.stack([C, 0.5 * C]))
            for k, scale in enumerate([1.0, 0.5]):
                for got, want in zip([b[k] for b in batched], all4(scale * C)):
                    assert got.dtype == want.dtype == dtype
                    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_unknown_g_is_refused(cov):
    with pytest.raises(ValueError, match="allowed: erf, linear"):
        i2(jnp.asarray(cov), "relu")


@pytest.mark.parametrize("g", ["erf", "linear"])
def test_student_rows(cov, g):
    """i3(C, g, rows=K) and i4(C, g, rows=K) are the student slices of the full tensors."""
    with jax.enable_x64(True):
        C = jnp.asarray(cov)
        np.testing.assert_allclose(i3(C, g, rows=K), i3(C, g)[:K], rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(i4(C, g, rows=K), i4(C, g)[:K, :K], rtol=1e-14, atol=1e-15)


def test_rounding_past_the_arcsin_domain_gives_the_limit_not_nan():
    """Far into a divergence (Q ~ 1e11 in float32) the overlap of two aligned units can
    round a hair above the geometric mean of their norms: I2 (the eg's integral) takes
    the arcsin's limit there instead of NaN (which hid the divergence of the analytic
    eg: the divergence check fell back to the Monte-Carlo eg)."""
    big = jnp.float32(1e11)
    C = jnp.array([[big, big * 1.0000001], [big * 1.0000001, big]], jnp.float32)
    assert float(C[0, 1] / jnp.sqrt((1 + C[0, 0]) * (1 + C[1, 1]))) > 1  # past the domain
    np.testing.assert_allclose(np.asarray(i2(C, "erf")), 1.0)
