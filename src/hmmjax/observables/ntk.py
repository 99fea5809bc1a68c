"""The empirical neural tangent kernel and kernel methods with it (docs/theory.md section 7).

For a network f(theta, x) (any pytree of parameters theta, a scalar output per input x),

    Theta(x, x') = sum_k df(x)/dtheta_k df(x')/dtheta_k = J(x) J(x')^T.

``empirical_ntk`` computes it without ever holding the Jacobian of a whole data set: the
inputs are cut into blocks of ``block``; for a block B2 of x' the per-sample gradients
J(B2) come from a vmap of vjp (block x n_params numbers), and for a block B1 of x the
products J(B1) J(B2)^T are Jacobian-vector products of the block's outputs along each of
those gradients (a vmap of jvp). Both block loops are ``lax.map``s, so the memory is
O(block n_params + block^2 (size of the network's intermediates per input)).

``two_layer_ntk`` is the closed form for the network of ``hmmjax.models.alpha_net``,
f = (1/h) sum_i m_i beta_i sigma(z_i), z_i = omega_i . x / sqrt(d) + b_i (m the unit mask):

    Theta(x, x') = (1/h^2) sum_i m_i [sigma(z_i) sigma(z'_i)
                                      + beta_i^2 sigma'(z_i) sigma'(z'_i) (1 + x . x' / d)],

the three terms from beta, omega and b. It is tested against ``empirical_ntk``. h Theta
is O(1). For the trained output F = alpha (f - f0) the kernel is alpha^2 Theta; the
kernel methods below do not depend on the scale (the ridge is relative to the trace, and
the SVM normalises the kernel).

Kernel methods (NumPy / scikit-learn, float64, on the host):

- ``kernel_regression``: predictions K_test,train (K_train + lam I)^-1 y, with lam =
  ridge tr(K_train) / n (ridgeless regression for the tiny default);
- ``kernel_svm``: a support vector machine with the precomputed kernel (scikit-learn's
  SVC), hard-margin-like for the large default C, on K / (tr K / n);
- ``sign_error``: the fraction of sign(prediction) != y (a zero prediction is an error);
- ``label_alignment``: the top-k eigenvalues of K and the fraction of |y|^2 on each
  eigenvector, (v_j . y)^2 / |y|^2, and its cumulative sum.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from jaxtyping import Array, ArrayLike, Float

from hmmjax.core.activations import activation
from hmmjax.models.alpha import AlphaModel
from hmmjax.models.alpha_net import InvariantNet

__all__ = [
    "empirical_ntk",
    "two_layer_ntk",
    "network_ntk",
    "kernel_regression",
    "kernel_svm",
    "sign_error",
    "Alignment",
    "label_alignment",
]


def _blocks(x: Array, block: int) -> Array:
    """x (n, ...) zero-padded to a multiple of ``block`` and cut to (n_blocks, block, ...)."""
    n = x.shape[0]
    nb = -(-n // block)
    x = jnp.pad(x, [(0, nb * block - n)] + [(0, 0)] * (x.ndim - 1))
    return x.reshape(nb, block, *x.shape[1:])


@functools.partial(jax.jit, static_argnames=("apply", "block"))
def empirical_ntk(
    apply: Callable[..., Array],
    params: Any,
    x1: Float[Array, "n1 ..."],
    x2: Float[Array, "n2 ..."] | None = None,
    *,
    block: int = 64,
    args: Any = None,
) -> Float[Array, "n1 n2"]:
    """Theta[i, j] = sum over the leaves of ``params`` of d apply(params, x1[i]) d apply(
    params, x2[j]) (x2 = x1 if None), by blocks of vjp and jvp (module docstring).

    ``apply(params, x)`` (or ``apply(params, x, args)`` when ``args`` is given: a pytree
    that is not differentiated) maps one input to a scalar; every leaf of ``params`` is
    differentiated. Compiled with ``apply`` and ``block`` static: pass the same function
    object (not a new closure per call) to reuse the compilation."""

    def call(p, x):
        return apply(p, x) if args is None else apply(p, x, args)

    x2 = x1 if x2 is None else x2
    n1, n2 = x1.shape[0], x2.shape[0]
    b1, b2 = min(block, n1), min(block, n2)
    X1, X2 = _blocks(x1, b1), _blocks(x2, b2)

    def grad_one(x):
        out, vjp = jax.vjp(lambda p: call(p, x), params)
        return vjp(jnp.ones_like(out))[0]

    def outputs(p, xb):
        return jax.vmap(lambda x: call(p, x))(xb)

    def column(xb2):  # (n_blocks1, b1, b2)
        grads = jax.vmap(grad_one)(xb2)  # leaves (b2, *leaf shape)

        def rows(xb1):
            def along(tangent):
                return jax.jvp(lambda p: outputs(p, xb1), (params,), (tangent,))[1]

            return jax.vmap(along, out_axes=1)(grads)

        return jax.lax.map(rows, X1)

    K = jax.lax.map(column, X2)  # (nb2, nb1, b1, b2)
    K = jnp.transpose(K, (1, 2, 0, 3)).reshape(X1.shape[0] * b1, X2.shape[0] * b2)
    return K[:n1, :n2]


@eqx.filter_jit
def two_layer_ntk(
    net: InvariantNet, x1: Float[Array, "n1 d"], x2: Float[Array, "n2 d"] | None = None
) -> Float[Array, "n1 n2"]:
    """The closed form of the NTK of f for ``InvariantNet`` (module docstring); padded
    units (mask 0) do not count."""
    x2 = x1 if x2 is None else x2
    act = activation(net.act)
    fn, deriv = act.fn, act.deriv

    def features(x):
        z = net.preact(x)
        return fn(z) * net.mask, deriv(z) * (net.mask * net.beta)

    a1, s1 = features(x1)
    a2, s2 = features(x2)
    d = x1.shape[-1]
    return (a1 @ a2.T + (s1 @ s2.T) * (1.0 + x1 @ x2.T / d)) / net.width**2


def network_ntk(
    net: AlphaModel,
    x1: Float[Array, "n1 d"],
    x2: Float[Array, "n2 d"] | None = None,
    *,
    generic: bool = False,
    block: int = 64,
) -> Float[Array, "n1 n2"]:
    """The NTK of f for a network of ``AlphaModel``: for an ``InvariantNet`` the closed form,
    or with ``generic=True`` (and for every other network) the jvp / vjp route on its
    trained parameters (``net.params``; the rest, e.g. a unit mask, fixed)."""
    if not generic and isinstance(net, InvariantNet):
        return two_layer_ntk(net, x1, x2)
    return empirical_ntk(_network_output, net.params, x1, x2, block=block, args=net)


def _network_output(params: Any, x: Array, net: AlphaModel) -> Array:
    """f(params, x) of ``net``'s architecture: one function for every network, so that
    ``empirical_ntk`` compiles once per architecture and shape, not once per call."""
    return net.replace(params)(x)


def kernel_regression(
    K_train: ArrayLike, y_train: ArrayLike, K_test_train: ArrayLike, ridge: float = 1e-10
) -> np.ndarray:
    """Predictions K_test,train (K_train + lam I)^-1 y_train, lam = ridge tr(K_train) / n.

    Solved in float64 as a symmetric (not necessarily positive) system, so kernels
    computed in float32 with tiny negative eigenvalues still work."""
    K = np.asarray(K_train, dtype=np.float64)
    n = K.shape[0]
    lam = ridge * np.trace(K) / n
    coef = scipy.linalg.solve(K + lam * np.eye(n), np.asarray(y_train, np.float64),
                              assume_a="sym")  # fmt: skip
    return np.asarray(K_test_train, dtype=np.float64) @ coef


def kernel_svm(
    K_train: ArrayLike, y_train: ArrayLike, K_test_train: ArrayLike, C: float = 1e6
) -> np.ndarray:
    """Decision values on the test points of an SVM trained with the precomputed kernel,
    both kernels divided by tr(K_train) / n (so that C does not depend on the scale)."""
    from sklearn.svm import SVC  # noqa: PLC0415 (scikit-learn is slow to import)

    K = np.asarray(K_train, dtype=np.float64)
    scale = np.trace(K) / K.shape[0]
    svm = SVC(C=C, kernel="precomputed")
    svm.fit(K / scale, np.asarray(y_train))
    return svm.decision_function(np.asarray(K_test_train, dtype=np.float64) / scale)


def sign_error(y: ArrayLike, prediction: ArrayLike) -> float:
    """Fraction of samples with y prediction <= 0."""
    return float(np.mean(np.asarray(y) * np.asarray(prediction) <= 0))


class Alignment(NamedTuple):
    """The top-k eigenvalues (descending) of a kernel and the labels' weights on them."""

    eigenvalues: np.ndarray  # (k,)
    weights: np.ndarray  # (v_j . y)^2 / |y|^2
    cumulative: np.ndarray  # cumulative sum of the weights


def label_alignment(K: ArrayLike, y: ArrayLike, k: int | None = None) -> Alignment:
    """Projections of y on the top-k eigenvectors of the symmetric kernel K (all if None)."""
    K = np.asarray(K, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    vals, vecs = np.linalg.eigh(0.5 * (K + K.T))
    k = K.shape[0] if k is None else min(k, K.shape[0])
    order = np.argsort(vals)[::-1][:k]
    weights = (vecs[:, order].T @ y) ** 2 / (y @ y)
    return Alignment(eigenvalues=vals[order], weights=weights, cumulative=np.cumsum(weights))
