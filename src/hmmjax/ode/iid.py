"""ODEs for online SGD on i.i.d. Gaussian inputs (docs/theory.md 5.1; Saad & Solla 1995).

State Q (K x K), R (K x M), v (K); constants T (M x M), A (M). With u = (-v, A),
C = [[Q, R], [R^T, T]] and the integrals of ``hmmjax.core.integrals``,

    P_kl   = sum_c u_c I3(k,l,c),      Phi_kl = sum_cd u_c u_d I4(k,l,c,d),

    dR_kn/dt = eta v_k sum_c u_c I3(k,n,c) - kappa R_kn
    dQ_kl/dt = eta (v_k P_kl + v_l P_lk) + eta^2 v_k v_l (Phi_kl + sigma^2 J2(k,l))
               - 2 kappa Q_kl
    dv_k/dt  = eta sum_c u_c I2(k,c)          (both layers only; 0 otherwise)

eta is the learning rate, kappa the weight decay, sigma the std of the label noise.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from hmmjax.core.integrals import covariance, eg_from_covariance, i2, i3, i4, j2
from hmmjax.core.schedules import AbstractSchedule, learning_rate

__all__ = [
    "FieldMoments",
    "IIDArgs",
    "IIDState",
    "Observables",
    "field_moments",
    "iid_observables",
    "iid_rhs",
]


class IIDState(eqx.Module):
    """Evolving order parameters of the i.i.d. ODE."""

    Q: Float[Array, "K K"]
    R: Float[Array, "K M"]
    v: Float[Array, " K"]


class IIDArgs(eqx.Module):
    """Constants and hyper-parameters of the i.i.d. ODE (arrays: vmap over any of them)."""

    T: Float[Array, "M M"]
    A: Float[Array, " M"]
    lr: Float[Array, ""]
    kappa: Float[Array, ""]
    noise: Float[Array, ""]
    schedule: AbstractSchedule | None = None
    """eta(t) = lr * schedule(t) (``hmmjax.core.schedules``); None: eta = lr."""
    g: str = eqx.field(static=True, default="erf")
    both: bool = eqx.field(static=True, default=False)


class Observables(NamedTuple):
    """What the solvers save at each requested time."""

    eg: Float[Array, ""]
    Q: Float[Array, "K K"]
    R: Float[Array, "K M"]
    v: Float[Array, " K"]


class FieldMoments(NamedTuple):
    """Gaussian integrals contracted with u = (-v, A), as the ODEs use them.

    ``I3`` holds I3(k, b, c) for students k only (K, n, n); ``Pu`` is
    sum_c u_c I3(k, b, c) (K, n), so that P = Pu[:, :K]; ``Phi`` and ``J2`` are K x K;
    ``I2u`` is sum_c u_c I2(k, c) (K,); ``eg`` = 0.5 u^T I2 u.
    """

    I3: Float[Array, "K n n"]
    Pu: Float[Array, "K n"]
    Phi: Float[Array, "K K"]
    J2: Float[Array, "K K"]
    I2u: Float[Array, " K"]
    eg: Float[Array, ""]


def field_moments(
    Q: Float[Array, "K K"],
    R: Float[Array, "K M"],
    T: Float[Array, "M M"],
    v: Float[Array, " K"],
    A: Float[Array, " M"],
    g: str,
) -> FieldMoments:
    """Integrals over the local fields with covariance C = [[Q, R], [R^T, T]]."""
    K = v.shape[0]
    C = covariance(Q, R, T)
    u = jnp.concatenate([-v, A])
    I2 = i2(C, g)
    I3 = i3(C, g, rows=K)  # (K, n, n): only the student rows are used
    I4 = i4(C, g, rows=K)  # (K, K, n, n)
    I2u = I2 @ u
    return FieldMoments(
        I3=I3,
        Pu=I3 @ u,
        Phi=(I4 @ u) @ u,
        J2=j2(C, g)[:K, :K],
        I2u=I2u[:K],
        eg=eg_from_covariance(C, u, g),
    )


def iid_rhs(t: Float[Array, ""], y: IIDState, args: IIDArgs) -> IIDState:
    """d(Q, R, v)/dt of docs/theory.md 5.1 (``t`` enters through the learning rate's
    schedule only)."""
    K = y.v.shape[0]
    m = field_moments(y.Q, y.R, args.T, y.v, args.A, args.g)
    eta, v = learning_rate(args.lr, args.schedule, t), y.v
    vP = v[:, None] * m.Pu[:, :K]
    vv = v[:, None] * v[None, :]
    dQ = eta * (vP + vP.T) + eta**2 * vv * (m.Phi + args.noise**2 * m.J2) - 2.0 * args.kappa * y.Q
    dR = eta * v[:, None] * m.Pu[:, K:] - args.kappa * y.R
    dv = eta * m.I2u if args.both else jnp.zeros_like(v)
    return IIDState(Q=dQ, R=dR, v=dv)


def iid_observables(y: IIDState, args: IIDArgs) -> Observables:
    """eg (docs/theory.md 4) and the order parameters of the current state."""
    eg = eg_from_covariance(covariance(y.Q, y.R, args.T), jnp.concatenate([-y.v, args.A]), args.g)
    return Observables(eg=eg, Q=y.Q, R=y.R, v=y.v)
