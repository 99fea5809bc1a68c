"""Invariant manifolds: compression of uninformative directions (THEORY.md section 7).

Paccolat, Petrini, Geiger, Tyloo, Wyart, "Geometric compression of invariant manifolds in
neural networks", J. Stat. Mech. (2021) 044001.

Data. x ~ N(0, I_d); the label depends only on the first d_par coordinates (``labels``):

- stripe (d_par = 1): y = +1 if -0.3 < x_1 < 1.18549, else -1. Phi(1.18549) - Phi(-0.3)
  = 0.5: the classes are balanced.
- cylinder (d_par = 2): y = +1 if x_1^2 + x_2^2 > r2, else -1. THEORY suggests
  r2 = d_par - 2/3 = 4/3 as "one possible choice", but P(chi2_2 > 4/3) = exp(-2/3) =
  0.513: slightly unbalanced. The default here is the median of chi2_2, r2 = 2 ln 2
  (``CYLINDER_R2``), which balances the classes exactly; ``CYLINDER_R2_THEORY`` is the
  other value, and the threshold used is a recorded parameter (``InvariantData.r2``).

Samples are counter-based (``rng.normal_counter``): sample s of a seed does not depend on
how many samples are drawn, so the training sets of one seed are nested in p, and the
test set (its own key) is the same for every lane with that seed.

Network (the alpha trick, Geiger et al.). With parameters w = (omega (h, d), b (h,),
beta (h,)), all initialised N(0, 1),

    f(w, x) = (1/h) sum_i beta_i sigma(omega_i . x / sqrt(d) + b_i),
    F(w, x) = alpha (f(w, x) - f(w0, x)),
    L(w)    = (1 / (alpha^2 p)) sum_mu max(0, 1 - y_mu F(w, x_mu)).

F is computed unit by unit, alpha (1/h) sum_i (beta_i sigma_i - beta0_i sigma0_i), so it
is exactly 0 at w = w0. Large alpha is the lazy (kernel) regime; small alpha is feature
learning; the crossover is at alpha ~ 1 whatever h (the 1/h normalisation).

Dynamics and the step size. Gradient descent discretises the flow dw/dt = -h grad L(w):
a step is w <- w - eta grad L with eta = h dt (``optax.sgd(eta)``), dt the step in time
units. In these units the outputs move at a rate that depends on neither alpha nor h,

    dF(x)/dt = (1/p) sum_mu [h Theta_f(x, x_mu)] y_mu 1[y_mu F_mu < 1]

(Theta_f the NTK of f, h Theta_f = O(1) at initialisation), while the weights move at a
rate ~ 1/alpha near w0 (dw/dt = -h grad L ~ 1/alpha), and in the feature regime they grow
like exp(t / alpha) until alpha |w|^2 ~ 1, where h Theta_f ~ |w|^2 ~ 1/alpha. Hence the
proposed fixed rule dt = lr min(1, alpha) (eta = lr h min(1, alpha)): it keeps the
relative change of w per step at ~ lr for alpha < 1 and the change of F at ~ lr for
alpha > 1. Measured (d = 5, stripe, h = 100, p = 256, lr = 0.5): it fits in 2000 - 6000
steps for alpha <= 1, but not for alpha = 100 (6 samples left after 30000 steps): in the
lazy regime hinge-loss gradient descent needs a time t ~ 10^4 growing faster than p (the
last margins are pushed at a rate ~ 1/p per sample while their neighbours push back),
which a fixed dt = O(1) cannot cover in a bounded number of steps.

So the default is an adaptive step (``InvariantTrainer.adaptive``), in the spirit of the
gradient-flow integrator of Geiger et al., per lane and vmappable: a trial step with the
current dt (starting at dt0 = lr min(1, alpha)) is accepted iff the outputs on the
training set change by at most ``max_dF`` (max_mu |F'_mu - F_mu|, on the scale of the
margin 1) and the parameters by at most ``max_dw`` relative to their norm
(|w' - w| <= max_dw |w|, which keeps feature learning a discretised flow), and all is
finite. An accepted step with both changes below half their bounds multiplies dt by
``grow``; a rejected step leaves the lane where it was and multiplies dt by ``shrink``.
A rejected trial costs one iteration like an accepted one (one forward and backward
pass). dt then grows as samples get fitted (few active samples, small changes of F), to
dt ~ 10 - 50 in the lazy regime. With the defaults (max_dF = 0.5), every lane tried
reached zero loss (d = 5, stripe, one seed; alpha = 1e-3, 1e-2, ..., 1e3 at h = 100,
p = 64 and 1024; alpha = 1e-3, 1e-1, 10, 1e3 at h = 1000, p = 1024): 600 - 2200
iterations at p = 64 and 9000 - 48000 at p = 1024 (about linear in p, the most at
alpha = 1e-3 and 1e3, about 10% of them rejected). The final test error and compression
agree with finer integrations (max_dF = 0.1, or the fixed rule where it converges) to
within the differences between seeds; smaller max_dF is closer to gradient flow and
slower (max_dF = 0.1: about 3 times as many steps).
``adaptive=False`` is plain GD with dt0; a lane whose loss turns non-finite is then
stopped and flagged ``diverged``.

Stopping. A lane stops when its training loss is exactly 0 (every true sample has
y F >= 1) or at ``max_steps`` iterations. Lanes are vmapped through ``lax.while_loop``s:
the loop runs while some lane is active, the others are frozen (their state is selected
unchanged). Measurements are taken at ``record_steps`` (log-spaced iteration counts, a
static shape): the training runs segment by segment (a scan over the segments of a while
loop each), so measuring costs nothing inside the loop.

Measurements (``InvariantMeasurement``): training loss, number of samples with margin
< 1, training and test errors (fraction with y F <= 0; F = 0 counts as an error), the
growth of the first layer dW = omega - omega0 along the informative and the other
directions (per-direction RMS over units)

    g_par = sqrt(mean_i sum_{j < d_par} dW_ij^2 / d_par),
    g_perp = sqrt(mean_i sum_{j >= d_par} dW_ij^2 / (d - d_par)),

their ratio (the compression), and the same RMS of the weights omega themselves, Lambda
= omega_par / omega_perp (1 at initialisation up to sampling, what Paccolat et al. plot).

Lanes. A lane is one (alpha, seed, p, h). Training sets are padded to the grid's largest
p with a sample mask (the loss averages over the true p); networks are padded to the
largest h with zero units (beta = omega = b = 0) and a unit mask that multiplies each
unit's output, so padded units have zero gradients and never move (the trainer also
masks their gradients). The true p and h enter the 1/p, 1/h and step-size scalings.
``run_grid`` trains the whole grid as one jitted, vmapped call and reshapes the lane axis
to (alphas, seeds, ps, hs).

Learning curves: ``fit_exponent`` fits eps(p) ~ p^-beta; ``predicted_exponents`` gives
THEORY's beta_lazy = d / (3d - 2) and beta_feature.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.scipy.special import erf as _erf
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray
from tqdm.auto import tqdm

from hmmjax.rng import key_words, normal_counter

__all__ = [
    "ACTIVATIONS",
    "CYLINDER_R2",
    "CYLINDER_R2_THEORY",
    "D_PAR",
    "STRIPE",
    "InvariantData",
    "InvariantLanes",
    "InvariantMeasurement",
    "InvariantNet",
    "InvariantResult",
    "InvariantTrainer",
    "build_lanes",
    "compression",
    "fit_exponent",
    "hinge_grad",
    "hinge_loss",
    "init_net",
    "labels",
    "lane_keys",
    "nonlinearity",
    "output",
    "predicted_exponents",
    "record_steps",
    "run_grid",
    "sample",
    "train",
]

# --- data ------------------------------------------------------------------------------

STRIPE = (-0.3, 1.18549)
"""The stripe's interval on x_1: Phi(1.18549) - Phi(-0.3) = 0.5."""
CYLINDER_R2 = 2.0 * math.log(2.0)
"""Default cylinder threshold on x_1^2 + x_2^2: the median of chi2_2 (balanced)."""
CYLINDER_R2_THEORY = 4.0 / 3.0
"""THEORY's d_par - 2/3: P(y = +1) = exp(-2/3) = 0.513, slightly unbalanced."""
D_PAR = {"stripe": 1, "cylinder": 2}
"""The number of informative coordinates of each model."""


