"""ODE right-hand sides (THEORY.md 5.1, 5.2) and the diffrax driver.

- the published integrator's output (tests/data) is reproduced step for step;
- Euler saves are exactly the state after round(t/dt) steps;
- the linear i.i.d. ODE matches its closed-form solution;
- the HMM right-hand side reduces to the i.i.d. one where they must coincide;
- i.i.d. erf shows the Saad-Solla plateau and learns a realisable teacher;
- adaptive Tsit5 and Euler converge to the same curve; vmap over lr equals separate runs;
- the compiled ODE has no host callback (JAX's compilation cache keeps it), and a failed
  adaptive solve is raised on the host (``throw``) or flagged (``ok``).
"""

import math

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hmmjax.core.activations import gaussian_constants
from hmmjax.io.state import load_state
from hmmjax.ode import (
    HMMArgs,
    HMMState,
    IIDArgs,
    IIDState,
    euler_steps,
    hmm_observables,
    hmm_problem,
    hmm_rhs,
    iid_rhs,
    solve_hmm,
    solve_hmm_state,
    solve_iid,
)
from hmmjax.ode.spectral import state_from_arrays

LR_REF = 0.3


@pytest.fixture(scope="module")
def ref_arrays(reference_dir):
    return load_state(reference_dir / "hmm_ode_case1_state.npz")


@pytest.fixture(scope="module")
def ref_curve(reference_dir):
    data = np.loadtxt(reference_dir / "hmm_ode_case1_eg.csv", delimiter=",", skiprows=1)
    return data[:, 0], data[:, 1]


@pytest.fixture(scope="module")
def ref_solution(ref_arrays, ref_curve):
    """The reference case, full ODE (every eigenvalue), Euler dt = 0.01, averaged teacher
    term, to t = 97.64."""
    ts, _ = ref_curve
    return solve_hmm(
        ref_arrays, ts, lr=LR_REF, f="sign", g="erf", solver="euler", dt=0.01, nodes="full"
    )


# --- the published integrator --------------------------------------------------------


def test_reference_case1(ref_solution, ref_curve):
    """1e4 Euler steps reproduce all 200 printed values (6 significant digits)."""
    ts, eg_ref = ref_curve
    assert ref_solution.eg.dtype == jnp.float64
    np.testing.assert_allclose(ref_solution.ts, ts, rtol=1e-12)
    rel = np.abs(np.asarray(ref_solution.eg) / eg_ref - 1.0)
    assert rel.max() <= 1e-5, f"max rel error {rel.max():.2e} at t={ts[rel.argmax()]}"
    assert int(ref_solution.num_steps) == round(ts[-1] / 0.01)
    assert bool(ref_solution.ok)


def test_reference_case1_compressed(ref_arrays, ref_curve, ref_solution):
    """THEORY 5.3: 32 nodes instead of D = 400 eigenvalues reproduce the published
    integrator as well as the full ODE, and the full ODE itself to 1e-8."""
    ts, eg_ref = ref_curve
    sol = solve_hmm(ref_arrays, ts, lr=LR_REF, solver="euler", dt=0.01, nodes=32)
    assert sol.points == 32 and ref_solution.points == 400
    assert np.abs(np.asarray(sol.eg) / eg_ref - 1.0).max() <= 1e-5
    np.testing.assert_allclose(sol.eg, ref_solution.eg, rtol=1e-8)


