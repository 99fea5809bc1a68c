"""Order parameters of docs/theory.md section 3, computed from the weights.

i.i.d. inputs: Q = w w^T / N, R = w theta^T / N, T = theta theta^T / N.

Hidden manifold (teacher on c), zeta = <f^2> - mu1^2:

    S = w F^T / sqrt(N),  W = w w^T / N,  Sigma = S S^T / D,  Q = zeta W + mu1^2 Sigma,
    R = mu1 S theta^T / D,  T = theta theta^T / D.

With the teacher on x (``hmm_x``) the teacher's fields have the same structure as the
student's: R = zeta w theta^T / N + mu1^2 S_w S_theta^T / D, and T likewise.

Spectral densities: Omega = F F^T / N = Psi^T diag(rho) Psi / D (rows psi_tau of Psi with
|psi_tau|^2 = D), Gamma = S Psi^T / sqrt(D), beta = theta Psi^T / sqrt(D), and

    sigma_kl(tau) = Gamma_k,tau Gamma_l,tau,   r_km(tau) = Gamma_k,tau beta_m,tau,
    Ttilde = beta diag(rho) beta^T / D.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from jaxtyping import Array, Float

from hmmjax.core.activations import gaussian_constants
from hmmjax.data.base import AbstractDataModel
from hmmjax.data.features import AbstractFeatures, as_features
from hmmjax.data.gaussian import HiddenManifold
from hmmjax.models.two_layer import root

__all__ = [
    "MAX_EIGH_BYTES",
    "Overlaps",
    "overlaps",
    "SpectralBasis",
    "symmetric_eigh",
    "gram",
    "spectral_basis",
    "SpectralDensities",
    "spectral_densities",
    "spectral_arrays",
]


# Largest Omega (D x D, float64) whose eigen-decomposition we attempt: eigh needs a few
# copies of it. 16 GiB of work space by default.
MAX_EIGH_BYTES = 16 * 2**30


class Overlaps(NamedTuple):
    """Covariance blocks of the local fields (Q, R, T) and, for manifold data, W, Sigma."""

    Q: Float[Array, "K K"]
    R: Float[Array, "K M"]
    T: Float[Array, "M M"]
    W: Float[Array, "K K"]
    Sigma: Float[Array, "K K"]


def overlaps(w: Float[Array, "K N"], model: AbstractDataModel) -> Overlaps:
    """Q, R, T (and W, Sigma) for student weights ``w`` on the data model ``model``."""
    N = model.n  # the true N of a padded model (its padded components of w are zero)
    theta = model.teacher.w
    W = w @ w.T / N
    if not isinstance(model, HiddenManifold):
        # i.i.d. inputs, and any other data model whose teacher acts on x: the plain
        # overlaps (for inputs with E x x^T != I they are not the fields' covariances)
        if theta.shape[-1] != w.shape[-1]:
            raise TypeError(
                f"no order parameters for data model {type(model).__name__}: its teacher "
                "does not act on the inputs"
            )
        return Overlaps(Q=W, R=w @ theta.T / N, T=theta @ theta.T / N, W=W, Sigma=W)
    consts = gaussian_constants(model.f)
    zeta, mu1 = consts.zeta, consts.mu1
    D = model.d
    S = model.features.apply(w) / root(N)
    Sigma = S @ S.T / D
    Q = zeta * W + mu1**2 * Sigma
    if model.teacher_on == "c":
        R = mu1 * S @ theta.T / D
        T = theta @ theta.T / D
    else:
        S_t = model.features.apply(theta) / root(N)
        R = zeta * w @ theta.T / N + mu1**2 * S @ S_t.T / D
        T = zeta * theta @ theta.T / N + mu1**2 * S_t @ S_t.T / D
    return Overlaps(Q=Q, R=R, T=T, W=W, Sigma=Sigma)


class SpectralBasis(NamedTuple):
    """Eigenvalues rho (D,) of Omega = F F^T / N and eigenvectors Psi (D, D) as rows,
    normalised to |psi_tau|^2 = D."""

    rho: Float[Array, " D"]
    Psi: Float[Array, "D D"]


def symmetric_eigh(
    A: Float[Array, "D D"], vectors: bool = True
) -> tuple[Float[Array, " D"], Float[Array, "D D"] | None]:
    """Eigenvalues (ascending) and, if ``vectors``, eigenvectors (columns) of a symmetric
    matrix.

    A concrete matrix goes to LAPACK's divide-and-conquer drivers through SciPy (syevd):
    at D = 5000 about 2x faster than ``jnp.linalg.eigh`` on the CPU, and a one-off set-up
    step, not a hot path. Under jit/vmap (traced input) ``jnp.linalg.eigh``/``eigvalsh``.
    """
    if isinstance(A, jax.core.Tracer):
        if vectors:
            return jnp.linalg.eigh(A)
        return jnp.linalg.eigvalsh(A), None
    a = np.asarray(A)
    if vectors:
        rho, vecs = scipy.linalg.eigh(a, driver="evd", overwrite_a=True, check_finite=False)
        return jnp.asarray(rho, A.dtype), jnp.asarray(vecs, A.dtype)
    rho = scipy.linalg.eigh(
        a, eigvals_only=True, driver="evd", overwrite_a=True, check_finite=False
    )
    return jnp.asarray(rho, A.dtype), None


def gram(X: Float[Array, "D N"], transpose: bool = False) -> Float[Array, "D D"]:
    """X X^T / N (or X^T X / N with ``transpose``), N = X.shape[1]: the matrix Omega of a
    feature matrix. A concrete X is multiplied by the host BLAS (NumPy), on the CPU about
    2x faster than XLA's float64 dot at D = 5000, N = 10^4; a traced X by ``jnp``."""
    N = X.shape[1]
    if isinstance(X, jax.core.Tracer):
        return (X.T @ X if transpose else X @ X.T) / N
    x = np.asarray(X)
    return jnp.asarray((x.T @ x if transpose else x @ x.T) / N, X.dtype)