def labels(
    x: Float[Array, "... d"], model: str = "stripe", r2: float = CYLINDER_R2
) -> Float[Array, "..."]:
    """y = +-1 of inputs x (see the module docstring); depends on x[..., :d_par] only."""
    if model == "stripe":
        lo, hi = STRIPE
        inside = (x[..., 0] > lo) & (x[..., 0] < hi)
    elif model == "cylinder":
        inside = x[..., 0] ** 2 + x[..., 1] ** 2 > r2
    else:
        raise ValueError(f"model={model!r}; choose one of {', '.join(D_PAR)}")
    return jnp.where(inside, 1.0, -1.0).astype(x.dtype)


class InvariantData(eqx.Module):
    """The data model: dimension d, "stripe" or "cylinder", the cylinder threshold r2."""

    d: int = eqx.field(static=True, default=5)
    model: str = eqx.field(static=True, default="stripe")
    r2: float = eqx.field(static=True, default=CYLINDER_R2)

    def __check_init__(self):
        if self.model not in D_PAR:
            raise ValueError(f"model={self.model!r}; choose one of {', '.join(D_PAR)}")
        if self.d <= self.d_par:
            raise ValueError(f"d={self.d} must exceed d_par={self.d_par} for {self.model}")

    @property
    def d_par(self) -> int:
        return D_PAR[self.model]

    def labels(self, x: Float[Array, "... d"]) -> Float[Array, "..."]:
        return labels(x, self.model, self.r2)


