"""Online SGD (docs/theory.md section 1) as pure functions: one step, the scanned loop, ensembles.

One step on a mini-batch of B fresh samples, with Delta = y - yhat averaged over the batch:

    w_k <- w_k + (eta / sqrt(N)) v_k < g'(lambda_k) Delta x >  - (kappa / N) w_k
    v_k <- v_k + (eta / N) < g(lambda_k) Delta >               (both layers only)

Time is t = steps / N. The data of step s is a pure function of (stream key, s): its
Gaussians are counter-based, threefry2x32(stream key, (s, position)) (see
``hmmjax.core.rng.normal_counter`` and ``AbstractDataModel.sample_steps``), so a run's
numbers depend only on its keys: not on how the steps are blocked, chunked between
recording points, or resumed.

Performance: the data of ``block`` consecutive steps is generated in one batched call (the
Gaussians of all its steps as one fused elementwise computation, F^T c as one matrix
product, the teacher's labels); only the student update runs sequentially, inside
``lax.fori_loop``.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from hmmjax.core.activations import activation
from hmmjax.data.base import AbstractDataModel, Batch
from hmmjax.models.two_layer import TwoLayer, root
from hmmjax.observables.metrics import Measurement, measure
from hmmjax.train.base import AbstractTrainer, register_trainer, run_steps

__all__ = ["SGD", "draw_block", "advance", "record_steps"]


class SGD(AbstractTrainer):
    """Online SGD with the scalings of docs/theory.md section 1.

    ``lr`` and ``kappa`` are arrays, so they can be vmapped over in sweeps; ``batch`` (B)
    and ``train_second`` (train the second layer too) fix the compiled program.
    """

    lr: Float[Array, ""]
    kappa: Float[Array, ""]
    batch: int = eqx.field(static=True, default=1)
    train_second: bool = eqx.field(static=True, default=False)

    @classmethod
    def create(cls, lr, kappa=0.0, batch=1, train_second=False, dtype=jnp.float32):
        return cls(jnp.asarray(lr, dtype), jnp.asarray(kappa, dtype), batch, train_second)

    def step(self, student: TwoLayer, data: Batch) -> TwoLayer:
        """One SGD step on the B samples in ``data`` (x: (B, N), y: (B,))."""
        act = activation(student.g)
        N = student.n
        lam = student.fields(data.x)  # (B, K)
        g_lam = act.fn(lam)
        delta = data.y - g_lam @ student.v  # (B,)
        coef = act.deriv(lam) * delta[:, None]  # (B, K)
        grad_w = (coef.T @ data.x) * (student.v[:, None] / self.batch)  # (K, N)
        w = student.w + (self.lr / root(N)) * grad_w - (self.kappa / N) * student.w
        v = student.v
        if self.train_second:
            v = v + (self.lr / N) * (g_lam.T @ delta) / self.batch
        return TwoLayer(w=w, v=v, g=student.g, dim=student.dim)

    # The trainer interface of the sweep engine (``hmmjax.train.base.AbstractTrainer``)

    def advance(self, student, model, key, start, stop, block):
        return advance(student, self, model, key, start, stop, block)

    def measure(self, student: TwoLayer, model: AbstractDataModel, test: Batch) -> Measurement:
        return measure(student, model, test)

    def monitor(self, m: Measurement) -> Float[Array, ""]:
        """The eg watched for divergence: analytic where available, else Monte Carlo."""
        return jnp.where(jnp.isnan(m.eg), m.eg_mc, m.eg)


def draw_block(
    model: AbstractDataModel, key: PRNGKeyArray, first_step: Int[Array, ""], block: int, batch: int
) -> Batch:
    """The data of steps first_step .. first_step + block - 1: leaves of shape (block, B, ...)."""
    return model.sample_steps(key, first_step + jnp.arange(block), batch)


def advance(
    student: TwoLayer,
    sgd: SGD,
    model: AbstractDataModel,
    key: PRNGKeyArray,
    start: Int[Array, ""],
    stop: Int[Array, ""],
    block: int = 64,
) -> TwoLayer:
    """Run the SGD steps start .. stop - 1 of the data stream ``key`` (``run_steps`` over
    blocks of ``block`` steps drawn by ``draw_block``)."""

    def draw(b0):
        return draw_block(model, key, b0, block, sgd.batch)

    return run_steps(student, draw, sgd.step, start, stop, block)


def record_steps(N: int, t_max: float, n: int = 200, spacing: str = "log") -> np.ndarray:
    """Step counts at which to record: 0 and ``n`` times up to t_max (t = steps / N).

    ``spacing="log"`` spaces them logarithmically from t = 1/N (as the published code does);
    ``"linear"`` evenly. Duplicate step counts are dropped, so fewer may come back.
    """
    last = int(round(t_max * N))
    if spacing == "log":
        t = np.logspace(0.0, math.log10(max(last, 1)), n)
    elif spacing == "linear":
        t = np.linspace(last / n, last, n)
    else:
        raise ValueError(f"spacing={spacing!r} is not allowed; choose log or linear")
    return np.unique(np.concatenate([[0], np.round(t).astype(np.int64), [last]]))


register_trainer("sgd", SGD.create)
