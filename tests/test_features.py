"""Structured feature matrices (data.features = dct | hadamard): the fast transforms against
the explicit matrices built here, the samples' moments, the one-point ODE against the dense
route, configs, grids, state files, the memory plan, and the Gaussian F unchanged."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.fft
import scipy.linalg
from conftest import small_config

from hmmjax.config import ConfigError
from hmmjax.core.activations import activation
from hmmjax.core.rng import normal
from hmmjax.data import make_data_model
from hmmjax.data.features import (
    HADAMARD_BLOCK,
    DenseFeatures,
    TransformFeatures,
    dct_transform,
    draw_features,
    hadamard_factors,
    hadamard_transform,
)
from hmmjax.experiments.driver import simulate
from hmmjax.io.state import load_state, save_state
from hmmjax.models.two_layer import init_network
from hmmjax.observables.order_params import overlaps, spectral_arrays
from hmmjax.ode import solve_hmm, solve_hmm_sample, solve_hmm_state
from hmmjax.ode.spectral import full_state, one_point_state, sample_state
from hmmjax.sweep.lanes import point_configs
from hmmjax.sweep.memory import setup_bytes

N, D = 64, 24


def explicit(F: TransformFeatures) -> np.ndarray:
    """F = sqrt(N) U[rows] diag(signs) with U from SciPy (DCT-II, orthonormal) or Sylvester's
    Hadamard matrix / sqrt(N): built independently of the fast transforms."""
    n = F.shape[1]
    if F.kind == "dct":
        U = scipy.fft.dct(np.eye(n), type=2, norm="ortho", axis=0)
    else:
        U = scipy.linalg.hadamard(n) / math.sqrt(n)
    return math.sqrt(n) * U[np.asarray(F.rows)] * np.asarray(F.signs)


@pytest.fixture(scope="module", params=["dct", "hadamard"])
def features(request):
    with jax.enable_x64(True):  # drawn in float64; the tests enable x64 where they need it
        F = draw_features(jax.random.PRNGKey(3), request.param, D, N, jnp.float64)
    return F


def test_fast_transforms_equal_the_explicit_matrix(features):
    F = explicit(features)
    rng = np.random.default_rng(0)
    c, w, U = rng.standard_normal((D, 5)), rng.standard_normal((3, N)), rng.standard_normal((D, 4))
    with jax.enable_x64(True):
        np.testing.assert_allclose(features.lift(jnp.asarray(c)), c.T @ F, atol=1e-12)
        np.testing.assert_allclose(features.apply(jnp.asarray(w)), w @ F.T, atol=1e-12)
        np.testing.assert_allclose(features.gram(jnp.asarray(U)), F @ F.T @ U / N, atol=1e-12)
        np.testing.assert_allclose(features.dense(), F, atol=1e-12)
    assert len(set(np.asarray(features.rows).tolist())) == D  # D distinct rows
    np.testing.assert_allclose(np.mean(F**2), 1.0, rtol=1e-12)  # unit mean square like N(0, 1)
    if features.kind == "hadamard":
        np.testing.assert_array_equal(np.abs(F), 1.0)


def test_the_hadamard_transform_equals_sylvester_along_every_axis():
    """``hadamard_transform`` (a product per Kronecker factor, each contracting the leading
    factor and putting its result last) against SciPy's Sylvester matrix, for lengths
    with one to three factors, along each axis of an array and under ``jax.vmap``."""
    for n in range(25):
        bits = hadamard_factors(n)
        assert sum(bits) == n and max(bits) - min(bits) <= 1
        assert max(bits) <= HADAMARD_BLOCK.bit_length() - 1
    assert len(hadamard_factors(11)) == 3  # the 2^11 case below runs three products
    with jax.enable_x64(True):
        for n in (0, 1, 3, 5, 6, 11):
            H = scipy.linalg.hadamard(1 << n) / math.sqrt(1 << n)
            rng = np.random.default_rng(n)
            for axis in (0, 1, 2, -1):
                shape = [2, 3]
                shape.insert(axis % 3, 1 << n)
                y = rng.standard_normal(shape)
                want = np.moveaxis(np.moveaxis(y, axis, -1) @ H.T, -1, axis)
                got = hadamard_transform(jnp.asarray(y), axis)
                np.testing.assert_allclose(got, want, atol=1e-12, err_msg=f"2^{n}, axis {axis}")
            x = rng.standard_normal((2, 1 << n, 3))
            batched = jax.vmap(lambda v: hadamard_transform(v, 0))(jnp.asarray(x))
            np.testing.assert_allclose(batched, np.einsum("ij,bjr->bir", H, x), atol=1e-12)


def test_the_real_fft_dct_equals_scipy_for_every_length():
    """``dct_transform`` (one rfft of the reordered vector for an even N, jax.scipy.fft
    for an odd one) against SciPy's orthonormal DCT-II and DCT-III, over a batch."""
    transform = jax.jit(dct_transform, static_argnums=1)  # one program, not one per operation
    with jax.enable_x64(True):
        for n in (1, 2, 3, 4, 7, 8, 30, 64):
            x = np.random.default_rng(n).standard_normal((2, 3, n))
            for inverse, want in ((False, scipy.fft.dct), (True, scipy.fft.idct)):
                got = transform(jnp.asarray(x), inverse)
                np.testing.assert_allclose(got, want(x, type=2, norm="ortho"), atol=1e-14,
                                           err_msg=f"N = {n}, inverse = {inverse}")  # fmt: skip