@eqx.filter_jit
def sample(
    key: PRNGKeyArray, n: int, data: InvariantData, dtype=jnp.float32
) -> tuple[Float[Array, "n d"], Float[Array, " n"]]:
    """Samples 0 .. n-1 of the stream ``key``: x (n, d) and labels y (n,). Sample s does
    not depend on n (counter-based normals)."""
    x = normal_counter(key_words(key), jnp.arange(n), data.d, 1, dtype)[..., 0].T
    return x, data.labels(x)


def lane_keys(seed: int) -> tuple[PRNGKeyArray, PRNGKeyArray, PRNGKeyArray]:
    """(train, init, test) keys of a seed."""
    k = jax.random.split(jax.random.PRNGKey(seed), 3)
    return k[0], k[1], k[2]


# --- the network -----------------------------------------------------------------------

_SQRT2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)

ACTIVATIONS: dict[str, tuple[Callable[[Array], Array], Callable[[Array], Array]]] = {
    "relu": (jax.nn.relu, lambda z: (z > 0).astype(z.dtype)),
    "softplus": (jax.nn.softplus, jax.nn.sigmoid),
    "tanh": (jnp.tanh, lambda z: 1.0 - jnp.tanh(z) ** 2),
    "erf": (lambda z: _erf(z / _SQRT2), lambda z: _SQRT_2_OVER_PI * jnp.exp(-0.5 * z * z)),
}
"""sigma and sigma' by name; erf means erf(z / sqrt 2). jax.nn.relu has sigma'(0) = 0 under
autodiff, as the hand-written derivative."""


def nonlinearity(name: str) -> tuple[Callable[[Array], Array], Callable[[Array], Array]]:
    """(sigma, sigma') of an activation name (see ``ACTIVATIONS``)."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"activation {name!r}; choose one of {', '.join(ACTIVATIONS)}") from None


class InvariantNet(eqx.Module):
    """f(x) = (1/h) sum_i mask_i beta_i sigma(omega_i . x / sqrt(d) + b_i).

    ``mask`` marks the true units of a padded network and ``width`` is the true h."""

    omega: Float[Array, "H d"]
    b: Float[Array, " H"]
    beta: Float[Array, " H"]
    mask: Float[Array, " H"]
    width: Float[Array, ""]
    act: str = eqx.field(static=True, default="relu")

    @property
    def params(self) -> tuple[Array, Array, Array]:
        """The trained parameters (omega, b, beta)."""
        return self.omega, self.b, self.beta

    def replace(self, params: tuple[Array, Array, Array]) -> InvariantNet:
        omega, b, beta = params
        return InvariantNet(omega, b, beta, self.mask, self.width, self.act)

    def preact(self, x: Float[Array, "... d"]) -> Float[Array, "... H"]:
        return x @ self.omega.T / math.sqrt(self.omega.shape[-1]) + self.b

    def units(self, x: Float[Array, "... d"]) -> Float[Array, "... H"]:
        """mask_i beta_i sigma_i(x): unit i's share of h f(x)."""
        return nonlinearity(self.act)[0](self.preact(x)) * (self.mask * self.beta)

    def __call__(self, x: Float[Array, "... d"]) -> Float[Array, "..."]:
        return jnp.sum(self.units(x), axis=-1) / self.width

    def unpad(self) -> InvariantNet:
        """The true units only (host side: needs a concrete, unbatched network)."""
        h = int(np.sum(np.asarray(self.mask)))
        return InvariantNet(
            self.omega[:h], self.b[:h], self.beta[:h], self.mask[:h], self.width, self.act
        )


def init_net(
    key: PRNGKeyArray, h: int, d: int, *, width: int | None = None, act: str = "relu",
    dtype=jnp.float32,
) -> InvariantNet:  # fmt: skip
    """omega, b, beta ~ N(0, 1) for h units, padded with zero units to ``width`` (>= h).

    Counter-based: unit i does not depend on h, so narrower networks of a key are the first
    units of wider ones."""
    nonlinearity(act)
    width = h if width is None else width
    if width < h:
        raise ValueError(f"cannot pad {h} units to width {width}")
    return _init_units(key, jnp.asarray(h), d, width, act, dtype)


