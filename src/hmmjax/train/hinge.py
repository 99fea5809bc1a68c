"""The trainer of the invariant-manifold experiments: full-batch gradient descent on the
hinge loss of an alpha-trick network with an adaptive step (docs/theory.md section 7;
Paccolat, Petrini, Geiger, Tyloo, Wyart, J. Stat. Mech. (2021) 044001).

The network is any ``hmmjax.models.alpha.AlphaModel``: the trainer uses its gradient of
the loss (``hinge``), its step scale eta / dt (``step_scale``), its mask of padded parts
(``mask_grads``) and its recorded weight change (``weight_change``). What follows is
written for the two-layer net (``hmmjax.models.alpha_net``, step scale h); the
convolutional net (``hmmjax.models.alpha_cnn``, NTK parametrisation) has eta = dt, and on
images (no informative directions) the compression measurements are NaN.

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
unchanged). Measurements are taken at ``iteration_records`` (log-spaced iteration counts):
``advance`` iterates one lane up to the next record (the engine's recording interval), so
measuring costs nothing inside the loop.

Measurements (``InvariantMeasurement``): training loss, number of samples with margin
< 1, training and test errors (fraction with y F <= 0; F = 0 counts as an error), the
growth of the first layer dW = omega - omega0 along the informative and the other
directions (per-direction RMS over units)

    g_par = sqrt(mean_i sum_{j < d_par} dW_ij^2 / d_par),
    g_perp = sqrt(mean_i sum_{j >= d_par} dW_ij^2 / (d - d_par)),

their ratio (the compression), and the same RMS of the weights omega themselves, Lambda
= omega_par / omega_perp (1 at initialisation up to sampling, what Paccolat et al. plot);
all six NaN on images, which have no known informative directions. The relative change
of the weights is the network's ``weight_change``: |omega - omega0| / |omega0| for the
two-layer net, |w - w0| / |w0| over every weight and bias for the convolutional one.

Lanes. On the sweep engine a point is one (alpha, p, h) and its members are seeds
(``hmmjax.sweep.invariant``). Training sets are padded to the grid's largest p with a sample
mask (the loss averages over the true p); networks are padded to the largest h with zero
units and a unit mask, so padded units have zero gradients and never move (the trainer also
masks their gradients). The true p and h enter the 1/p, 1/h and step-size scalings. The
convolutional net is not padded (every point of a grid has the same channels).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from hmmjax.core.trees import tree_norm
from hmmjax.data.images import ImageTask
from hmmjax.data.invariant import InvariantData
from hmmjax.models.alpha import AlphaModel
from hmmjax.observables.directions import compression
from hmmjax.train.base import AbstractTrainer

__all__ = [
    "InvariantMeasurement",
    "iteration_records",
    "HingeSet",
    "HingeTest",
    "HingeState",
    "InvariantTrainer",
]


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
    rel_change: Float[Array, ""]  # |w - w0| / |w0| (Frobenius; ``weight_change``)
    dt: Float[Array, ""]  # the current step in time units (eta = step_scale dt)
    time: Float[Array, ""]  # t = sum of accepted dt
    steps: Int[Array, ""]  # iterations done (accepted or not)
    accepted: Int[Array, ""]  # accepted steps
    diverged: Bool[Array, ""]  # a fixed-step lane whose loss turned non-finite (stopped)


def iteration_records(max_steps: int, n_records: int = 30) -> tuple[int, ...]:
    """0 and about ``n_records`` log-spaced iteration counts up to ``max_steps``."""
    s = np.unique(np.round(np.logspace(0, np.log10(max_steps), n_records)).astype(int))
    return (0, *(int(v) for v in s))


class HingeSet(eqx.Module):
    """One member's training set, padded to the grid's largest p with a sample mask, its
    initial network (a two-layer one padded to the largest h) and alpha."""

    net0: AlphaModel
    x: Float[Array, "P d"]
    y: Float[Array, " P"]
    smask: Float[Array, " P"]
    alpha: Float[Array, ""]


class HingeTest(NamedTuple):
    """One member's test set."""

    x: Float[Array, "T d"]
    y: Float[Array, " T"]


class HingeState(NamedTuple):
    """A member's state: parameters, gradients and margins at them, the adaptive step,
    counters and flags."""

    params: Any
    grads: Any
    margins: Array
    loss: Array
    dt: Array
    time: Array
    steps: Array
    accepted: Array
    done: Array
    diverged: Array