@pytest.mark.parametrize("kind", ["dct", "hadamard"])
def test_a_transform_along_the_first_axis_is_the_transposed_one(kind):
    """``_transform(x, axis=0)`` is the transform of every column (both directions)."""
    features = draw_features(jax.random.PRNGKey(0), kind, 3, 8)
    x = jax.random.normal(jax.random.PRNGKey(1), (8, 4))
    for inverse in (False, True):
        along_0 = features._transform(x, axis=0, inverse=inverse)
        np.testing.assert_allclose(along_0, features._transform(x.T, inverse=inverse).T,
                                   atol=1e-6)  # fmt: skip
    assert features._transform(x, axis=0).shape == (8, 4)


def test_structured_samples_have_the_gaussian_moments():
    """x = sign(F^T c / sqrt D): E x = 0, E x^2 = 1, and the fields lambda = w x / sqrt N,
    nu = theta c / sqrt D have the covariances Q, R, T that ``overlaps`` predicts from the
    Gaussian constants (Monte Carlo, 40000 samples: tolerance 4 standard errors)."""
    n, d, P = 128, 64, 40000
    for model_kind, kind in (("hmm", "dct"), ("hmm", "hadamard"), ("get", "hadamard")):
        model = make_data_model(jax.random.PRNGKey(1), model_kind, N=n, M=1, D=d,
                                features=kind)  # fmt: skip
        w = init_network(jax.random.PRNGKey(2), 1, n).w
        batch = model.sample(jax.random.PRNGKey(4), P)
        x = np.asarray(batch.x, np.float64)
        assert abs(x.mean()) < 0.01  # E x = mu0 = 0 (the components are weakly correlated)
        lam = x @ np.asarray(w[0], np.float64) / math.sqrt(n)
        nu = np.asarray(batch.z, np.float64) @ np.asarray(model.teacher.w[0]) / math.sqrt(d)
        ov = overlaps(w, model)
        for got, want in ((np.mean(lam**2), ov.Q[0, 0]), (np.mean(lam * nu), ov.R[0, 0]),
                          (np.mean(nu**2), ov.T[0, 0])):  # fmt: skip
            se = math.sqrt(2 / P) * float(ov.Q[0, 0] + ov.T[0, 0])
            assert abs(got - float(want)) < 4 * se, (kind, got, float(want))


def test_one_point_ode_equals_the_dense_route(features):
    """The fast route's exact one-point state equals the per-eigenvalue state of the
    explicit matrix (eigen-decomposition of F F^T / N, every rho = 1) summed over the
    spectrum, and the ODE from both gives the same eg."""
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        w = jnp.asarray(rng.standard_normal((2, N)))
        theta = jnp.asarray(rng.standard_normal((2, D)))
        fast = one_point_state(w, features, theta)
        dense = spectral_arrays(w, jnp.asarray(explicit(features)), theta)
        np.testing.assert_allclose(dense["rho"], 1.0, atol=1e-12)
        full = full_state(dense)
        for name in ("sigma", "r", "B"):
            np.testing.assert_allclose(getattr(fast, name)[..., 0],
                                       getattr(full, name).sum(-1), atol=1e-12)  # fmt: skip
        for name in ("W", "T", "Ttilde"):
            np.testing.assert_allclose(getattr(fast, name), getattr(full, name), atol=1e-12)
        assert sample_state(w, features, theta, 33).nodes.shape == (1,)  # whatever p asks
        ts = jnp.linspace(0, 2, 5)
        args = dict(v=jnp.ones(2), A=jnp.ones(2), delta=D / N, lr=0.5, solver="euler", dt=0.01)
        eg_fast = solve_hmm_state(fast, ts, **args).eg
        eg_full = solve_hmm_state(full, ts, **args).eg
    np.testing.assert_allclose(eg_fast, eg_full, rtol=1e-10)