@eqx.filter_jit
def _init_units(key, h: Int[Array, ""], d: int, width: int, act: str, dtype) -> InvariantNet:
    """``init_net`` compiled once per width (h is traced): unit i's omega_i, b_i, beta_i are
    normals 0 .. d-1, d, d+1 of step i of the stream ``key``."""
    words = key_words(key)
    units = jnp.arange(width)

    z = normal_counter(words, units, d + 2, 1, dtype)[..., 0].T  # (width, d + 2)
    mask = (units < h).astype(dtype)
    omega = z[:, :d] * mask[:, None]
    b = z[:, d] * mask
    beta = z[:, d + 1] * mask
    return InvariantNet(omega, b, beta, mask, h.astype(dtype), act)


def output(
    net: InvariantNet, net0: InvariantNet, x: Float[Array, "... d"], alpha: ArrayLike
) -> Float[Array, "..."]:
    """F = alpha (f(w, x) - f(w0, x)), unit by unit: exactly 0 when net == net0."""
    diff = net.units(x) - net0.units(x)
    return alpha * jnp.sum(diff, axis=-1) / net.width


def hinge_loss(
    net: InvariantNet,
    net0: InvariantNet,
    x: Float[Array, "P d"],
    y: Float[Array, " P"],
    smask: Float[Array, " P"],
    alpha: ArrayLike,
) -> Float[Array, ""]:
    """(1 / (alpha^2 p)) sum_mu smask_mu max(0, 1 - y_mu F_mu), p = sum smask."""
    margins = y * output(net, net0, x, alpha)
    return jnp.sum(jnp.maximum(0.0, 1.0 - margins) * smask) / (alpha**2 * jnp.sum(smask))


def hinge_grad(
    net: InvariantNet,
    net0: InvariantNet,
    x: Float[Array, "P d"],
    y: Float[Array, " P"],
    smask: Float[Array, " P"],
    alpha: ArrayLike,
) -> tuple[tuple[Array, Array, Array], Float[Array, " P"], Float[Array, ""]]:
    """Gradient of ``hinge_loss`` w.r.t. (omega, b, beta), written out, with the margins
    y F and the loss. With c_mu = -smask_mu y_mu 1[y_mu F_mu < 1] / (alpha p) = dL/df_mu,
    a = sigma(z), s = sigma'(z) (z the pre-activations, (P, h)) and m the unit mask:

        dL/dbeta_i = m_i sum_mu c_mu a_mu,i / h,
        dL/db_i = m_i beta_i sum_mu c_mu s_mu,i / h,
        dL/domega_i = m_i beta_i sum_mu c_mu s_mu,i x_mu / (h sqrt d).
    """
    fn, deriv = nonlinearity(net.act)
    z = net.preact(x)
    a = fn(z) * net.mask
    F = alpha * ((a * net.beta).sum(-1) - net0.units(x).sum(-1)) / net.width
    margins = y * F
    active = (margins < 1.0) * smask
    p = jnp.sum(smask)
    loss = jnp.sum((1.0 - margins) * active) / (alpha**2 * p)
    c = -(y * active) / (alpha * p)
    s = deriv(z) * (net.mask * c[:, None])
    g_beta = c @ a / net.width
    scale = net.beta / net.width
    g_b = scale * s.sum(0)
    g_omega = scale[:, None] * (s.T @ x) / math.sqrt(x.shape[-1])
    return (g_omega, g_b, g_beta), margins, loss


# --- measurements ----------------------------------------------------------------------


def _rms_split(w: Float[Array, "H d"], mask: Float[Array, " H"], width, d_par: int):
    """Per-direction RMS over the true units of w along the first d_par directions and
    along the others."""
    sq = (w**2) * mask[:, None]
    d = w.shape[-1]
    par = jnp.sqrt(jnp.sum(sq[:, :d_par]) / (width * d_par))
    perp = jnp.sqrt(jnp.sum(sq[:, d_par:]) / (width * (d - d_par)))
    return par, perp


def compression(
    net: InvariantNet, net0: InvariantNet, d_par: int
) -> tuple[Float[Array, ""], Float[Array, ""], Float[Array, ""], Float[Array, ""]]:
    """(g_par, g_perp, omega_par, omega_perp): the per-direction RMS growth of the first
    layer, omega - omega0, and of the weights omega, along and across the informative
    directions."""
    g_par, g_perp = _rms_split(net.omega - net0.omega, net.mask, net.width, d_par)
    w_par, w_perp = _rms_split(net.omega, net.mask, net.width, d_par)
    return g_par, g_perp, w_par, w_perp


