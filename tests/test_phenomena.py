"""Measurements of the linear-predictor and easy-examples phenomena, on known answers."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hmmjax.analysis.phenomena import first_fit_time, fitted_by_all, ratio_stderr
from hmmjax.observables.errors import (
    classification_error,
    fitted,
    linear_predictor,
    mse_between,
    ridge_dual,
    ridge_primal,
    sign_agreement,
)

# compiled once per shape and dtype: eager JAX compiles every primitive separately
lp = jax.jit(linear_predictor)
primal_dual = jax.jit(lambda xc, yc, lam: (ridge_primal(xc, yc, lam), ridge_dual(xc, yc, lam)))

# --- fitted_by_all -------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5])
def test_identical_networks_reach_the_maximum_ratio(n):
    row = np.random.default_rng(0).random(1000) < 0.7
    f = row.mean()
    frac_all, expected, ratio = fitted_by_all(np.tile(row, (n, 1)), member_axis=0)
    assert frac_all == f
    assert expected == pytest.approx(f**n, rel=1e-14)
    assert ratio == pytest.approx(f ** (1 - n), rel=1e-14)


def test_independent_networks_have_ratio_one():
    P, p = 200_000, np.array([0.9, 0.6, 0.75])
    fit = np.random.default_rng(1).random((3, P)) < p[:, None]
    frac_all, expected, ratio = fitted_by_all(fit, member_axis=0)
    se = ratio_stderr(fit, member_axis=0)
    # the null standard error: smaller than the naive one, close to the sample estimate
    q = p.prod()
    exact = np.sqrt(((1 / q - 1) - (1 / p - 1).sum()) / P)
    assert se == pytest.approx(exact, rel=0.02)
    assert se < np.sqrt((1 / q - 1) / P)
    assert ratio_stderr(fit, 0, assume_independent=False) == pytest.approx(se, rel=0.05)
    assert abs(ratio - 1) < 4 * se, (ratio, se)
    assert abs(ratio - 1) < 0.02


def test_ratio_stderr_for_identical_networks():
    # r = F^(1-n) exactly, so dr = (1-n) f^-n dF: stderr (n-1) f^-n sqrt(f (1-f) / P)
    n, P = 3, 5000
    row = np.random.default_rng(2).random(P) < 0.4
    f = row.mean()
    se = ratio_stderr(np.tile(row, (n, 1)), 0, assume_independent=False)
    assert se == pytest.approx((n - 1) * f**-n * np.sqrt(f * (1 - f) / P), rel=1e-10)
    assert ratio_stderr(row[None], 0) == 0.0  # one network: ratio 1 exactly


def test_edge_cases():
    half = np.arange(10) < 5
    frac_all, expected, ratio = fitted_by_all(np.stack([half, ~half]), member_axis=0)
    assert frac_all == 0 and expected == 0.25 and ratio == 0

    assert fitted_by_all(np.ones((4, 7), bool), 0) == (1.0, 1.0, 1.0)

    never = np.stack([half, np.zeros(10, bool)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frac_all, expected, ratio = fitted_by_all(never, member_axis=0)
        assert frac_all == 0 and expected == 0 and np.isnan(ratio)
        assert np.isnan(ratio_stderr(never, 0))
        assert np.isnan(ratio_stderr(never, 0, assume_independent=False))

    with pytest.raises(ValueError, match="member_axis"):
        fitted_by_all(never, member_axis=1)


@pytest.mark.parametrize("member_axis", [2, -3])
def test_leading_axes_match_a_loop(member_axis):
    fit = np.random.default_rng(3).random((2, 3, 4, 5, 50)) < 0.6  # (a, b, n, T, P)
    out = fitted_by_all(fit, member_axis)
    se = ratio_stderr(fit, member_axis)
    se_delta = ratio_stderr(fit, member_axis, assume_independent=False)
    assert all(o.shape == (2, 3, 5) for o in (*out, se, se_delta))
    for i, j, t in np.ndindex(2, 3, 5):
        one = fit[i, j, :, t]
        for o, ref in zip(out, fitted_by_all(one, 0)):
            assert o[i, j, t] == ref
        assert se[i, j, t] == ratio_stderr(one, 0)
        assert se_delta[i, j, t] == ratio_stderr(one, 0, assume_independent=False)


# --- first_fit_time ------------------------------------------------------------------------


def test_first_fit_time():
    times = np.array([0.0, 1.0, 2.5, 4.0])
    fit = np.array(
        [  # samples: from the start, late, forgotten and refitted, never
            [1, 0, 1, 0],
            [1, 0, 0, 0],
            [1, 1, 1, 0],
            [1, 1, 1, 0],
        ],
        bool,
    )
    np.testing.assert_array_equal(first_fit_time(fit, times), [0.0, 2.5, 2.5, np.nan])
    np.testing.assert_array_equal(
        first_fit_time(fit, times, for_good=False), [0.0, 2.5, 0.0, np.nan]
    )
    # leading axes, and a sample fitted then lost for good
    lost = fit.copy()
    lost[-1, 0] = False
    stacked = first_fit_time(np.stack([fit, lost]), times)
    np.testing.assert_array_equal(stacked, [[0.0, 2.5, 2.5, np.nan], [np.nan, 2.5, 2.5, np.nan]])


# --- per-network comparisons ---------------------------------------------------------------


def test_comparisons_on_small_arrays():
    a = jnp.array([[1.0, -2.0, 0.0, 3.0], [-1.0, -1.0, 2.0, 0.5]])
    b = jnp.array([[2.0, 1.0, -0.0, -1.0], [-3.0, 0.0, 1.0, 0.5]])
    # 0 and -0 count as positive
    np.testing.assert_allclose(sign_agreement(a, b), [0.5, 0.75])
    np.testing.assert_allclose(mse_between(a, b), [0.5 * (1 + 9 + 0 + 16) / 4, 0.5 * 6 / 4])
    y = jnp.array([1.0, -1.0, 1.0, -1.0])
    yhat = jnp.array([0.3, -2.0, -0.1, 0.0])
    np.testing.assert_array_equal(fitted(y, yhat), [True, True, False, False])
    assert classification_error(y, yhat) == 0.5
    np.testing.assert_allclose(classification_error(y, jnp.stack([yhat, y])), [0.5, 0.0])
    f = jax.jit(jax.vmap(lambda u, v: (sign_agreement(u, v), mse_between(u, v))))
    np.testing.assert_allclose(f(a, b)[0], [0.5, 0.75])


# --- the best linear predictor -------------------------------------------------------------


def _data(seed, shape, N):
    """Gaussian inputs (*shape, N) and teacher weights, bias; NumPy float64."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((*shape, N)), rng.standard_normal(N), rng.standard_normal()