@pytest.mark.parametrize("case", ["scaled", "D=1"])
def test_a_dense_one_point_spectrum_is_solved_on_its_point(case):
    """The one-point rule is decided by the spectrum, not by the kind of F: a dense F with
    Omega = c I (here c = 4: twice Sylvester's Hadamard rows) or with D = 1 gets the exact
    state on its point c (Ttilde = c T), equal to the eigen-decomposition route summed,
    whatever p asks; ``solve_hmm_sample`` with auto nodes gives the full route's eg."""
    rng = np.random.default_rng(2)
    n = 16
    if case == "scaled":
        F = 2.0 * scipy.linalg.hadamard(n)[[1, 5, 6, 11]].astype(float)
    else:
        F = rng.standard_normal((1, n))
    with jax.enable_x64(True):
        F = jnp.asarray(F)
        w = jnp.asarray(rng.standard_normal((2, n)))
        theta = jnp.asarray(rng.standard_normal((2, F.shape[0])))
        got = sample_state(w, F, theta, 17)
        full = full_state(spectral_arrays(w, F, theta))
        assert got.nodes.shape == (1,)
        np.testing.assert_allclose(got.nodes, full.nodes[:1], rtol=1e-12)
        if case == "scaled":
            np.testing.assert_allclose(got.nodes, [4.0], rtol=1e-12)
        for name in ("sigma", "r", "B"):
            np.testing.assert_allclose(getattr(got, name)[..., 0],
                                       getattr(full, name).sum(-1), atol=1e-12)  # fmt: skip
        for name in ("W", "T", "Ttilde"):
            np.testing.assert_allclose(getattr(got, name), getattr(full, name), atol=1e-12)
        ts = jnp.linspace(0, 1, 3)
        v, A = jnp.ones(2), jnp.ones(2)
        args = dict(lr=0.5, solver="euler", dt=0.01)
        auto = solve_hmm_sample(w, v, F, theta, A, ts, **args)
        exact = solve_hmm_sample(w, v, F, theta, A, ts, nodes="full", **args)
    np.testing.assert_allclose(auto.eg, exact.eg, rtol=1e-10)


def test_a_one_point_state_stacks_beside_grid_points_of_p_nodes():
    """A grid over D with D = 1 (a one-point spectrum, one node) and D = 4 (p nodes): the
    one-point state is padded with inert zero-weight points, and each point of the ODE
    grid equals its own single run."""
    base = {"data": {"N": 30, "D": 1}, "run": {"mode": "ode", "t_max": 1.0, "n_times": 4},
            "ode": {"nodes": 9}}  # fmt: skip
    grid = simulate(small_config(base, grid={"D": [1, 4]}), progress=False)
    for i, D in enumerate((1, 4)):
        one = simulate(small_config(base, data={"D": D}), progress=False)
        np.testing.assert_allclose(grid["eg_ode"].values[i], one["eg_ode"].values,
                                   rtol=1e-10, err_msg=f"D = {D}")  # fmt: skip


def test_gaussian_features_are_todays_draw():
    """data.features = "gaussian" (the default) keeps F = normal(kf, (D, N)) and the
    samples x = f(einsum(c / sqrt D, F)), bit for bit."""
    model = make_data_model(jax.random.PRNGKey(7), "hmm", N=N, M=2, D=D)
    kf, _ = jax.random.split(jax.random.PRNGKey(7))
    assert isinstance(model.features, DenseFeatures)
    np.testing.assert_array_equal(model.features.matrix, normal(kf, (D, N), jnp.float32))
    cT = jax.random.normal(jax.random.PRNGKey(8), (D, 9))
    want = activation("sign").fn(jnp.einsum("dp,dn->pn", cT / math.sqrt(D), model.features.matrix))
    np.testing.assert_array_equal(model.inputs(cT)[0], want)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"features": "hadamard", "N": 48, "D": 8}, "data.N = 48: data.features = \"hadamard\""),
        ({"features": "dct", "N": 30, "D": 40}, "data.D = 40: .*expected D <= data.N = 30"),
        ({"features": "dct", "model": "iid"}, "data.model = \"iid\" has no feature matrix"),
        ({"features": "fourier"}, "data.features"),
    ],
)
def test_bad_feature_configs_are_refused_in_one_line(data, match):
    with pytest.raises(ConfigError, match=match) as err:
        small_config({"data": data})
    assert "\n" not in str(err.value)


def test_invariant_manifolds_refuse_structured_features():
    with pytest.raises(ConfigError, match='data.model = "stripe" has no feature matrix'):
        small_config({"data": {"model": "stripe", "N": 3, "features": "dct"},
                      "finite": {"P": 8}, "student": {"g": "relu"}})  # fmt: skip