class InvariantMeasurement(NamedTuple):
    """Recorded per lane at each recording step (and at the end)."""

    loss: Float[Array, ""]  # training hinge loss
    n_unfit: Int[Array, ""]  # true training samples with y F < 1
    err_train: Float[Array, ""]  # fraction of training samples with y F <= 0
    err_test: Float[Array, ""]  # fraction of test samples with y F <= 0
    g_par: Float[Array, ""]  # RMS growth of omega along the d_par informative directions
    g_perp: Float[Array, ""]  # ... along the d - d_par others
    ratio: Float[Array, ""]  # g_par / g_perp: the compression
    w_par: Float[Array, ""]  # RMS of omega along the informative directions
    w_perp: Float[Array, ""]  # ... along the others
    Lambda: Float[Array, ""]  # w_par / w_perp
    rel_change: Float[Array, ""]  # |omega - omega0| / |omega0| (Frobenius)
    dt: Float[Array, ""]  # the current step in time units (eta = h dt)
    time: Float[Array, ""]  # t = sum of accepted dt
    steps: Int[Array, ""]  # iterations done (accepted or not)
    accepted: Int[Array, ""]  # accepted steps
    diverged: Bool[Array, ""]  # a fixed-step lane whose loss turned non-finite (stopped)


# --- lanes and training ----------------------------------------------------------------


class InvariantLanes(eqx.Module):
    """Stacked lanes (a leading lane axis on every array): the networks, padded training
    sets with their sample masks, alpha, and the test sets."""

    net0: InvariantNet
    x: Float[Array, "L P d"]
    y: Float[Array, "L P"]
    smask: Float[Array, "L P"]
    alpha: Float[Array, " L"]
    x_test: Float[Array, "L T d"]
    y_test: Float[Array, "L T"]


def build_lanes(
    alphas: Sequence[float],
    seeds: Sequence[int],
    ps: Sequence[int],
    hs: Sequence[int],
    *,
    data: InvariantData = InvariantData(),  # noqa: B008 (a frozen module)
    act: str = "relu",
    n_test: int = 10_000,
    dtype=jnp.float32,
) -> InvariantLanes:
    """The lanes of the grid alphas x seeds x ps x hs (in that C order), padded to the
    largest p and h. Seed s gives the keys ``lane_keys(s)``: its training set (the first p
    samples of one stream), its initial weights (the first h units of one draw) and its
    test set are shared by all lanes with that seed."""
    p_max, h_max = max(ps), max(hs)
    seed_sets, nets = [], []
    for s in seeds:  # draws per seed and per (seed, h), assembled on the host
        k_train, k_init, k_test = lane_keys(s)
        seed_sets.append(
            (*sample(k_train, p_max, data, dtype), *sample(k_test, n_test, data, dtype))
        )
        nets.append([init_net(k_init, h, data.d, width=h_max, act=act, dtype=dtype) for h in hs])
    x, y, x_test, y_test = (np.stack([np.asarray(t[i]) for t in seed_sets]) for i in range(4))
    nets = jax.tree.map(lambda *a: np.stack(a), *[n for per in nets for n in per])  # (S H ...)
    ia, i_s, ip, ih = np.indices((len(alphas), len(seeds), len(ps), len(hs))).reshape(4, -1)
    smask = (np.arange(p_max) < np.asarray(ps)[:, None]).astype(x.dtype)[ip]
    net0 = jax.tree.map(lambda a: jnp.asarray(a[i_s * len(hs) + ih]), nets)
    return InvariantLanes(
        net0=net0,
        x=jnp.asarray(x[i_s] * smask[..., None]),
        y=jnp.asarray(y[i_s] * smask),
        smask=jnp.asarray(smask),
        alpha=jnp.asarray(np.asarray(alphas, x.dtype)[ia]),
        x_test=jnp.asarray(x_test[i_s]),
        y_test=jnp.asarray(y_test[i_s]),
    )


def record_steps(max_steps: int, n_records: int = 30) -> tuple[int, ...]:
    """0 and about ``n_records`` log-spaced iteration counts up to ``max_steps``."""
    s = np.unique(np.round(np.logspace(0, np.log10(max_steps), n_records)).astype(int))
    return (0, *(int(v) for v in s))


class _State(NamedTuple):
    params: tuple[Array, Array, Array]
    grads: tuple[Array, Array, Array]
    margins: Array
    loss: Array
    dt: Array
    time: Array
    steps: Array
    accepted: Array
    done: Array
    diverged: Array