class InvariantTrainer(AbstractTrainer):
    """Full-batch GD on the hinge loss with the (adaptive) step of the module docstring.

    All fields are static (they fix the compiled program)."""

    data: InvariantData | ImageTask = eqx.field(static=True, default=InvariantData())
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
        return iteration_records(self.max_steps, self.n_records)

    def dt0(self, alpha: ArrayLike) -> Array:
        """The initial (for adaptive=False: fixed) step in time units, lr min(1, alpha)."""
        return self.lr * jnp.minimum(1.0, alpha)

    def _grad(self, data: HingeSet, params):
        net = data.net0.replace(params)
        return net.hinge(data.net0, data.x, data.y, data.smask, data.alpha)

    def init(self, data: HingeSet) -> HingeState:
        """A member's state at its initial network."""
        grads, margins, loss = self._grad(data, data.net0.params)
        dtype = data.alpha.dtype
        zero = jnp.zeros((), jnp.int32)
        return HingeState(data.net0.params, grads, margins, loss, self.dt0(data.alpha),
                      jnp.zeros((), dtype), zero, zero, loss == 0, jnp.zeros((), bool))  # fmt: skip

    def step(self, data: HingeSet, st: HingeState) -> HingeState:
        """One iteration: a trial step, accepted or rejected (see the module docstring)."""
        grads = data.net0.mask_grads(st.grads)
        eta = data.net0.step_scale * st.dt
        tx = optax.sgd(eta)
        updates, _ = tx.update(grads, tx.init(st.params))
        params = optax.apply_updates(st.params, updates)
        new_grads, margins, loss = self._grad(data, params)
        dF = jnp.max(jnp.abs(margins - st.margins) * data.smask)
        dw = tree_norm(updates) / tree_norm(st.params)
        finite = jnp.isfinite(loss) & jnp.isfinite(dw)
        if self.adaptive:
            ok = finite & (dF <= self.max_dF) & (dw <= self.max_dw)
            small = (dF <= 0.5 * self.max_dF) & (dw <= 0.5 * self.max_dw)
            dt = jnp.where(ok, jnp.where(small, self.grow * st.dt, st.dt), self.shrink * st.dt)
        else:
            ok, dt = finite, st.dt
        new = HingeState(params, new_grads, margins, loss, dt, st.time + st.dt, st.steps + 1,
                     st.accepted + 1, loss == 0, st.diverged)  # fmt: skip
        diverged = ~finite & (not self.adaptive)  # fixed steps: stop a diverging lane
        kept = st._replace(dt=dt, steps=st.steps + 1, done=st.done | diverged,
                           diverged=st.diverged | diverged)  # fmt: skip
        return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, kept)

    # the trainer interface of the sweep engine (``hmmjax.train.base.AbstractTrainer``)

    def advance(self, st: HingeState, data: HingeSet, key, start, stop, block) -> HingeState:
        """Iterate until the member is done (zero training loss, or stopped) or has made
        ``stop`` iterations in all (``key``, ``start`` and ``block`` are not used: the
        data is the fixed training set and the iteration count is in the state)."""
        return jax.lax.while_loop(
            lambda s: ~s.done & (s.steps < stop), lambda s: self.step(data, s), st
        )

    def measure(self, st: HingeState, data: HingeSet, test: HingeTest) -> InvariantMeasurement:
        net = data.net0.replace(st.params)
        T = test.y.shape[0]
        block = min(self.test_block, T)
        pad = -T % block  # padded test samples have y = 0 and do not count
        xt = jnp.pad(test.x, ((0, pad), (0, 0))).reshape(-1, block, self.data.d)
        yt = jnp.pad(test.y, (0, pad)).reshape(xt.shape[:2])

        def errors(b):
            x, y = b
            return jnp.sum((y * net.output(data.net0, x, data.alpha) <= 0) & (y != 0))

        wrong = jax.lax.map(errors, (xt, yt))
        if self.data.d_par:
            g_par, g_perp, w_par, w_perp = compression(net, data.net0, self.data.d_par)
        else:  # no informative directions (images): not measured
            g_par = g_perp = w_par = w_perp = jnp.full((), jnp.nan, st.loss.dtype)
        p = jnp.sum(data.smask)
        return InvariantMeasurement(
            loss=st.loss,
            n_unfit=jnp.sum((st.margins < 1) * data.smask).astype(jnp.int32),
            err_train=jnp.sum((st.margins <= 0) * data.smask) / p,
            err_test=jnp.sum(wrong) / T,
            g_par=g_par,
            g_perp=g_perp,
            ratio=g_par / g_perp,
            w_par=w_par,
            w_perp=w_perp,
            Lambda=w_par / w_perp,
            rel_change=net.weight_change(data.net0),
            dt=st.dt,
            time=st.time,
            steps=st.steps,
            accepted=st.accepted,
            diverged=st.diverged,
        )

    def monitor(self, m: InvariantMeasurement) -> Float[Array, ""]:
        """Nothing for the engine to watch: the trainer stops a lane itself (zero loss,
        or a fixed-step lane whose loss turned non-finite, flagged ``diverged``), and a
        rejected adaptive step leaves the state as it was."""
        return jnp.zeros_like(m.loss)

    def run(self, data: HingeSet, test: HingeTest) -> tuple[InvariantMeasurement, tuple]:
        """One member in one call (vmap it): the measurements at ``steps`` and the final
        parameters. The sweep engine computes the same, chunk by chunk."""

        def record(st, stop):
            st = self.advance(st, data, None, None, stop, 1)
            return st, self.measure(st, data, test)

        st, history = jax.lax.scan(record, self.init(data), jnp.asarray(self.steps))
        return history, st.params