def test_euler_saves_are_step_exact(ref_arrays, ref_solution):
    """The value saved at t is the state after exactly round(t/dt) Euler steps."""
    dt = 0.01
    with jax.enable_x64(True):
        y0, args = hmm_problem(ref_arrays, lr=LR_REF, f="sign", g="erf", nodes="full")

        @jax.jit
        def manual(n):
            def body(_, y):
                dy = hmm_rhs(0.0, y, args)
                return jax.tree_util.tree_map(lambda a, b: a + dt * b, y, dy)

            return hmm_observables(jax.lax.fori_loop(0, n, body, y0), args)

        for i in (1, 2, 9, 60):  # t = 0.11, 0.12, 0.19, 1.01
            n = round(float(ref_solution.ts[i]) / dt)
            obs = manual(n)
            np.testing.assert_allclose(ref_solution.eg[i], obs.eg, rtol=1e-13, atol=0)
            np.testing.assert_allclose(ref_solution.Q[i], obs.Q, rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(ref_solution.R[i], obs.R, rtol=1e-13, atol=1e-15)


def test_euler_steps_validation():
    np.testing.assert_array_equal(euler_steps([0.0, 0.11, 97.64], 0.01), [0, 11, 9764])
    with pytest.raises(ValueError, match="multiples of dt"):
        euler_steps([0.0, 0.015], 0.01)
    with pytest.raises(ValueError, match="strictly increasing"):
        euler_steps([0.0, 0.2, 0.1], 0.01)


def test_problem_validation(ref_arrays):
    with pytest.raises(ValueError, match="mu0"):
        hmm_problem(ref_arrays, lr=0.1, f="relu")
    with pytest.raises(ValueError, match="erf"):
        hmm_problem(ref_arrays, lr=0.1, g="tanh")
    with pytest.raises(ValueError, match="beta"):
        hmm_problem(ref_arrays, lr=0.1, teacher="exact")
    with pytest.raises(ValueError, match="missing"):
        hmm_problem({k: v for k, v in ref_arrays.items() if k != "rho"}, lr=0.1)


# --- right-hand sides against independent routes ---------------------------------------


def _random_hmm(seed, K, M, D, *, rho=None, N=None):
    """A random HMM state with r, sigma built from Gamma, beta as in THEORY.md 3."""
    rng = np.random.default_rng(seed)
    N = 2 * D if N is None else N
    gamma = rng.standard_normal((K, D))
    beta = rng.standard_normal((M, D))
    rho = rng.uniform(0.2, 3.0, D) if rho is None else rho
    return {
        "rho": rho,
        "sigma": np.einsum("kt,lt->klt", gamma, gamma),
        "r": np.einsum("kt,mt->kmt", gamma, beta),
        "W": np.eye(K) + 0.01 * (X := rng.standard_normal((K, K))) @ X.T,
        "v": rng.uniform(0.5, 1.5, K),
        "A": rng.uniform(0.5, 1.5, M),
        "T": beta @ beta.T / D,
        "Ttilde": (beta * rho) @ beta.T / D,
        "beta": beta,
        "N": np.int64(N),
        "D": np.int64(D),
    }


def test_hmm_rhs_reduces_to_iid():
    """f linear (zeta = 0, mu1 = <f^2> = 1), rho = 1, delta = 1: the HMM ODE's Q, R obey
    the i.i.d. ODE. This checks the G, E construction of 5.2 against P of 5.1."""
    K, M, D = 3, 2, 7
    a = _random_hmm(0, K, M, D, rho=np.ones(D), N=D)
    a["Ttilde"] = a["T"]
    with jax.enable_x64(True):
        for both in (False, True):
            y, args = hmm_problem(a, lr=0.7, f="linear", g="erf", both=both, teacher="averaged")
            obs = jax.jit(hmm_observables)(y, args)
            dy = jax.jit(hmm_rhs)(0.0, y, args)
            iid_y = IIDState(Q=obs.Q, R=obs.R, v=y.v)
            z = jnp.zeros(())
            iid_args = IIDArgs(T=args.T, A=args.A, lr=args.lr, kappa=z, noise=z, both=both)
            d_iid = jax.jit(iid_rhs)(0.0, iid_y, iid_args)
            np.testing.assert_allclose(jnp.sum(dy.sigma, -1), d_iid.Q, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(jnp.sum(dy.r, -1), d_iid.R, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(dy.v, d_iid.v, rtol=1e-12, atol=1e-14)


def test_exact_teacher_term():
    """The exact source mu1 rho_tau E B(tau) averages over tau to mu1 E Ttilde; the
    published mu1 rho_tau E Ttilde to mu1 mean(rho) E Ttilde. With rho = 1 they move Q
    and R identically; per tau, and for a general spectrum, they differ."""
    K, M, D = 2, 2, 9
    rhs, obs = jax.jit(hmm_rhs), jax.jit(hmm_observables)
    with jax.enable_x64(True):
        for rho, same in ((np.ones(D), True), (None, False)):
            a = _random_hmm(1, K, M, D, rho=rho)
            derivs = []
            for teacher in ("exact", "averaged"):
                y, args = hmm_problem(a, lr=0.4, f="sign", g="erf", teacher=teacher)
                assert (args.B is None) == (teacher == "averaged")
                dy = rhs(0.0, y, args)
                derivs.append((jnp.sum(dy.sigma, -1), jnp.sum(dy.r, -1), dy.r))
                assert obs(y, args).eg > 0
            (s1, r1, full1), (s2, r2, full2) = derivs
            np.testing.assert_allclose(s1, s2, rtol=1e-12, atol=1e-14)
            assert np.allclose(r1, r2, rtol=1e-12, atol=1e-14) == same
            assert not np.allclose(full1, full2)  # per tau they always differ


def test_linear_iid_closed_form():
    """K = M = 1, g linear, v = A = 1: with a = eta + kappa, b = 2 eta - eta^2 + 2 kappa,
    c = 2 eta - 2 eta^2, e = eta^2 (T + sigma^2) the ODE of 5.1 is
        dR/dt = eta T - a R,     dQ/dt = c R + e - b Q,
    solved by R = R* + (R0 - R*) e^{-a t},  R* = eta T / a,
              Q = Q* + alpha e^{-a t} + (Q0 - Q* - alpha) e^{-b t},
              Q* = (c R* + e) / b,  alpha = c (R0 - R*) / (b - a)."""
    eta, kappa, noise = 0.5, 0.1, 0.3
    Q0, R0, T = 2.0, 0.2, 1.3
    a = eta + kappa
    b = 2 * eta - eta**2 + 2 * kappa
    c = 2 * eta - 2 * eta**2
    e = eta**2 * (T + noise**2)
    Rs = eta * T / a
    Qs = (c * Rs + e) / b
    alpha = c * (R0 - Rs) / (b - a)
    ts = np.array([0.0, 0.3, 1.0, 2.5, 5.0, 10.0, 20.0])
    R_exact = Rs + (R0 - Rs) * np.exp(-a * ts)
    Q_exact = Qs + alpha * np.exp(-a * ts) + (Q0 - Qs - alpha) * np.exp(-b * ts)
    eg_exact = 0.5 * (Q_exact - 2 * R_exact + T)
    sol = solve_iid(
        [[Q0]], [[R0]], [1.0], [[T]], [1.0], ts, lr=eta, kappa=kappa, noise=noise,
        g="linear", solver="tsit5", rtol=1e-11, atol=1e-13,
    )  # fmt: skip
    np.testing.assert_allclose(sol.R[:, 0, 0], R_exact, rtol=1e-8)
    np.testing.assert_allclose(sol.Q[:, 0, 0], Q_exact, rtol=1e-8)
    np.testing.assert_allclose(sol.eg, eg_exact, rtol=1e-8)
    assert bool(sol.ok)
    # Second layer (both layers): dv/dt = eta sum_c u_c I2(k,c) = eta (A R - v Q).
    with jax.enable_x64(True):
        y = IIDState(Q=jnp.array([[Q0]]), R=jnp.array([[R0]]), v=jnp.array([0.7]))
        z = jnp.zeros(())
        args = IIDArgs(T=jnp.array([[T]]), A=jnp.array([1.2]), lr=jnp.asarray(eta),
                       kappa=z, noise=z, g="linear", both=True)  # fmt: skip
        dv = iid_rhs(0.0, y, args).v
    np.testing.assert_allclose(dv, eta * (1.2 * R0 - 0.7 * Q0), rtol=1e-14)


# --- dynamics ---------------------------------------------------------------------------


def test_iid_erf_plateau_and_convergence():
    """K = M = 2, erf, eta = 1, small initial weights, realisable teacher: eg drops to a
    plateau (symmetric, unspecialised student), stays there, escapes, and goes to 0."""
    rng = np.random.default_rng(0)
    K, M, N = 2, 2, 1000
    w = 0.1 * rng.standard_normal((K, N))
    theta = rng.standard_normal((M, N))
    T = theta @ theta.T / N
    ts = np.array([0.0, 10.0, 20.0, 30.0, 100.0, 150.0, 300.0])
    sol = solve_iid(
        w @ w.T / N, w @ theta.T / N, np.ones(K), T, np.ones(M), ts, lr=1.0, solver="tsit5"
    )
    eg = np.asarray(sol.eg)
    eg0, plateau, final = eg[0], eg[1:4], eg[-1]
    assert plateau.max() < 0.1 * eg0
    assert plateau.max() - plateau.min() < 0.01 * plateau.mean()  # flat over t = 10..30
    assert plateau.min() > 1e-2
    assert eg[4] < 0.2 * plateau.min()  # escaped by t = 100
    assert final < 1e-8 * eg0
    # Specialisation: each student unit aligns with one teacher unit, Q -> T (perm.).
    R = np.asarray(sol.R[-1])
    perm = np.argmax(np.abs(R), axis=1)
    assert sorted(perm) == [0, 1]
    np.testing.assert_allclose(R[:, perm], T[np.ix_(perm, perm)], atol=1e-4)


def test_tsit5_vs_euler(ref_arrays):
    """Forward Euler converges to the adaptive solution at first order in dt: Euler at
    dt = 1e-3 agrees with Tsit5 to its O(dt) error, and Richardson extrapolation of
    Euler (2 e(dt) - e(2 dt)) to 1e-5, with Tsit5 using ~100x fewer steps."""
    ts = np.array([0.0, 0.5, 1.0, 2.0, 5.0, 10.0])
    kw = dict(lr=LR_REF, f="sign", g="erf", nodes="full")
    tsit = solve_hmm(ref_arrays, ts, solver="tsit5", rtol=1e-8, atol=1e-10, **kw)
    e1 = solve_hmm(ref_arrays, ts, solver="euler", dt=1e-3, **kw)
    e2 = solve_hmm(ref_arrays, ts, solver="euler", dt=2e-3, **kw)
    eg_t, eg_1, eg_2 = (np.asarray(s.eg) for s in (tsit, e1, e2))
    err1, err2 = np.abs(eg_1 / eg_t - 1), np.abs(eg_2 / eg_t - 1)
    assert err1.max() < 2.5e-4, err1
    assert np.all(err2[1:] / err1[1:] > 1.8) and np.all(err2[1:] / err1[1:] < 2.2)
    richardson = 2 * eg_1 - eg_2
    np.testing.assert_allclose(richardson, eg_t, rtol=1e-5)
    assert int(tsit.num_steps) * 50 < int(e1.num_steps)


@pytest.mark.parametrize("nodes", [12, pytest.param("full", marks=pytest.mark.slow)])
def test_vmap_over_lr(ref_arrays, nodes):
    ts = np.array([0.0, 0.25, 1.0])
    lrs = np.array([0.1, 0.3, 0.6])

    def run(lr):
        s = solve_hmm(ref_arrays, ts, lr=lr, solver="euler", dt=0.01, nodes=nodes)
        return s.eg, s.Q, s.R

    # lr values must be float64 too: a float32 0.1 differs from 0.1 by 1.5e-8.
    with jax.enable_x64(True):
        batched = jax.vmap(run)(jnp.asarray(lrs))
    for i, lr in enumerate(lrs):
        for got, want in zip(batched, run(float(lr))):
            np.testing.assert_allclose(got[i], want, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="under jit/vmap give nodes=p"):
        jax.vmap(lambda lr: solve_hmm(ref_arrays, ts, lr=lr, nodes="auto").eg)(jnp.asarray(lrs))


def test_gaussian_constants_used():
    """The HMM constants come from activations.gaussian_constants (sign: mu1 = sqrt(2/pi))."""
    a = _random_hmm(2, 2, 1, 5)
    with jax.enable_x64(True):
        _, args = hmm_problem(a, lr=0.1, f="sign")
    c = gaussian_constants("sign")
    assert args.mu1 == pytest.approx(math.sqrt(2 / math.pi), rel=1e-12)
    assert args.zeta == pytest.approx(c.f2 - c.mu1**2)
    assert isinstance(args, HMMArgs)
    assert isinstance(hmm_problem(a, lr=0.1)[0], HMMState)


# --- the compiled program ---------------------------------------------------------------


def _iid_case():
    rng = np.random.default_rng(3)
    w, theta = rng.standard_normal((2, 50)), rng.standard_normal((2, 50))
    return w @ w.T / 50, w @ theta.T / 50, np.ones(2), theta @ theta.T / 50, np.ones(2)


@pytest.mark.parametrize("solver", ["euler", "tsit5"])
def test_the_compiled_ode_has_no_host_callbacks(solver):
    """diffrax's run-time checks are host callbacks, and JAX does not write a program with
    one to its persistent cache: the ODE would compile again in every run. The lowered
    program (i.i.d. ODE, and the HMM ODE on p nodes, vmapped over lr as a sweep runs it)
    calls no host callback."""
    ts = np.array([0.0, 0.5, 2.0])
    with jax.enable_x64(True):
        a = {k: jnp.asarray(x, float) for k, x in _random_hmm(2, 2, 2, 20).items()}
        state = state_from_arrays(a, 5)

    def iid(lr):
        return solve_iid(*_iid_case(), ts, lr=lr, solver=solver).eg

    def hmm(lr):
        return solve_hmm_state(state, ts, v=a["v"], A=a["A"], delta=0.5, lr=lr, f="sign",
                               g="erf", solver=solver).eg  # fmt: skip

    with jax.enable_x64(True):
        for fn in (iid, hmm):
            text = jax.jit(jax.vmap(fn)).lower(jnp.asarray([0.1, 0.3])).as_text()
            assert "callback" not in text, fn.__name__


def test_the_checks_stay_on_outside_the_ode():
    """The checks are off for hmmjax's solves only: a user's diffrax solve of the same
    shapes, traced before and after one of hmmjax's, keeps its check (a callback), and
    hmmjax's program has none whatever was traced before it (Equinox caches the trace of
    a check by its arguments, not by its mode)."""
    ts = np.array([0.0, 0.5, 2.0])

    def user(t):
        sol = dfx.diffeqsolve(dfx.ODETerm(lambda s, y, a: -y), dfx.Tsit5(), t0=0.0, t1=2.0,
                              dt0=None, y0=jnp.ones(()), saveat=dfx.SaveAt(ts=t),
                              stepsize_controller=dfx.PIDController(rtol=1e-6, atol=1e-8),
                              throw=False)  # fmt: skip
        return sol.ys

    def ours(lr):
        return solve_iid(*_iid_case(), ts, lr=lr, solver="tsit5").eg

    with jax.enable_x64(True):
        before = jax.jit(user).lower(jnp.asarray(ts)).as_text()
        mine = jax.jit(jax.vmap(ours)).lower(jnp.asarray([0.1, 0.3])).as_text()
        after = jax.jit(user).lower(jnp.asarray(ts)).as_text()
    assert "callback" in before and "callback" in after
    assert "callback" not in mine


def test_a_failed_adaptive_solve_is_raised_on_the_host_or_flagged():
    """max_steps too small to reach the last save time: ``throw`` (the default) raises one
    line after the call; ``throw=False``, and any solve inside vmap, gives ok = False
    and non-finite values from where it stopped; enough steps give ok = True."""
    ts = np.array([0.0, 1.0, 50.0])
    kw = dict(solver="tsit5", max_steps=4)
    with pytest.raises(RuntimeError, match="stopped before t = 50 .*max_steps = 4"):
        solve_iid(*_iid_case(), ts, lr=0.5, **kw)
    flagged = solve_iid(*_iid_case(), ts, lr=0.5, throw=False, **kw)
    assert not bool(flagged.ok) and not np.isfinite(flagged.eg[-1])
    with jax.enable_x64(True):
        ok = jax.vmap(lambda lr: solve_iid(*_iid_case(), ts, lr=lr, **kw).ok)(
            jnp.asarray([0.1, 0.5])
        )
    assert not np.any(ok)
    assert bool(solve_iid(*_iid_case(), ts, lr=0.5, solver="tsit5").ok)