def _norm(tree) -> Array:
    return jnp.sqrt(sum(jnp.sum(t**2) for t in jax.tree.leaves(tree)))


class InvariantTrainer(eqx.Module):
    """Full-batch GD on the hinge loss with the (adaptive) step of the module docstring.

    All fields are static (they fix the compiled program)."""

    data: InvariantData = eqx.field(static=True, default=InvariantData())
    lr: float = eqx.field(static=True, default=0.5)
    adaptive: bool = eqx.field(static=True, default=True)
    max_dF: float = eqx.field(static=True, default=0.5)
    max_dw: float = eqx.field(static=True, default=0.1)
    grow: float = eqx.field(static=True, default=1.2)
    shrink: float = eqx.field(static=True, default=0.3)
    max_steps: int = eqx.field(static=True, default=100_000)
    n_records: int = eqx.field(static=True, default=30)
    test_block: int = eqx.field(static=True, default=2048)

    @property
    def steps(self) -> tuple[int, ...]:
        return record_steps(self.max_steps, self.n_records)

    def dt0(self, alpha: ArrayLike) -> Array:
        """The initial (for adaptive=False: fixed) step in time units, lr min(1, alpha)."""
        return self.lr * jnp.minimum(1.0, alpha)

    def _grad(self, lane: InvariantLanes, params):
        net = lane.net0.replace(params)
        return hinge_grad(net, lane.net0, lane.x, lane.y, lane.smask, lane.alpha)

    def init(self, lane: InvariantLanes) -> _State:
        grads, margins, loss = self._grad(lane, lane.net0.params)
        dtype = lane.alpha.dtype
        zero = jnp.zeros((), jnp.int32)
        return _State(lane.net0.params, grads, margins, loss, self.dt0(lane.alpha),
                      jnp.zeros((), dtype), zero, zero, loss == 0, jnp.zeros((), bool))  # fmt: skip

    def step(self, lane: InvariantLanes, st: _State) -> _State:
        """One iteration: a trial step, accepted or rejected (see the module docstring)."""
        mask = lane.net0.mask
        grads = (st.grads[0] * mask[:, None], st.grads[1] * mask, st.grads[2] * mask)
        eta = lane.net0.width * st.dt
        tx = optax.sgd(eta)
        updates, _ = tx.update(grads, tx.init(st.params))
        params = optax.apply_updates(st.params, updates)
        new_grads, margins, loss = self._grad(lane, params)
        dF = jnp.max(jnp.abs(margins - st.margins) * lane.smask)
        dw = _norm(updates) / _norm(st.params)
        finite = jnp.isfinite(loss) & jnp.isfinite(dw)
        if self.adaptive:
            ok = finite & (dF <= self.max_dF) & (dw <= self.max_dw)
            small = (dF <= 0.5 * self.max_dF) & (dw <= 0.5 * self.max_dw)
            dt = jnp.where(ok, jnp.where(small, self.grow * st.dt, st.dt), self.shrink * st.dt)
        else:
            ok, dt = finite, st.dt
        new = _State(params, new_grads, margins, loss, dt, st.time + st.dt, st.steps + 1,
                     st.accepted + 1, loss == 0, st.diverged)  # fmt: skip
        diverged = ~finite & (not self.adaptive)  # fixed steps: stop a diverging lane
        kept = st._replace(dt=dt, steps=st.steps + 1, done=st.done | diverged,
                           diverged=st.diverged | diverged)  # fmt: skip
        return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, kept)

    def measure(self, lane: InvariantLanes, st: _State) -> InvariantMeasurement:
        net = lane.net0.replace(st.params)
        T = lane.y_test.shape[0]
        block = min(self.test_block, T)
        pad = -T % block  # padded test samples have y = 0 and do not count
        xt = jnp.pad(lane.x_test, ((0, pad), (0, 0))).reshape(-1, block, self.data.d)
        yt = jnp.pad(lane.y_test, (0, pad)).reshape(xt.shape[:2])

        def errors(b):
            x, y = b
            return jnp.sum((y * output(net, lane.net0, x, lane.alpha) <= 0) & (y != 0))

        wrong = jax.lax.map(errors, (xt, yt))
        g_par, g_perp, w_par, w_perp = compression(net, lane.net0, self.data.d_par)
        p = jnp.sum(lane.smask)
        return InvariantMeasurement(
            loss=st.loss,
            n_unfit=jnp.sum((st.margins < 1) * lane.smask).astype(jnp.int32),
            err_train=jnp.sum((st.margins <= 0) * lane.smask) / p,
            err_test=jnp.sum(wrong) / T,
            g_par=g_par,
            g_perp=g_perp,
            ratio=g_par / g_perp,
            w_par=w_par,
            w_perp=w_perp,
            Lambda=w_par / w_perp,
            rel_change=_norm(net.omega - lane.net0.omega) / _norm(lane.net0.omega),
            dt=st.dt,
            time=st.time,
            steps=st.steps,
            accepted=st.accepted,
            diverged=st.diverged,
        )

    def segment(self, lane: InvariantLanes, st: _State, stop: Int[Array, ""]):
        """Iterate one lane until it is done or has made ``stop`` iterations; measure."""
        st = jax.lax.while_loop(
            lambda s: ~s.done & (s.steps < stop), lambda s: self.step(lane, s), st
        )
        return st, self.measure(lane, st)

    def run(self, lane: InvariantLanes) -> tuple[InvariantMeasurement, tuple]:
        """One lane (vmap it): the measurements at ``steps`` and the final parameters, in
        one call (``train`` runs the segments from the host instead)."""
        st, history = jax.lax.scan(
            lambda st, stop: self.segment(lane, st, stop), self.init(lane),
            jnp.asarray(self.steps),
        )  # fmt: skip
        return history, st.params


