"""Generalisation error: the closed form against Monte Carlo on the same weights."""

import jax
import numpy as np
import pytest

from hmmjax.data.base import make_data_model
from hmmjax.models.two_layer import init_network
from hmmjax.observables.metrics import analytic_available, eg_analytic, eg_mc

K, M = 3, 2
P = 200_000


@pytest.mark.parametrize(
    "kind,f,g,N,D,rtol",
    [
        # exact: i.i.d. inputs; the Gaussian equivalent model (fields exactly Gaussian)
        ("iid", "sign", "erf", 300, 10, 0.0),
        ("iid", "sign", "linear", 300, 10, 0.0),
        pytest.param("get", "sign", "erf", 300, 150, 0.0, marks=pytest.mark.slow),
        # the hidden manifold itself: Gaussian equivalence, up to finite-D corrections
        pytest.param("hmm", "sign", "erf", 1000, 500, 0.03, marks=pytest.mark.slow),
        pytest.param("hmm", "sign", "erf", 2000, 1000, 0.02, marks=pytest.mark.slow),
    ],
)
def test_analytic_eg_matches_monte_carlo(kind, f, g, N, D, rtol):
    model = make_data_model(jax.random.PRNGKey(0), kind, N=N, M=M, D=D, f=f, g=g)
    student = init_network(jax.random.PRNGKey(1), K, N, second_layer="gaussian", g=g)
    test = model.sample(jax.random.PRNGKey(2), P, noise=False)
    sq = 0.5 * np.asarray((test.y - student(test.x)) ** 2, np.float64)
    se = sq.std() / np.sqrt(P)
    analytic = float(eg_analytic(student, model))
    assert float(eg_mc(student, test)) == pytest.approx(sq.mean(), rel=1e-4)
    assert abs(analytic - sq.mean()) <= 4 * se + rtol * analytic, (analytic, sq.mean(), se)


def test_analytic_eg_is_nan_where_no_closed_form_applies():
    relu_manifold = make_data_model(jax.random.PRNGKey(0), "hmm", N=50, M=2, D=10, f="relu")
    student = init_network(jax.random.PRNGKey(1), 2, 50)
    assert not analytic_available(student, relu_manifold)
    assert np.isnan(float(eg_analytic(student, relu_manifold)))
    tanh_student = init_network(jax.random.PRNGKey(1), 2, 50, g="tanh")
    iid = make_data_model(jax.random.PRNGKey(0), "iid", N=50, M=2, g="tanh")
    assert np.isnan(float(eg_analytic(tanh_student, iid)))