def spectral_basis(F: Float[Array, "D N"]) -> SpectralBasis:
    """Eigen-decomposition of Omega = F F^T / N, done once per F (``symmetric_eigh``)."""
    D, N = F.shape
    need = 4 * D * D * 8
    if need > MAX_EIGH_BYTES:
        raise MemoryError(
            f"D={D}: the eigen-decomposition of Omega needs about {need / 2**30:.1f} GiB, "
            f"more than the {MAX_EIGH_BYTES / 2**30:.0f} GiB allowed "
            "(hmmjax.observables.order_params.MAX_EIGH_BYTES); use a smaller D"
        )
    rho, vecs = symmetric_eigh(gram(F))
    return SpectralBasis(rho=rho, Psi=vecs.T * math.sqrt(D))


class SpectralDensities(NamedTuple):
    """Per-eigenvalue order parameters of docs/theory.md section 3."""

    sigma: Float[Array, "K K D"]
    r: Float[Array, "K M D"]
    beta: Float[Array, "M D"]
    Ttilde: Float[Array, "M M"]


def spectral_densities(
    w: Float[Array, "K N"],
    F: Float[Array, "D N"] | AbstractFeatures,
    theta: Float[Array, "M D"],
    basis: SpectralBasis,
) -> SpectralDensities:
    """sigma(tau), r(tau), beta and Ttilde from student weights, features and teacher."""
    F = as_features(F)
    D, N = F.shape
    S = F.apply(w) / math.sqrt(N)
    gamma = S @ basis.Psi.T / math.sqrt(D)
    beta = theta @ basis.Psi.T / math.sqrt(D)
    return SpectralDensities(
        sigma=jnp.einsum("kt,lt->klt", gamma, gamma),
        r=jnp.einsum("kt,mt->kmt", gamma, beta),
        beta=beta,
        Ttilde=(beta * basis.rho) @ beta.T / D,
    )


def spectral_arrays(
    w: Float[Array, "K N"], F: Float[Array, "D N"] | AbstractFeatures, theta: Float[Array, "M D"]
) -> dict[str, Array]:
    """The per-eigenvalue order parameters of a sample in the names of the state files:
    rho, sigma (K,K,D), r (K,M,D), beta (M,D), Ttilde, W = w w^T / N, T = theta theta^T / D
    (one eigen-decomposition of Omega; none for orthogonal features, whose Omega = I)."""
    F = as_features(F)
    D, N = F.shape
    if F.orthogonal:  # Omega = I: the standard basis (Psi = sqrt(D) I, never formed)
        S = F.apply(w) / math.sqrt(N)
        rho = jnp.ones(D, w.dtype)
        dens = SpectralDensities(
            sigma=jnp.einsum("kt,lt->klt", S, S),
            r=jnp.einsum("kt,mt->kmt", S, theta),
            beta=theta,
            Ttilde=theta @ theta.T / D,
        )
    else:
        basis = spectral_basis(F.dense())
        rho = basis.rho
        dens = spectral_densities(w, F, theta, basis)
    return {
        "rho": rho,
        "sigma": dens.sigma,
        "r": dens.r,
        "beta": dens.beta,
        "Ttilde": dens.Ttilde,
        "W": w @ w.T / N,
        "T": theta @ theta.T / D,
    }