class InvariantResult(NamedTuple):
    """Results of a grid, every array with the leading grid axes (alphas, seeds, ps, hs)."""

    steps: np.ndarray  # (R,) recording iteration counts
    history: InvariantMeasurement  # (*grid, R)
    final: InvariantMeasurement  # (*grid): the state at the end
    converged: Bool[np.ndarray, "..."]  # training loss exactly 0
    net: InvariantNet  # final networks (*grid, h_max, ...), padded
    net0: InvariantNet  # initial networks
    alphas: np.ndarray
    seeds: np.ndarray
    ps: np.ndarray
    hs: np.ndarray
    data: InvariantData

    def network(self, index: tuple[int, ...], initial: bool = False) -> InvariantNet:
        """The (unpadded) final or initial network of grid point ``index``."""
        net = self.net0 if initial else self.net
        return jax.tree.map(lambda a: a[index], net).unpad()


@eqx.filter_jit
def _init_lanes(lanes: InvariantLanes, trainer: InvariantTrainer) -> _State:
    return jax.vmap(trainer.init)(lanes)


@eqx.filter_jit
def _segment_lanes(lanes: InvariantLanes, trainer: InvariantTrainer, st: _State, stop):
    return jax.vmap(trainer.segment, in_axes=(0, 0, None))(lanes, st, stop)


def train(
    lanes: InvariantLanes,
    trainer: InvariantTrainer,
    *,
    progress: bool = False,
    checkpoint: Path | None = None,
    stamp: str = "",
):
    """All lanes, one compiled call per recording segment: (history (L, R), final
    parameters (L, ...)). The same numbers as ``jax.vmap(trainer.run)``.

    ``progress``: a bar over the records. ``checkpoint``: after each segment the lanes'
    state and the history so far are written there atomically (with ``stamp``, which
    must match to resume); a later call with the same file resumes after the last
    finished segment, with bit-identical results."""
    from hmmjax.sweep import _load_checkpoint, _save_checkpoint  # the sweep's file format

    steps = trainer.steps
    st = _init_lanes(lanes, trainer)
    pieces: list[InvariantMeasurement] = []
    saved = _load_checkpoint(checkpoint, stamp) if checkpoint is not None else None
    if saved is not None:
        treedef = jax.tree.structure(st)
        st = jax.tree.unflatten(treedef, [jnp.asarray(saved[f"st_{i}"])
                                          for i in range(treedef.num_leaves)])  # fmt: skip
        done = int(saved["records"])
        fields = InvariantMeasurement._fields
        pieces = [InvariantMeasurement(*(saved[f"h_{k}"][:, r] for k in fields))
                  for r in range(done)]  # fmt: skip
    bar = tqdm(total=len(steps), initial=len(pieces), disable=not progress, unit="record")
    for stop in steps[len(pieces) :]:
        st, meas = _segment_lanes(lanes, trainer, st, jnp.asarray(stop))
        pieces.append(jax.tree.map(np.asarray, meas))
        if checkpoint is not None:
            state = {f"st_{i}": np.asarray(a) for i, a in enumerate(jax.tree.leaves(st))}
            state.update({f"h_{k}": np.stack([getattr(p, k) for p in pieces], 1)
                          for k in InvariantMeasurement._fields})  # fmt: skip
            _save_checkpoint(checkpoint, {**state, "fingerprint": np.asarray(stamp),
                                          "records": np.asarray(len(pieces))})  # fmt: skip
        bar.update(1)
    bar.close()
    history = InvariantMeasurement(*(np.stack([getattr(p, k) for p in pieces], 1)
                                     for k in InvariantMeasurement._fields))  # fmt: skip
    return history, st.params


