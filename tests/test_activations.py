import math

import jax.numpy as jnp
import numpy as np
import pytest

from hmmjax.core.activations import NAMES, activation, gaussian_constants

# Closed forms of THEORY.md section 2 (sign, erf, relu) and of the identity.
CLOSED = {
    "sign": (0.0, math.sqrt(2 / math.pi), 1.0),
    "erf": (0.0, 1 / math.sqrt(math.pi), 1 / 3),
    "relu": (1 / math.sqrt(2 * math.pi), 0.5, 0.5),
    "linear": (0.0, 1.0, 1.0),
}


@pytest.mark.parametrize("name", sorted(CLOSED))
def test_constants_match_closed_forms(name):
    c = gaussian_constants(name)
    np.testing.assert_allclose([c.mu0, c.mu1, c.f2], CLOSED[name], atol=1e-12)
    assert c.mu_star == pytest.approx(CLOSED[name][2] - CLOSED[name][0] ** 2 - CLOSED[name][1] ** 2)


def test_tanh_constants_against_fine_riemann_sum():
    # Independent route: a fine midpoint sum of the Gaussian integral.
    u = np.linspace(-12, 12, 2_000_001)
    du = u[1] - u[0]
    phi = np.exp(-u * u / 2) / math.sqrt(2 * math.pi)
    f = np.tanh(u)
    c = gaussian_constants("tanh")
    assert c.mu0 == pytest.approx(0.0, abs=1e-12)
    assert c.mu1 == pytest.approx(np.sum(u * f * phi) * du, rel=1e-9)
    assert c.f2 == pytest.approx(np.sum(f * f * phi) * du, rel=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_derivatives_match_finite_differences(name):
    act = activation(name)
    x = jnp.array([-1.7, -0.3, 0.4, 2.2])  # away from kinks
    h = 1e-3
    fd = (act.fn(x + h) - act.fn(x - h)) / (2 * h)
    np.testing.assert_allclose(act.deriv(x), fd, rtol=2e-3, atol=2e-3)


def test_erf_is_scaled():
    assert float(activation("erf").fn(jnp.array(math.sqrt(2.0)))) == pytest.approx(
        math.erf(1.0), rel=1e-6
    )


def test_unknown_activation_lists_allowed():
    with pytest.raises(ValueError, match="allowed: erf, linear, relu, tanh, sign, softplus"):
        activation("gelu")
