"""Gaussian integrals of the ODEs (docs/theory.md section 4), as whole tensors.

The local fields (lambda_1..lambda_K, nu_1..nu_M) are jointly Gaussian with covariance

    C = [[Q, R], [R^T, T]]      (n x n, n = K + M; students first, then teachers).

Indices a, b, c, d run over all n fields:

    I2(a,b)     = E[g(a) g(b)]
    I3(a,b,c)   = E[g'(a) b g(c)]
    I4(a,b,c,d) = E[g'(a) g'(b) g(c) g(d)]
    J2(a,b)     = E[g'(a) g'(b)]

Linear g: I2 = C_ab, I3 = C_bc, I4 = C_cd, J2 = 1.

erf g (g(x) = erf(x / sqrt 2)), with c_a = 1 + C_aa:

    I2 = (2/pi) arcsin( C_ab / sqrt(c_a c_b) )
    J2 = (2/pi) / sqrt(L4),                 L4 = c_a c_b - C_ab^2
    I3 = (2/pi) / sqrt(L3) (C_bc c_a - C_ab C_ac) / c_a,   L3 = c_a c_c - C_ac^2
    I4 = (4/pi^2) / sqrt(L4) arcsin( L0 / sqrt(L1 L2) ),
         L0 = L4 C_cd - C_bc C_bd c_a - C_ac C_ad c_b + C_ab C_ac C_bd + C_ab C_ad C_bc
         L1 = L4 c_c - C_bc^2 c_a - C_ac^2 c_b + 2 C_ab C_ac C_bc     (L2: c -> d)

Every function returns the full tensor over all index tuples, computed by broadcasting
(no loops over indices); tensor axis i is the i-th argument of the integral. ``i3`` and
``i4`` take ``rows=K`` to compute only the student rows the ODEs use (a < K, and b < K
for I4): K n^2 and K^2 n^2 entries instead of n^3 and n^4. They are
pure jnp functions: they jit, vmap and keep the dtype of C (float32 or float64).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["G_NAMES", "covariance", "i2", "j2", "i3", "i4", "eg_from_covariance", "eg"]


G_NAMES: tuple[str, ...] = ("erf", "linear")


"""Activations g with closed-form Gaussian integrals."""


def _check(g: str) -> None:
    if g not in G_NAMES:
        raise ValueError(
            f"no closed-form Gaussian integrals for g={g!r}; allowed: {', '.join(G_NAMES)}"
        )


def covariance(
    Q: Float[Array, "K K"], R: Float[Array, "K M"], T: Float[Array, "M M"]
) -> Float[Array, "n n"]:
    """C = [[Q, R], [R^T, T]] ((K+M) x (K+M); students first, then teachers)."""
    return jnp.block([[Q, R], [R.T, T]])


def i2(C: Float[Array, "n n"], g: str) -> Float[Array, "n n"]:
    """I2(a,b) = E[g(a) g(b)]."""
    _check(g)
    if g == "linear":
        return C
    c = 1.0 + jnp.diagonal(C)
    # |ratio| <= 1 exactly; rounding can push it past 1 at huge weights (Q ~ 1e11, a run
    # far into divergence), where arcsin would give NaN instead of its limit
    return (2.0 / math.pi) * jnp.arcsin(jnp.clip(C / jnp.sqrt(c[:, None] * c[None, :]), -1, 1))


def j2(C: Float[Array, "n n"], g: str) -> Float[Array, "n n"]:
    """J2(a,b) = E[g'(a) g'(b)]."""
    _check(g)
    if g == "linear":
        return jnp.ones_like(C)
    c = 1.0 + jnp.diagonal(C)
    return (2.0 / math.pi) / jnp.sqrt(c[:, None] * c[None, :] - C**2)


def i3(C: Float[Array, "n n"], g: str, *, rows: int | None = None) -> Float[Array, "r n n"]:
    """I3(a,b,c) = E[g'(a) b g(c)], axes (a, b, c).

    ``rows``: compute only a < rows (r = rows; default all n). The ODEs need the student
    rows a < K only.
    """
    _check(g)
    n = C.shape[-1]
    k = n if rows is None else rows
    if g == "linear":
        return jnp.broadcast_to(C[None, :, :], (k, n, n))
    c = 1.0 + jnp.diagonal(C)
    Ca, ca = C[:k], c[:k]  # rows a: C_a., c_a
    L3 = ca[:, None] * c[None, :] - Ca**2  # (a, c)
    num = C[None, :, :] * ca[:, None, None] - Ca[:, :, None] * Ca[:, None, :]  # (a, b, c)
    return (2.0 / math.pi) * num / (ca[:, None, None] * jnp.sqrt(L3)[:, None, :])


def i4(C: Float[Array, "n n"], g: str, *, rows: int | None = None) -> Float[Array, "r r n n"]:
    """I4(a,b,c,d) = E[g'(a) g'(b) g(c) g(d)], axes (a, b, c, d).

    ``rows``: compute only a, b < rows (r = rows; default all n). The ODEs need the
    student rows a, b < K only.
    """
    _check(g)
    n = C.shape[-1]
    k = n if rows is None else rows
    if g == "linear":
        return jnp.broadcast_to(C[None, None, :, :], (k, k, n, n))
    c = 1.0 + jnp.diagonal(C)
    Ck, ck = C[:k], c[:k]  # rows a or b: C_a., c_a
    L4 = ck[:, None] * ck[None, :] - Ck[:, :k] ** 2  # (a, b)
    # L1(a, b, c); L2(a, b, d) is the same tensor with c renamed d.
    L1 = (
        L4[:, :, None] * c[None, None, :]
        - (Ck**2)[None, :, :] * ck[:, None, None]
        - (Ck**2)[:, None, :] * ck[None, :, None]
        + 2.0 * Ck[:, :k, None] * Ck[:, None, :] * Ck[None, :, :]
    )
    Cab = Ck[:, :k, None, None]
    Cac = Ck[:, None, :, None]
    Cad = Ck[:, None, None, :]
    Cbc = Ck[None, :, :, None]
    Cbd = Ck[None, :, None, :]
    Ccd = C[None, None, :, :]
    L0 = (
        L4[:, :, None, None] * Ccd
        - Cbc * Cbd * ck[:, None, None, None]
        - Cac * Cad * ck[None, :, None, None]
        + Cab * Cac * Cbd
        + Cab * Cad * Cbc
    )
    s1 = 1.0 / jnp.sqrt(L1)  # (a, b, c): one root per triple, not one per (c, d) pair
    ratio = L0 * s1[:, :, :, None] * s1[:, :, None, :]
    return (4.0 / math.pi**2) / jnp.sqrt(L4)[:, :, None, None] * jnp.arcsin(ratio)


def eg_from_covariance(C: Float[Array, "n n"], u: Float[Array, " n"], g: str) -> Float[Array, ""]:
    """eg = 0.5 sum_ab u_a u_b I2(a,b), with u = (-v_1..-v_K, A_1..A_M)."""
    return 0.5 * u @ i2(C, g) @ u


def eg(
    Q: Float[Array, "K K"],
    R: Float[Array, "K M"],
    T: Float[Array, "M M"],
    v: Float[Array, " K"],
    A: Float[Array, " M"],
    g: str,
) -> Float[Array, ""]:
    """Generalisation error 0.5 E[(y - yhat)^2] from the order parameters."""
    return eg_from_covariance(covariance(Q, R, T), jnp.concatenate([-v, A]), g)