def run_grid(
    alphas: Sequence[float],
    seeds: Sequence[int],
    ps: Sequence[int],
    hs: Sequence[int],
    trainer: InvariantTrainer = InvariantTrainer(),  # noqa: B008 (a frozen module)
    *,
    act: str = "relu",
    n_test: int = 10_000,
    dtype=jnp.float32,
    progress: bool = False,
    checkpoint: Path | None = None,
    stamp: str = "",
) -> InvariantResult:
    """Build the lanes of the grid, train them all at once (``train``: progress bar,
    checkpoint), reshape to the grid."""
    lanes = build_lanes(alphas, seeds, ps, hs, data=trainer.data, act=act, n_test=n_test,
                        dtype=dtype)  # fmt: skip
    history, params = train(lanes, trainer, progress=progress, checkpoint=checkpoint,
                            stamp=stamp)  # fmt: skip
    grid = (len(alphas), len(seeds), len(ps), len(hs))

    def shape(a):
        a = np.asarray(a)
        return a.reshape(grid + a.shape[1:])

    history = jax.tree.map(shape, history)
    net = jax.tree.map(shape, jax.vmap(lambda n, p: n.replace(p))(lanes.net0, params))
    final = jax.tree.map(lambda a: a[..., -1], history)
    return InvariantResult(
        steps=np.asarray(trainer.steps),
        history=history,
        final=final,
        converged=final.loss == 0,
        net=net,
        net0=jax.tree.map(shape, lanes.net0),
        alphas=np.asarray(alphas),
        seeds=np.asarray(seeds),
        ps=np.asarray(ps),
        hs=np.asarray(hs),
        data=trainer.data,
    )


# --- learning curves -------------------------------------------------------------------


def fit_exponent(
    p: ArrayLike, err: ArrayLike, weights: ArrayLike | None = None
) -> tuple[float, float]:
    """beta and its standard error from a least-squares fit -log(err) = beta log(p) + c.

    ``err`` is (n_p,) or (n_seeds, n_p). For one curve without weights: ordinary least
    squares, the standard error from the residuals (0 for an exact power law). With
    seeds: the fit is to -log(mean over seeds), weighted by 1 / sigma_i^2 with sigma_i the
    standard error of -log(mean err) by the delta method, std(err) / (mean err sqrt(n)),
    and the standard error is that of a weighted fit with known variances,
    1 / sqrt(sum_i w_i (u_i - u_w)^2) (u = log p, u_w the weighted mean). ``weights``
    (n_p,) given explicitly (1 / sigma^2 of -log err) are used the same way. Points with
    err <= 0 are dropped.
    """
    u = np.log(np.asarray(p, dtype=float))
    err = np.asarray(err, dtype=float)
    known = weights is not None or err.ndim == 2
    if err.ndim == 2:
        n = err.shape[0]
        mean = err.mean(axis=0)
        sigma = err.std(axis=0, ddof=1) / (np.sqrt(n) * np.where(mean > 0, mean, 1.0))
        if weights is None:
            floor = np.max(sigma) * 1e-3 if np.max(sigma) > 0 else 1.0
            weights = 1.0 / np.maximum(sigma, floor) ** 2
        err = mean
    w = np.ones_like(u) if weights is None else np.asarray(weights, dtype=float)
    keep = err > 0
    u, v, w = u[keep], -np.log(err[keep]), w[keep]
    if u.size < 2:
        raise ValueError("fit_exponent needs at least two points with err > 0")
    uw = np.sum(w * u) / np.sum(w)
    suu = np.sum(w * (u - uw) ** 2)
    beta = np.sum(w * (u - uw) * v) / suu
    if known:
        stderr = 1.0 / np.sqrt(suu)
    else:
        resid = v - (np.sum(w * v) / np.sum(w) + beta * (u - uw))
        stderr = np.sqrt(np.sum(resid**2) / max(u.size - 2, 1) / suu) if u.size > 2 else np.nan
    return float(beta), float(stderr)


def predicted_exponents(d: int, d_par: int) -> dict[str, float]:
    """THEORY 7: beta_lazy = d / (3d - 2); beta_feature = (2d - 1) / (3d - 2) for d_par = 1,
    (d + (d - d_par) / 2) / (3d - 2) otherwise."""
    lazy = d / (3 * d - 2)
    if d_par == 1:
        feature = (2 * d - 1) / (3 * d - 2)
    else:
        feature = (d + (d - d_par) / 2) / (3 * d - 2)
    return {"lazy": lazy, "feature": feature}
