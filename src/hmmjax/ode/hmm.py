"""ODEs for online SGD on the hidden manifold, teacher on c (docs/theory.md 5.2, 5.3; Goldt et al.
2020).

One right-hand side serves the full per-eigenvalue ODE (5.2) and its spectral compression
(5.3). The state lives on P spectral points rho_j with weights w_j:

- full ("nodes = full"): the D eigenvalues of Omega = F F^T / N, w_j = 1 / D, and the
  state X_j = x_j / D (the per-eigenvalue densities divided by D);
- compressed: p nodes covering the spectrum, w_j = mean_tau l_j(rho_tau) (Lagrange basis
  l_j), X_j = mean_tau l_j(rho_tau) x_tau (``hmmjax.ode.spectral``).

Either way the means over tau of 5.2 are sums over j: Sigma = sum_j sigma_j,
Q = zeta W + mu1^2 Sigma, R = mu1 sum_j r_j. State: r (K, M, P), sigma (K, K, P), W (K, K),
v (K). Constants: rho_j, w_j, T, A, delta = D / N, the Gaussian constants mu1,
zeta = <f^2> - mu1^2, <f^2> of the manifold non-linearity f (mu0 = 0 required), and the
teacher term: the published average (source mu1 rho_j w_j E Ttilde) or the exact one
(mu1 rho_j E B_j with B_j = mean_tau l_j(rho_tau) beta_tau beta_tau^T; full:
B_j = beta_j beta_j^T / D).

With det_kj = Q_kk Q_jj - Q_kj^2, det_kn = Q_kk T_nn - R_kn^2 and I3 from C = [[Q,R],[R^T,T]]:

    a_k  = sum_{j != k} v_k v_j / det_kj (-Q_jj I3(k,k,j) + Q_kj I3(k,j,j))
           - v_k^2 / Q_kk I3(k,k,k)
           + sum_n v_k A_n / det_kn (T_nn I3(k,k,n) - R_kn I3(k,n,n))
    b_kj = v_k v_j / det_kj (-Q_kk I3(k,j,j) + Q_kj I3(k,k,j))   (j != k; b_kk = 0)
    e_kn = v_k A_n / det_kn (Q_kk I3(k,n,n) - R_kn I3(k,k,n))
    G = diag(a) + b,  d_j = zeta delta + mu1^2 rho_j,

    dr_j/dt     = (eta/delta) [d_j G r_j + mu1 rho_j E B_j]           (B_j = w_j Ttilde: published)
    dsigma_j/dt = (eta/delta) [d_j (G sigma_j + (G sigma_j)^T) + mu1 rho_j (E r_j^T + r_j E^T)]
                  + eta^2 w_j (zeta rho_j + mu1^2 rho_j^2 / delta) (v v^T o Phi)
    dW/dt       = eta (v o P + (v o P)^T) + eta^2 <f^2> (v v^T o Phi)
    dv/dt       = eta sum_c u_c I2(k,c)       (both layers only)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from hmmjax.core.activations import gaussian_constants
from hmmjax.core.integrals import G_NAMES
from hmmjax.core.schedules import AbstractSchedule, learning_rate
from hmmjax.ode.iid import Observables, field_moments
from hmmjax.ode.spectral import Compressed, state_from_arrays

__all__ = [
    "TEACHER_TERMS",
    "check_arrays",
    "check_physics",
    "HMMArgs",
    "HMMState",
    "ProbedObservables",
    "with_probe",
    "hmm_observables_probed",
    "OwnPart",
    "hmm_observables",
    "hmm_overlaps",
    "hmm_problem",
    "hmm_rhs",
    "problem_from",
]

TEACHER_TERMS = ("auto", "exact", "averaged")
_REQUIRED = ("rho", "sigma", "r", "W", "v", "A", "T", "Ttilde", "N", "D")


class HMMState(eqx.Module):
    """Evolving order parameters of the HMM ODE, aggregated on P spectral points."""

    r: Float[Array, "K M P"]
    sigma: Float[Array, "K K P"]
    W: Float[Array, "K K"]
    v: Float[Array, " K"]


class HMMArgs(eqx.Module):
    """Constants and hyper-parameters of the HMM ODE.

    ``rho``, ``weights``: the P spectral points and their weights w_j. ``B`` is None for the
    averaged (published) teacher term, else the exact aggregated B_j (M, M, P).
    """

    rho: Float[Array, " P"]
    weights: Float[Array, " P"]
    T: Float[Array, "M M"]
    A: Float[Array, " M"]
    Ttilde: Float[Array, "M M"]
    B: Float[Array, "M M P"] | None
    delta: Float[Array, ""]
    lr: Float[Array, ""]
    mu1: float
    zeta: float
    f2: float
    schedule: AbstractSchedule | None = None
    """eta(t) = lr * schedule(t) (``hmmjax.core.schedules``); None: eta = lr."""
    g: str = eqx.field(static=True, default="erf")
    both: bool = eqx.field(static=True, default=False)
    own: int | None = eqx.field(static=True, default=None)
    """With a probe (``with_probe``): the first ``own`` points are the run's, the others
    the probe's, which follow the run without feeding back. None: all are the run's."""


def _sum_nodes(x: Float[Array, "... P"]) -> Float[Array, "..."]:
    """Sum over the last axis (the spectral points), as a product with a vector of ones.

    Same value as ``jnp.sum(x, -1)`` to rounding, but XLA on CPU sums a long axis one
    element after another (float64 adds in order), while a matrix-vector product is
    vectorised: about 2x faster at D = 5000 (see benchmarks/RESULTS.md, ODE).
    """
    return x @ jnp.ones(x.shape[-1], x.dtype)


def _contract(G: Float[Array, "K J"], x: Float[Array, "J ... P"]) -> Float[Array, "K ... P"]:
    """sum_j G_kj x_j... (a small matrix times the per-point densities).

    Written as J broadcast products (J = K or M is a handful) rather than an einsum: XLA
    fuses these sums with the rest of the update into one pass over the (., ., P) arrays,
    whereas a dot with a contraction of size 2-10 writes its result to memory first.
    """
    return sum(G[:, j, None, None] * x[j][None] for j in range(G.shape[1]))


def hmm_overlaps(
    y: HMMState, args: HMMArgs, probe: bool = False
) -> tuple[Float[Array, "K K"], Float[Array, "K M"]]:
    """Q = zeta W + mu1^2 sum_j sigma_j,  R = mu1 sum_j r_j: over the run's own points
    (``probe``: over the probe's, ``with_probe``)."""
    part = slice(None) if args.own is None else slice(args.own, None) if probe else slice(args.own)
    Q = args.zeta * y.W + args.mu1**2 * _sum_nodes(y.sigma[..., part])
    R = args.mu1 * _sum_nodes(y.r[..., part])
    return Q, R


def _g_e_matrices(Q, R, T, v, A, I3):
    """G = diag(a) + b (K x K) and E (K x M) of docs/theory.md 5.2, from I3(k, ., .)."""
    K, M = R.shape
    ks = jnp.arange(K)
    ns = K + jnp.arange(M)
    Qd, Td = jnp.diagonal(Q), jnp.diagonal(T)
    I3_kkj = I3[ks, ks, :K]  # [k, j] = I3(k,k,j)
    I3_kjj = I3[:, ks, ks]  # [k, j] = I3(k,j,j)
    I3_kkk = I3[ks, ks, ks]
    I3_kkn = I3[ks, ks, K:]  # [k, n] = I3(k,k,n)
    I3_knn = I3[:, ns, ns]  # [k, n] = I3(k,n,n)
    off = 1.0 - jnp.eye(K, dtype=Q.dtype)
    # A zero unit (Q_kk = 0 or T_nn = 0: the inert padding of a sweep, v_k = 0 or A_n = 0)
    # enters every term below with a factor v_k or A_n; its denominators are set to 1 so
    # that the factor gives 0 rather than 0 / 0.
    real_k, real_n = Qd > 0, Td > 0
    Qd = jnp.where(real_k, Qd, 1.0)
    det_kj = jnp.where(
        (off > 0) & real_k[:, None] & real_k[None, :], Qd[:, None] * Qd[None, :] - Q**2, 1.0
    )
    det_kn = jnp.where(real_k[:, None] & real_n[None, :], Qd[:, None] * Td[None, :] - R**2, 1.0)
    vv = off * v[:, None] * v[None, :]
    vA = v[:, None] * A[None, :]
    # Each term ends in its division: XLA then keeps G and E as small materialised arrays
    # instead of fusing (and repeating) their construction into the per-point update.
    a = (
        jnp.sum(vv * (-Qd[None, :] * I3_kkj + Q * I3_kjj) / det_kj, axis=1)
        - v**2 * I3_kkk / Qd
        + jnp.sum(vA * (Td[None, :] * I3_kkn - R * I3_knn) / det_kn, axis=1)
    )
    b = vv * (-Qd[:, None] * I3_kjj + Q * I3_kkj) / det_kj
    E = vA * (Qd[:, None] * I3_knn - R * I3_kkn) / det_kn
    return jnp.diag(a) + b, E


def hmm_rhs(t: Float[Array, ""], y: HMMState, args: HMMArgs) -> HMMState:
    """d(r, sigma, W, v)/dt of docs/theory.md 5.2 / 5.3 (``t`` enters through the learning
    rate's schedule only).

    The cost is two passes over the (K, K + M, P) densities: the sums over points (Q, R),
    then one fused update of r and sigma; the integrals are (K+M)-sized.
    """
    K = y.v.shape[0]
    Q, R = hmm_overlaps(y, args)
    eta = learning_rate(args.lr, args.schedule, t)
    v, delta, rho, wts = y.v, args.delta, args.rho, args.weights
    mu1, zeta = args.mu1, args.zeta
    m = field_moments(Q, R, args.T, v, args.A, args.g)
    G, E = _g_e_matrices(Q, R, args.T, v, args.A, m.I3)
    vvPhi = v[:, None] * v[None, :] * m.Phi
    vP = v[:, None] * m.Pu[:, :K]
    d = zeta * delta + mu1**2 * rho  # (P,)

    if args.B is None:  # averaged teacher term mu1 rho_j w_j E Ttilde
        teacher = (E @ args.Ttilde)[:, :, None] * (rho * wts)
    else:  # exact teacher term mu1 rho_j E B_j
        teacher = _contract(E, args.B) * rho
    dr = (eta / delta) * (d * _contract(G, y.r) + mu1 * teacher)

    # H = d G sigma + mu1 rho E r^T, so that dsigma = (eta/delta) (H + H^T) + ...
    H = d * _contract(G, y.sigma) + mu1 * rho * _contract(E, jnp.swapaxes(y.r, 0, 1))
    quad = wts * (zeta * rho + mu1**2 * rho**2 / delta)  # (P,)
    dsigma = (eta / delta) * (H + jnp.swapaxes(H, 0, 1)) + eta**2 * vvPhi[:, :, None] * quad

    dW = eta * (vP + vP.T) + eta**2 * args.f2 * vvPhi
    dv = eta * m.I2u if args.both else jnp.zeros_like(v)
    return HMMState(r=dr, sigma=dsigma, W=dW, v=dv)


def hmm_observables(y: HMMState, args: HMMArgs) -> Observables:
    """eg (docs/theory.md 4) and Q, R, v of the current state."""
    Q, R = hmm_overlaps(y, args)
    m = field_moments(Q, R, args.T, y.v, args.A, args.g)
    return Observables(eg=m.eg, Q=Q, R=R, v=y.v)


# --- the node error, estimated along the run ----------------------------------------------


class ProbedObservables(NamedTuple):
    """``Observables`` and the eg of the probe's averages (``with_probe``)."""

    eg: Float[Array, ""]
    Q: Float[Array, "K K"]
    R: Float[Array, "K M"]
    v: Float[Array, " K"]
    eg_probe: Float[Array, ""]


def with_probe(
    y: HMMState, args: HMMArgs, probe: HMMState, probe_args: HMMArgs
) -> tuple[HMMState, HMMArgs]:
    """The run (``y``, ``args``) with a probe's points appended: the same state on a finer
    node set (``solve.probe_size``: p + max(8, p // 4) Chebyshev nodes). Only the run's own
    points make Q and R (``HMMArgs.own``); the probe's follow the same G, E, Phi without
    feeding back, in the same pass over the points (no second set of Gaussian integrals).

    Given the global order parameters the per-point equations are linear (docs/theory.md
    5.3), so the probe carries the averages the run's own trajectory has on the finer
    nodes: the eg they give (``hmm_observables_probed``) against the run's eg estimates the
    error of the run's nodes (``solve.node_error``)."""

    def cat(a, b):
        return None if a is None else jnp.concatenate([a, b], axis=-1)

    joined = HMMState(r=cat(y.r, probe.r), sigma=cat(y.sigma, probe.sigma), W=y.W, v=y.v)
    joined_args = dataclasses.replace(
        args, rho=cat(args.rho, probe_args.rho), weights=cat(args.weights, probe_args.weights),
        B=cat(args.B, probe_args.B), own=y.r.shape[-1],
    )  # fmt: skip
    return joined, joined_args


def hmm_observables_probed(y: HMMState, args: HMMArgs) -> ProbedObservables:
    """``hmm_observables`` of the run, and the eg of the probe's averages (same W, v)."""
    obs = hmm_observables(y, args)
    Q, R = hmm_overlaps(y, args, probe=True)
    eg = field_moments(Q, R, args.T, y.v, args.A, args.g).eg
    return ProbedObservables(*obs, eg_probe=eg)


class OwnPart(eqx.Module):
    """The run's own ``own`` points of a probed state (what sets the adaptive steps):
    a module, so that equal ones share a compilation."""

    own: int = eqx.field(static=True)

    def __call__(self, y: HMMState) -> HMMState:
        part = slice(self.own)
        return HMMState(r=y.r[..., part], sigma=y.sigma[..., part], W=y.W, v=y.v)


# --- building problems --------------------------------------------------------------------


def check_physics(f: str, g: str, teacher: str):
    """Raise ValueError unless the HMM ODE covers f (mu0 = 0), g (closed-form integrals)
    and the teacher-term option; returns the Gaussian constants of f."""
    if g not in G_NAMES:
        raise ValueError(f"the ODE needs g in {G_NAMES} (closed-form integrals); got {g!r}")
    if teacher not in TEACHER_TERMS:
        raise ValueError(f"teacher={teacher!r}; allowed: {', '.join(TEACHER_TERMS)}")
    consts = gaussian_constants(f)
    if abs(consts.mu0) > 1e-10:
        raise ValueError(
            f"the HMM ODE (docs/theory.md 5.2) assumes E f(u) = mu0 = 0; f={f!r} has "
            f"mu0={consts.mu0:.6g}. Use a centred non-linearity (sign, erf, tanh, linear)."
        )
    return consts


def problem_from(
    state: Compressed,
    *,
    v: Any,
    A: Any,
    delta: Any,
    lr: Any,
    f: str = "sign",
    g: str = "erf",
    both: bool = False,
    teacher: str = "auto",
    dtype: Any = None,
    schedule: AbstractSchedule | None = None,
) -> tuple[HMMState, HMMArgs]:
    """Initial state and constants of the HMM ODE from an aggregated state (full, from a
    state file, a sample or the Marchenko-Pastur law).

    ``teacher``: "exact" (needs ``state.B``), "averaged" (the published integrator), or
    "auto" = exact when B is known. ``dtype`` defaults to the default float type (float64
    when x64 is enabled). ``schedule``: eta(t) = lr * schedule(t) (None: constant).
    """
    consts = check_physics(f, g, teacher)
    if teacher == "exact" and state.B is None:
        raise ValueError(
            "teacher='exact' needs beta (M, D) in the state; this one has none: use "
            "teacher='averaged' (the published form)"
        )
    dtype = jnp.result_type(float) if dtype is None else dtype

    def arr(x):
        return jnp.asarray(x, dtype)

    use_B = state.B is not None and teacher != "averaged"
    y0 = HMMState(r=arr(state.r), sigma=arr(state.sigma), W=arr(state.W), v=arr(v))
    args = HMMArgs(
        rho=arr(state.nodes),
        weights=arr(state.weights),
        T=arr(state.T),
        A=arr(A),
        Ttilde=arr(state.Ttilde),
        B=arr(state.B) if use_B else None,
        delta=arr(delta),
        lr=arr(lr),
        mu1=consts.mu1,
        zeta=consts.zeta,
        f2=consts.f2,
        schedule=schedule,
        g=g,
        both=both,
    )
    return y0, args


def check_arrays(
    arrays: Mapping[str, Any], *, f: str = "sign", g: str = "erf", teacher: str = "auto"
) -> None:
    """Raise ValueError unless state-file ``arrays`` and the options f, g, teacher make an
    HMM ODE: required keys, closed-form g, mu0 = 0, beta for the exact teacher term."""
    missing = [k for k in _REQUIRED if k not in arrays]
    if missing:
        raise ValueError(f"HMM state is missing keys {missing}; required: {list(_REQUIRED)}")
    check_physics(f, g, teacher)
    if teacher == "exact" and arrays.get("beta") is None:
        raise ValueError("teacher='exact' needs beta (M, D) in the state; this one has none")


def hmm_problem(
    arrays: Mapping[str, Any],
    *,
    lr: float | Float[Array, ""],
    f: str = "sign",
    g: str = "erf",
    both: bool = False,
    teacher: str = "auto",
    nodes: Any = "full",
    dtype: Any = None,
) -> tuple[HMMState, HMMArgs]:
    """Initial state and constants from state-file arrays (a state file, ``hmmjax.io.load_state``).

    ``arrays`` holds rho (D), sigma (K,K,D), r (K,M,D), W (K,K), v (K), A (M), T (M,M),
    Ttilde (M,M), N, D and optionally beta (M,D). ``nodes``: "full" (every eigenvalue,
    docs/theory.md 5.2), an integer p or an array of nodes
    (docs/theory.md 5.3; see ``state_from_arrays``).
    """
    check_arrays(arrays, f=f, g=g, teacher=teacher)
    N, D = float(np.asarray(arrays["N"])), float(np.asarray(arrays["D"]))
    dtype = jnp.result_type(float) if dtype is None else dtype
    floats = {k: jnp.asarray(a, dtype) for k, a in arrays.items() if a is not None}
    state = state_from_arrays(floats, nodes)
    return problem_from(
        state, v=arrays["v"], A=arrays["A"], delta=D / N, lr=lr, f=f, g=g, both=both,
        teacher=teacher, dtype=dtype,
    )  # fmt: skip
