"""Spectral compression of the hidden-manifold ODE (docs/theory.md 5.3).

The per-eigenvalue state x(tau) of docs/theory.md 5.2 is carried by p aggregated states at nodes
rho_1 < ... < rho_p, through the Lagrange basis l_j (degree p - 1, l_j(rho_i) = delta_ij):

    w_j = mean_tau l_j(rho_tau),        X_j = mean_tau l_j(rho_tau) x_tau.

For a sample no eigenvectors are needed. With S = w F^T / sqrt(N), Omega = F F^T / N and
Z = [S; theta] ((K + M) x D),

    sigma_j = S l_j(Omega) S^T / D,  r_j = S l_j(Omega) theta^T / D,
    B_j = theta l_j(Omega) theta^T / D,

from the Chebyshev expansion l_j(rho) = sum_k c_kj T_k(y), y = (2 rho - lo - hi) / (hi - lo),
and the three-term recurrence T_{k+1} V = 2 A T_k V - T_{k-1} V on the K + M columns of
V = Z^T, A = (2 Omega - lo - hi) / (hi - lo), each step one product F (F^T v) / N.

N -> infinity: the eigenvalues of Omega follow the Marchenko-Pastur law with ratio
delta = D / N, and w_j = integral of l_j against it, by Gauss quadrature for that law
(exact for polynomials). All functions are pure and jit/vmap-able except the input checks
(``check_cover``, ``compress_sample`` with an integer p), which need concrete values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from hmmjax.data.features import AbstractFeatures, as_features
from hmmjax.observables.order_params import gram, spectral_arrays, symmetric_eigh

__all__ = [
    "Compressed",
    "aggregate",
    "chebyshev_coefficients",
    "chebyshev_nodes",
    "check_cover",
    "check_nodes",
    "full_state",
    "sample_state",
    "state_from_arrays",
    "compress_sample",
    "lagrange_values",
    "mp_density",
    "mp_gauss",
    "mp_initial_state",
    "one_point",
    "one_point_state",
    "point_initial_state",
    "mp_moment_weights",
    "mp_node_weights",
    "mp_nodes",
    "mp_support",
    "node_matrices",
    "node_weights",
    "node_weights_from_F",
    "sample_eigenvalues",
    "chebyshev_moments",
    "moment_matrices",
    "sample_moments",
    "spectrum_nodes",
]


def _concrete(x) -> float | None:
    """x as a Python float, or None while tracing (checks are skipped under jit/vmap)."""
    try:
        return float(x)
    except jax.errors.ConcretizationTypeError:
        return None


# --- nodes and the Lagrange basis -------------------------------------------------------


def chebyshev_nodes(p: int, lo: ArrayLike, hi: ArrayLike) -> Float[Array, " p"]:
    """p Chebyshev points of the second kind (Chebyshev-Lobatto) on [lo, hi], ascending:

        rho_j = (lo + hi) / 2 - (hi - lo) / 2 cos(pi j / (p - 1))
              = lo cos^2(t_j) + hi sin^2(t_j),   t_j = pi j / (2 (p - 1)),   j = 0 .. p - 1.

    Second kind because lo and hi are nodes: the extreme eigenvalues (and the atom at 0 of
    the Marchenko-Pastur law when delta > 1) are interpolated, not extrapolated; the node
    sets of p and 2p - 1 are nested; and the Chebyshev coefficients of the Lagrange basis
    are a well-conditioned DCT-I.
    """
    if p < 2:
        raise ValueError(f"nodes p = {p}: need p >= 2")
    clo, chi = _concrete(lo), _concrete(hi)
    if clo is not None and chi is not None and not clo < chi:
        raise ValueError(f"nodes lo = {clo:g}, hi = {chi:g}: need lo < hi")
    # The trigonometric factors are NumPy constants: no cos inside jit, which XLA may round
    # differently in different fusions (then x - rho_j at a node is 0 in one fusion and
    # 1e-16 in another, and the barycentric formula breaks); the end nodes are exact.
    t = np.pi * np.arange(p) / (2 * (p - 1))
    s2, c2 = np.sin(t) ** 2, np.cos(t) ** 2
    s2[-1], c2[-1] = 1.0, 0.0
    lo, hi = jnp.asarray(lo, float), jnp.asarray(hi, float)
    dtype = jnp.result_type(lo, hi)
    return lo * jnp.asarray(c2, dtype) + hi * jnp.asarray(s2, dtype)


def spectrum_nodes(p: int, rho: ArrayLike) -> Float[Array, " p"]:
    """p Chebyshev nodes on [min rho, max rho] (``chebyshev_nodes``). A spectrum of one
    point (D = 1, or all eigenvalues equal) gets a small interval around it (1e-3 of its
    scale, not below 0), so that the nodes are distinct; the ODE then interpolates at a
    point inside their interval."""
    rho = jnp.asarray(rho)
    lo, hi = jnp.min(rho), jnp.max(rho)
    clo, chi = _concrete(lo), _concrete(hi)
    if (
        clo is not None
        and chi is not None
        and not chi - clo > 1e-12 * max(abs(clo), abs(chi), 1e-300)
    ):
        half = 1e-3 * max(abs(clo), abs(chi), 1.0)
        lo, hi = (lo - half if clo - half >= 0 else lo), hi + half  # eigenvalues stay >= 0
    return chebyshev_nodes(p, lo, hi)


def _barycentric_weights(nodes: Float[Array, " p"]) -> Float[Array, " p"]:
    """lambda_j = 1 / prod_{k != j} (rho_j - rho_k), up to a common factor (summed in logs,
    so that p ~ 128 nodes on a short interval neither overflow nor underflow)."""
    d = nodes[:, None] - nodes[None, :]
    d = jnp.where(jnp.eye(nodes.shape[0], dtype=bool), 1.0, d)
    log_abs = jnp.sum(jnp.log(jnp.abs(d)), axis=1)
    return jnp.prod(jnp.sign(d), axis=1) * jnp.exp(jnp.min(log_abs) - log_abs)


@jax.jit
def lagrange_values(nodes: Float[Array, " p"], x: Float[ArrayLike, "*n"]) -> Float[Array, " p *n"]:
    """l_j(x_i) for distinct nodes, by the barycentric formula (second form)

        l_j(x) = (lambda_j / (x - rho_j)) / sum_k (lambda_k / (x - rho_k)),

    exactly 1 / 0 at the nodes, and sum_j l_j(x) = 1 to rounding for every x.
    """
    x = jnp.asarray(x)
    d = x[None] - nodes.reshape((-1,) + (1,) * x.ndim)
    hit = d == 0
    t = _barycentric_weights(nodes).reshape((-1,) + (1,) * x.ndim) / jnp.where(hit, 1.0, d)
    return jnp.where(jnp.any(hit, axis=0), hit.astype(t.dtype), t / jnp.sum(t, axis=0))


@jax.jit
def chebyshev_coefficients(nodes: Float[Array, " p"]) -> Float[Array, "p p"]:
    """c[k, j]: l_j(rho) = sum_k c[k, j] T_k(y), y = (2 rho - lo - hi) / (hi - lo), with
    [lo, hi] = [min, max] of the nodes. l_j has degree p - 1, so c = V^{-1} exactly, with
    V[i, k] = T_k(y(rho_i)). For Chebyshev nodes V is a scaled DCT-I (condition number
    ~ sqrt 2); for other nodes its conditioning is that of their Lagrange basis.
    """
    p = nodes.shape[0]
    lo, hi = jnp.min(nodes), jnp.max(nodes)
    y = jnp.clip((2 * nodes - lo - hi) / (hi - lo), -1.0, 1.0)
    V = jnp.cos(jnp.arange(p)[None, :] * jnp.arccos(y)[:, None])
    return jnp.linalg.solve(V, jnp.eye(p, dtype=V.dtype))


def check_nodes(nodes: Any, auto: bool = True) -> None:
    """Validate a ``nodes`` option: "full", "auto", an integer p >= 2 or an array of nodes.
    With ``auto=False`` "auto" is refused: a state is built for resolved nodes only."""
    if isinstance(nodes, str):
        if nodes not in ("full", "auto"):
            raise ValueError(f"nodes = {nodes!r}: allowed: full, auto or an integer p >= 2")
        if nodes == "auto" and not auto:
            raise ValueError(f"nodes = {nodes!r}: resolve 'auto' first (hmmjax.ode.select_nodes)")
    elif isinstance(nodes, int | np.integer):
        if nodes < 2:
            raise ValueError(f"nodes = {nodes}: need p >= 2 (or full, auto)")
    elif np.ndim(nodes) != 1 or np.size(nodes) < 2:
        raise ValueError(f"nodes: an array of nodes must be 1-d with >= 2 entries; got {nodes!r}")


# --- aggregation over a sample of eigenvalues ----------------------------------------------


def one_point(rho: ArrayLike) -> bool:
    """Whether the spectrum ``rho`` (concrete) is a single point: all eigenvalues equal up
    to 1e-12 of their scale (orthogonal features, ``hmmjax.data.features``). Its aggregated
    state on that one point is exact (``state_from_arrays``, ``one_point_state``)."""
    r = np.asarray(rho)
    return bool(r.max() - r.min() <= 1e-12 * max(abs(r.max()), abs(r.min()), 1e-300))


def check_cover(nodes: ArrayLike, rho: ArrayLike, rtol: float = 1e-6) -> None:
    """Raise ValueError unless [min nodes, max nodes] covers [min rho, max rho] (up to a
    slack of rtol times the scale of rho). Needs concrete arrays (call it outside jit)."""
    nodes, rho = np.asarray(nodes), np.asarray(rho)
    lo, hi, rmin, rmax = nodes.min(), nodes.max(), rho.min(), rho.max()
    slack = rtol * max(rmax - rmin, abs(rmin), abs(rmax))
    if lo > rmin + slack or hi < rmax - slack:
        raise ValueError(
            f"nodes cover [{lo:.6g}, {hi:.6g}] but the eigenvalues span [{rmin:.6g}, "
            f"{rmax:.6g}]: the nodes must cover the spectrum, e.g. "
            f"chebyshev_nodes(p, {rmin:.6g}, {rmax:.6g})"
        )


@jax.jit
def node_weights(nodes: Float[Array, " p"], rho: Float[Array, " D"]) -> Float[Array, " p"]:
    """w_j = mean_tau l_j(rho_tau)."""
    return jnp.mean(lagrange_values(nodes, rho), axis=-1)


@jax.jit
def aggregate(
    nodes: Float[Array, " p"], rho: Float[Array, " D"], x: Float[Array, "*batch D"]
) -> Float[Array, "*batch p"]:
    """X_j = mean_tau l_j(rho_tau) x_tau for per-eigenvalue arrays x (eigenvalues last)."""
    return jnp.einsum("jt,...t->...j", lagrange_values(nodes, rho), x) / rho.shape[-1]


def sample_eigenvalues(F: Float[Array, "D N"] | AbstractFeatures) -> Float[Array, " D"]:
    """Eigenvalues (ascending) of Omega = F F^T / N, without eigenvectors (LAPACK syevd
    through ``symmetric_eigh``). When D > N, from the N x N Gram matrix F^T F / N, padded
    with D - N exact zeros. Orthogonal features (``AbstractFeatures.orthogonal``): D ones."""
    if isinstance(F, AbstractFeatures):
        if F.orthogonal:
            return jnp.ones(F.shape[0], F.dtype)
        F = F.dense()
    D, N = F.shape
    if D <= N:
        return symmetric_eigh(gram(F), vectors=False)[0]
    rho = symmetric_eigh(gram(F, transpose=True), vectors=False)[0]
    return jnp.concatenate([jnp.zeros(D - N, rho.dtype), rho])


def node_weights_from_F(
    nodes: Float[Array, " p"], F: Float[Array, "D N"] | AbstractFeatures
) -> Float[Array, " p"]:
    """w_j = mean_tau l_j(rho_tau) over the eigenvalues of Omega = F F^T / N."""
    return node_weights(nodes, sample_eigenvalues(F))


@partial(jax.jit, static_argnames="n")
def chebyshev_moments(
    F: Float[Array, "D N"] | AbstractFeatures,
    Z: Float[Array, "n D"],
    lo: ArrayLike,
    hi: ArrayLike,
    n: int,
) -> Float[Array, "n n n"]:
    """mu_k = V^T T_k(A) V / D for k < n (V = Z^T, A = (2 Omega - lo - hi) / (hi - lo),
    Omega = F F^T / N never formed), by the recurrence T_{k+1} V = 2 A T_k V - T_{k-1} V
    (n - 2 scanned steps, two products with F each). The moments of n nodes serve every
    node set on [lo, hi] of at most n nodes (``moment_matrices``)."""
    F = as_features(F)
    D = F.shape[0]
    V = Z.T

    def A(U):
        return (2 * F.gram(U) - (lo + hi) * U) / (hi - lo)

    def step(carry, _):
        prev, cur = carry
        nxt = 2 * A(cur) - prev
        return (cur, nxt), V.T @ nxt / D

    V1 = A(V)
    _, rest = jax.lax.scan(step, (V, V1), None, length=n - 2)
    return jnp.concatenate([jnp.stack([V.T @ V / D, V.T @ V1 / D]), rest])


def moment_matrices(nodes: Float[Array, " p"], mu: Float[Array, "m n n"]) -> Float[Array, "n n p"]:
    """Z l_j(Omega) Z^T / D for every node j from Chebyshev moments (``chebyshev_moments``
    on [min nodes, max nodes], at least p of them): sum_k c[k, j] mu_k."""
    p = nodes.shape[0]
    return jnp.einsum("kj,kab->abj", chebyshev_coefficients(nodes), mu[:p])


@jax.jit
def node_matrices(
    nodes: Float[Array, " p"], F: Float[Array, "D N"] | AbstractFeatures, Z: Float[Array, "n D"]
) -> Float[Array, "n n p"]:
    """Z l_j(Omega) Z^T / D for every node j, Omega = F F^T / N never formed: the
    Chebyshev moments of p nodes (``chebyshev_moments``), then ``moment_matrices``.
    Exact up to rounding when the nodes cover the spectrum of Omega (then |T_k(A)| <= 1)
    and are Chebyshev-like: against the eigen-decomposition, relative errors 2e-14
    (p = 16) to 6e-12 (p = 128) at D = 150.
    """
    mu = chebyshev_moments(F, Z, jnp.min(nodes), jnp.max(nodes), nodes.shape[0])
    return moment_matrices(nodes, mu)


def sample_moments(
    w: Float[Array, "K N"],
    F: Float[Array, "D N"] | AbstractFeatures,
    theta: Float[Array, "M D"],
    n: int,
    rho: Float[Array, " D"],
) -> Float[Array, "n m m"]:
    """The Chebyshev moments (``chebyshev_moments``) of the student's and the teacher's
    projections on the spectrum's interval (that of ``spectrum_nodes``): give them to
    ``compress_sample`` for any p <= n nodes, e.g. a run and its probe, to compute the
    products with F once."""
    F = as_features(F)
    N = F.shape[1]
    ends = spectrum_nodes(2, rho)
    S = F.apply(w) / math.sqrt(N)
    return chebyshev_moments(F, jnp.concatenate([S, theta]), ends[0], ends[-1], n)


class Compressed(NamedTuple):
    """Aggregated (p-node) state of docs/theory.md 5.3, in the names of the state files.

    sigma_j = S l_j(Omega) S^T / D, r_j = S l_j(Omega) theta^T / D, B_j = theta l_j(Omega)
    theta^T / D (the exact teacher term), W = w w^T / N, T = theta theta^T / D,
    Ttilde = theta Omega theta^T / D. Sigma = sum_j sigma_j, R = mu1 sum_j r_j,
    Ttilde = sum_j rho_j B_j (when p >= 2).

    The full per-eigenvalue state of docs/theory.md 5.2 has the same form (``full_state``): nodes
    at the D eigenvalues, weights 1/D, sigma(tau) / D, r(tau) / D, B = beta beta^T / D.
    B is None where the teacher's projections beta are unknown (the averaged term only).
    """

    nodes: Float[Array, " p"]
    weights: Float[Array, " p"]
    sigma: Float[Array, "K K p"]
    r: Float[Array, "K M p"]
    B: Float[Array, "M M p"] | None
    W: Float[Array, "K K"]
    T: Float[Array, "M M"]
    Ttilde: Float[Array, "M M"]


def compress_sample(
    w: Float[Array, "K N"],
    F: Float[Array, "D N"] | AbstractFeatures,
    theta: Float[Array, "M D"],
    nodes: int | Float[Array, " p"] = 32,
    rho: Float[Array, " D"] | None = None,
    moments: Float[Array, "m n n"] | None = None,
) -> Compressed:
    """The aggregated state of student w, features F and teacher theta (docs/theory.md 5.3).

    ``nodes``: a number p of Chebyshev nodes on [min rho, max rho], or the nodes themselves
    (checked to cover the spectrum). ``rho``: the eigenvalues of Omega if already known
    (else computed by eigvalsh). ``moments``: ``sample_moments`` of the same sample with
    at least p moments (integer ``nodes`` only), so that several node sets share the
    products with F. Eager: call it outside jit.

    A spectrum of one point (``one_point``: Omega = c I, e.g. orthogonal features, where
    c = 1, or D = 1): the state on that point is exact, so the state has that one point
    whatever ``nodes`` asks (``one_point_state``).
    """
    F = as_features(F)
    if moments is not None and not isinstance(nodes, int | np.integer):
        raise ValueError("moments serve an integer number of nodes on the spectrum only")
    rho = sample_eigenvalues(F) if rho is None else jnp.asarray(rho)
    if one_point(rho):
        return one_point_state(w, F, theta, rho)
    if isinstance(nodes, int | np.integer):
        # the p moments on the spectrum's interval serve p nodes (the nodes' own interval)
        if moments is None:
            moments = sample_moments(w, F, theta, int(nodes), rho)
        nodes = spectrum_nodes(int(nodes), rho)
    else:  # given nodes: moments on their interval
        nodes = jnp.asarray(nodes)
        check_cover(nodes, rho)
        Z = jnp.concatenate([F.apply(w) / math.sqrt(F.shape[1]), theta])
        moments = chebyshev_moments(F, Z, jnp.min(nodes), jnp.max(nodes), nodes.shape[0])
    return _compress(w, F, theta, nodes, rho, moments)


@eqx.filter_jit
def _compress(w, F: AbstractFeatures, theta, nodes, rho, moments) -> Compressed:
    """The arithmetic of ``compress_sample`` after the products with F (``moments``) as one
    compiled program: the node matrices, the weights and the small overlaps."""
    D, N = F.shape
    K = w.shape[0]
    G = moment_matrices(nodes, moments)
    U = F.lift(theta.T)  # (M, N): theta F
    return Compressed(
        nodes=nodes,
        weights=node_weights(nodes, rho),
        sigma=G[:K, :K],
        r=G[:K, K:],
        B=G[K:, K:],
        W=w @ w.T / N,
        T=theta @ theta.T / D,
        Ttilde=U @ U.T / (N * D),
    )


def one_point_state(
    w: Float[Array, "K N"],
    F: Float[Array, "D N"] | AbstractFeatures,
    theta: Float[Array, "M D"],
    rho: Float[Array, " D"] | None = None,
) -> Compressed:
    """The exact state of a sample whose spectrum is one point c (Omega = F F^T / N = c I_D:
    orthogonal features, c = 1, or D = 1): the spectral point c of weight 1,
    sigma = S S^T / D, r = S theta^T / D, B = theta theta^T / D (S = w F^T / sqrt(N)),
    Ttilde = c T. ``rho``: the eigenvalues of Omega if already known (``one_point`` must
    hold for them)."""
    F = as_features(F)
    rho = sample_eigenvalues(F) if rho is None else jnp.asarray(rho)
    if not one_point(rho):
        raise ValueError(
            f"{type(F).__name__}: F F^T / N is not a multiple of the identity (eigenvalues "
            f"in [{float(jnp.min(rho)):.6g}, {float(jnp.max(rho)):.6g}])"
        )
    D, N = F.shape
    Z = jnp.concatenate([F.apply(w) / math.sqrt(N), theta])
    G = (Z @ Z.T / D)[..., None]
    K = w.shape[0]
    T = theta @ theta.T / D
    c = jnp.mean(rho).astype(w.dtype)
    return Compressed(
        nodes=c[None],
        weights=jnp.ones(1, w.dtype),
        sigma=G[:K, :K],
        r=G[:K, K:],
        B=G[K:, K:],
        W=w @ w.T / N,
        T=T,
        Ttilde=c * T,
    )


def point_initial_state(K: int, M: int, q0: float) -> Compressed:
    """Initial state as N -> infinity on orthogonal features (Omega = I, the spectrum a
    single point 1) for w with i.i.d. N(0, q0) entries independent of theta: the one-point
    form of ``mp_initial_state``, sigma = q0 I_K, r = 0, B = W / q0 = T = Ttilde = I."""
    eye_k, eye_m = jnp.eye(K), jnp.eye(M)
    return Compressed(
        nodes=jnp.ones(1),
        weights=jnp.ones(1),
        sigma=q0 * eye_k[..., None],
        r=jnp.zeros((K, M, 1)),
        B=eye_m[..., None],
        W=q0 * eye_k,
        T=eye_m,
        Ttilde=eye_m,
    )


def full_state(arrays: Mapping[str, Any]) -> Compressed:
    """The full per-eigenvalue state of state-file arrays in aggregated form: points rho,
    weights 1/D, sigma / D, r / D, B = beta beta^T / D (None without beta)."""
    rho = jnp.asarray(arrays["rho"])
    D = rho.shape[0]
    beta = arrays.get("beta")
    B = None if beta is None else jnp.einsum("nt,mt->nmt", beta, beta) / D
    return Compressed(
        nodes=rho,
        weights=jnp.full(D, 1.0 / D, rho.dtype),
        sigma=jnp.asarray(arrays["sigma"]) / D,
        r=jnp.asarray(arrays["r"]) / D,
        B=B,
        W=jnp.asarray(arrays["W"]),
        T=jnp.asarray(arrays["T"]),
        Ttilde=jnp.asarray(arrays["Ttilde"]),
    )


def state_from_arrays(arrays: Mapping[str, Any], nodes: Any = "full") -> Compressed:
    """The aggregated state of state-file arrays (rho, sigma (K,K,D), r (K,M,D), ...):
    ``nodes = "full"`` keeps every eigenvalue; an integer p puts p Chebyshev nodes on
    [min rho, max rho]; an array gives the nodes (checked to cover the spectrum). A
    spectrum of one point (``one_point``) gives the exact state on that point, whatever
    ``nodes`` other than "full" asks."""
    check_nodes(nodes, auto=False)
    if isinstance(nodes, str):  # "full"
        return full_state(arrays)
    rho = jnp.asarray(arrays["rho"])
    if one_point(rho):
        full = full_state(arrays)
        return full._replace(
            nodes=jnp.mean(rho, keepdims=True),
            weights=jnp.ones(1, rho.dtype),
            sigma=jnp.sum(full.sigma, -1, keepdims=True),
            r=jnp.sum(full.r, -1, keepdims=True),
            B=None if full.B is None else jnp.sum(full.B, -1, keepdims=True),
        )
    if isinstance(nodes, int | np.integer):
        nodes = spectrum_nodes(int(nodes), rho)
    else:
        nodes = jnp.asarray(nodes, rho.dtype)
        check_cover(nodes, rho)
    beta = arrays.get("beta")
    B = None
    if beta is not None:
        beta = jnp.asarray(beta)
        B = aggregate(nodes, rho, jnp.einsum("nt,mt->nmt", beta, beta))
    return Compressed(
        nodes=nodes,
        weights=node_weights(nodes, rho),
        sigma=aggregate(nodes, rho, jnp.asarray(arrays["sigma"])),
        r=aggregate(nodes, rho, jnp.asarray(arrays["r"])),
        B=B,
        W=jnp.asarray(arrays["W"]),
        T=jnp.asarray(arrays["T"]),
        Ttilde=jnp.asarray(arrays["Ttilde"]),
    )


def sample_state(
    w: Float[Array, "K N"],
    F: Float[Array, "D N"] | AbstractFeatures,
    theta: Float[Array, "M D"],
    nodes: int | str | Float[Array, " p"] = 32,
    rho: Float[Array, " D"] | None = None,
    moments: Float[Array, "m n n"] | None = None,
) -> Compressed:
    """The aggregated state of a sample: ``nodes = "full"`` by the eigen-decomposition of
    Omega (docs/theory.md 5.2, every eigenvalue), else ``compress_sample``
    (docs/theory.md 5.3: eigenvalues only, no eigenvectors; ``moments`` as there)."""
    check_nodes(nodes, auto=False)
    if isinstance(nodes, str):  # "full"
        return full_state(spectral_arrays(w, F, theta))
    return compress_sample(w, F, theta, nodes, rho, moments)


# --- the Marchenko-Pastur limit ---------------------------------------------------------


def _check_delta(delta) -> None:
    d = _concrete(delta)
    if d is not None and not d > 0:
        raise ValueError(f"delta = {d:g}: need delta > 0 (delta = D / N)")


def mp_support(delta: ArrayLike) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """[lo, hi] that nodes must cover: [(1 - sqrt delta)^2, (1 + sqrt delta)^2], with lo = 0
    when delta > 1 (the atom of mass 1 - 1/delta at 0)."""
    _check_delta(delta)
    s = jnp.sqrt(jnp.asarray(delta, float))
    return jnp.where(s > 1, 0.0, (1 - s) ** 2), (1 + s) ** 2


def mp_nodes(p: int, delta: ArrayLike) -> Float[Array, " p"]:
    """p Chebyshev nodes on the support of the Marchenko-Pastur law (``mp_support``)."""
    return chebyshev_nodes(p, *mp_support(delta))


def mp_density(x: Float[ArrayLike, "*n"], delta: ArrayLike) -> Float[Array, "*n"]:
    """Continuous part sqrt((b - x)(x - a)) / (2 pi delta x) on [a, b] (0 outside)."""
    x, s = jnp.asarray(x, float), jnp.sqrt(jnp.asarray(delta, float))
    a, b = (1 - s) ** 2, (1 + s) ** 2
    inside = (x > a) & (x < b)
    xs = jnp.where(inside, x, (a + b) / 2)
    return jnp.where(inside, jnp.sqrt((b - xs) * (xs - a)) / (2 * jnp.pi * s**2 * xs), 0.0)


def mp_gauss(delta: ArrayLike, n: int) -> tuple[Float[Array, " n"], Float[Array, " n"]]:
    """n-point Gauss quadrature (points, weights) for the Marchenko-Pastur law with ratio
    delta, atom included: exact for polynomials of degree <= 2n - 1.

    Golub-Welsch on the Jacobi matrix of the law (the free Poisson law with rate 1/delta and
    jump delta): diagonal (1, 1 + delta, 1 + delta, ...), off-diagonal sqrt(delta).
    """
    _check_delta(delta)
    return _mp_gauss(jnp.asarray(delta, float), n)


@partial(jax.jit, static_argnums=1)
def _mp_gauss(delta, n: int):
    diag = jnp.full(n, 1 + delta).at[0].set(1.0)
    off = jnp.full(n - 1, jnp.sqrt(delta))
    x, vecs = jnp.linalg.eigh(jnp.diag(diag) + jnp.diag(off, 1) + jnp.diag(off, -1))
    return x, vecs[0] ** 2


def _check_mp_cover(nodes, delta, rtol: float = 1e-6) -> None:
    lo, hi = (_concrete(v) for v in mp_support(delta))
    nlo, nhi = _concrete(jnp.min(nodes)), _concrete(jnp.max(nodes))
    if None in (lo, hi, nlo, nhi):
        return
    if nlo > lo + rtol * hi or nhi < hi * (1 - rtol):
        raise ValueError(
            f"nodes cover [{nlo:.6g}, {nhi:.6g}] but the Marchenko-Pastur law with "
            f"delta = {_concrete(delta):g} lives on [{lo:.6g}, {hi:.6g}]: use mp_nodes(p, delta)"
        )


def mp_moment_weights(
    nodes: Float[Array, " p"], delta: ArrayLike, power: int = 0, n_quad: int | None = None
) -> Float[Array, " p"]:
    """integral of l_j(rho) rho^power against the Marchenko-Pastur law with ratio delta.

    Gauss quadrature with ``n_quad`` points (default p + power): exact (to rounding) when
    2 n_quad - 1 >= p - 1 + power.
    """
    p = nodes.shape[0]
    n_quad = p + power if n_quad is None else n_quad
    if 2 * n_quad - 1 < p - 1 + power:
        raise ValueError(
            f"n_quad = {n_quad}: need n_quad >= {(p + power + 1) // 2} for p = {p} nodes "
            f"and power = {power}"
        )
    _check_mp_cover(nodes, delta)
    x, wq = mp_gauss(delta, n_quad)
    return lagrange_values(nodes, x) @ (wq * x**power)


def mp_node_weights(
    nodes: Float[Array, " p"], delta: ArrayLike, n_quad: int | None = None
) -> Float[Array, " p"]:
    """w_j = integral of l_j against the Marchenko-Pastur law (the N -> infinity weights)."""
    return mp_moment_weights(nodes, delta, 0, n_quad)


def mp_initial_state(
    nodes: Float[Array, " p"],
    delta: ArrayLike,
    K: int,
    M: int,
    q0: float,
    mu1: float,
    R0: Float[ArrayLike, "K M"] | None = None,
    profile: Callable[[Array], Array] | None = None,
    n_quad: int | None = None,
) -> Compressed:
    """Aggregated initial state as N -> infinity for w with i.i.d. N(0, q0) entries,
    independent of a teacher theta with i.i.d. N(0, 1) entries (docs/theory.md 5.3):

        sigma_j = q0 I_K int l_j rho,  r_j = 0,  W = q0 I_K,  T = I_M,
        B_j = w_j I_M,  Ttilde = I_M  (int rho = 1).

    An initial overlap R0 (K, M) is carried with the rho-profile r(rho) = (R0 / mu1)
    profile(rho) / int profile (default profile(rho) = rho, that of a student with a
    component along F^T theta), so that r_j = int l_j r and R = mu1 sum_j r_j = R0. Only r
    changes: sigma, W keep the values of the independent part.
    """
    p = nodes.shape[0]
    n_quad = p + 2 if n_quad is None else n_quad
    weights = mp_node_weights(nodes, delta, n_quad)
    first = mp_moment_weights(nodes, delta, 1, n_quad)
    eye_k, eye_m = jnp.eye(K), jnp.eye(M)
    if R0 is None:
        r = jnp.zeros((K, M, p))
    else:
        x, wq = mp_gauss(delta, n_quad)
        prof = wq * (x if profile is None else profile(x))
        r = (jnp.asarray(R0, float) / mu1)[..., None] * (lagrange_values(nodes, x) @ prof)
        r = r / jnp.sum(prof)
    return Compressed(
        nodes=nodes,
        weights=weights,
        sigma=q0 * eye_k[..., None] * first,
        r=r,
        B=eye_m[..., None] * weights,
        W=q0 * eye_k,
        T=eye_m,
        Ttilde=eye_m,
    )