def test_exactly_linear_data_recovers_the_weights():
    x, w_star, b_star = _data(0, (200,), 30)
    with jax.enable_x64(True):
        w, b = map(np.asarray, lp(x, x @ w_star + b_star, 1e-14))
    np.testing.assert_allclose(w, w_star, atol=1e-8)
    assert abs(b - b_star) < 1e-8


def test_dual_form_gives_the_minimum_norm_interpolant():
    x, _, _ = _data(1, (20,), 60)
    x = x + 0.5  # inputs with a non-zero mean: the bias matters
    y = np.sign(np.random.default_rng(2).standard_normal(20))
    with jax.enable_x64(True):
        w, b = map(np.asarray, lp(x, y, 1e-12))
    np.testing.assert_allclose(x @ w + b, y, atol=1e-8)
    # in the row space of x, and the minimum-norm solution of the centred problem
    coef = np.linalg.lstsq(x.T, w, rcond=None)[0]
    np.testing.assert_allclose(x.T @ coef, w, atol=1e-8)
    xc, yc = x - x.mean(0), y - y.mean()
    np.testing.assert_allclose(w, np.linalg.lstsq(xc, yc, rcond=None)[0], atol=1e-8)


@pytest.mark.parametrize("P,N", [(50, 20), (20, 50)])
def test_primal_and_dual_forms_agree(P, N):
    x, w_star, _ = _data(3, (P,), N)
    x = x - 0.3
    y = np.tanh(x @ w_star)
    xc, yc = x - x.mean(0), y - y.mean()
    lam = 0.1 * P
    with jax.enable_x64(True):
        primal, dual = primal_dual(xc, yc, lam)
        w, b = map(np.asarray, lp(x, y, 0.1))
    np.testing.assert_allclose(primal, dual, rtol=1e-10, atol=1e-12)
    # the gradient of the objective vanishes at the public function's answer
    r = y - x @ w - b
    np.testing.assert_allclose(-x.T @ r + lam * w, 0, atol=1e-10)
    assert abs(r.sum()) < 1e-10


@pytest.mark.parametrize("P,N", [(80, 20), (20, 40)])
def test_linear_predictor_under_jit_and_vmap(P, N):
    x, w_star, b_star = _data(4, (3, P), N)
    x = x.astype(np.float32)
    y = (x @ w_star + b_star).astype(np.float32)
    w, b = jax.jit(jax.vmap(linear_predictor, in_axes=(0, 0, None)))(x, y, 1e-6)
    assert w.shape == (3, N) and b.shape == (3,) and w.dtype == jnp.float32
    for s in range(3):
        w1, b1 = lp(x[s], y[s], 1e-6)
        np.testing.assert_allclose(w[s], w1, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(b[s], b1, rtol=1e-4, atol=1e-4)
    yhat = np.einsum("spn,sn->sp", x, w) + np.asarray(b)[:, None]
    np.testing.assert_allclose(yhat, y, atol=1e-3)