def test_the_limit_source_runs_on_one_point():
    cfg = small_config({"data": {"N": 64, "D": 32, "features": "hadamard"},
                        "run": {"mode": "ode"}, "ode": {"source": "limit"}})  # fmt: skip
    ds = simulate(cfg, progress=False)
    assert int(ds.attrs["ode_points"]) == 1
    eg = ds.eg_ode.values
    assert np.all(np.isfinite(eg)) and eg[-1] < eg[0]


def test_grids_over_shapes_with_structured_features_are_refused():
    with pytest.raises(ConfigError, match="grid.N: data.features = \"dct\" is not padded"):
        small_config({"data": {"features": "dct"}}, grid={"N": [30, 40]})


def test_structured_setups_hold_no_dense_matrix():
    """The memory plan measures the draw: no D N term for a structured F."""
    sizes = {"data": {"N": 4096, "D": 2048}, "run": {"ensemble": 1, "test_size": 4}}
    held = {
        kind: setup_bytes(point_configs(small_config(sizes, data={"features": kind})),
                          cached=True)[0]
        for kind in ("gaussian", "hadamard", "dct")
    }  # fmt: skip
    assert held["gaussian"] >= 4 * 2048 * 4096
    assert held["hadamard"] < 4 * 2048 * 4096 / 100 and held["dct"] < 4 * 2048 * 4096 / 100


def test_state_file_of_structured_features(tmp_path):
    model = make_data_model(jax.random.PRNGKey(1), "hmm", N=N, M=2, D=D, features="hadamard")
    student = init_network(jax.random.PRNGKey(2), 2, N)
    state = load_state(save_state(tmp_path / "s.npz", student, model))
    assert "F" not in state
    np.testing.assert_array_equal(state["rho"], 1.0)
    with jax.enable_x64(True):
        w = jnp.asarray(student.w, jnp.float64)
        F = model.features.astype(jnp.float64)
        S = F.apply(w) / math.sqrt(N)
        S = jnp.asarray(w) @ jnp.asarray(explicit(F)).T / math.sqrt(N)  # the explicit F
        sigma = S @ S.T / D  # in float64 (outside the block, the product would be float32)
    np.testing.assert_allclose(state["sigma"].sum(-1) / D, sigma, rtol=1e-10)
    # the state file's one-point spectrum: one exact node, for "auto" (no ladder) and any p
    ts = np.array([0.0, 1.0])
    auto = solve_hmm(state, ts, lr=0.5, solver="euler", dt=0.01)
    assert auto.points == 1
    full = solve_hmm(state, ts, lr=0.5, solver="euler", dt=0.01, nodes="full")
    np.testing.assert_allclose(auto.eg, full.eg, rtol=1e-10)


@pytest.fixture(scope="module")
def feature_grid():
    cfg = small_config(
        {"data": {"N": 64, "D": 16}, "run": {"t_max": 1.0, "n_times": 4}},
        grid={"features": ["gaussian", "hadamard"], "K": [1, 2]},  # K padded in a lane
    )
    return cfg, simulate(cfg, progress=False)


def test_a_features_grid_equals_its_single_runs(feature_grid):
    cfg, ds = feature_grid
    assert list(ds.features.values) == ["gaussian", "hadamard"]
    alone = small_config(
        {"data": {"N": 64, "D": 16, "features": "hadamard"}, "run": {"t_max": 1.0, "n_times": 4}},
        grid={"K": [1, 2]},
    )  # written out, not derived from the grid's config
    one = simulate(alone, progress=False)
    for name in ("eg_sim", "Q", "R"):
        np.testing.assert_array_equal(ds[name].sel(features="hadamard").values, one[name].values)
    g = ds.eg_sim.values
    assert not np.allclose(g[0], g[1])  # different F, different samples


def test_structured_simulation_follows_its_ode():
    """Small-N check of the one-point ODE against simulation (the fidelity at large N is in
    benchmarks/features_fidelity.py): 8 members, same initial weights, t = 4."""
    cfg = small_config(
        {"data": {"N": 512, "D": 256, "features": "hadamard"},
         "run": {"mode": "both", "t_max": 4.0, "n_times": 4, "ensemble": 8,
                 "same_init": True}},
        sgd={"lr": 0.5},
    )  # fmt: skip
    ds = simulate(cfg, progress=False)
    sim, ode = ds.eg_sim.values[:, -1], float(ds.eg_ode.values[-1])
    se = sim.std(ddof=1) / math.sqrt(len(sim))
    assert abs(sim.mean() - ode) < 4 * se + 0.02 * ode
