"""Online SGD (THEORY.md section 1) as pure functions: one step, the scanned loop, ensembles.

One step on a mini-batch of B fresh samples, with Delta = y - yhat averaged over the batch:

    w_k <- w_k + (eta / sqrt(N)) v_k < g'(lambda_k) Delta x >  - (kappa / N) w_k
    v_k <- v_k + (eta / N) < g(lambda_k) Delta >               (both layers only)

Time is t = steps / N. The data of step s is a pure function of (stream key, s): its
Gaussians are counter-based, threefry2x32(stream key, (s, position)) (see
``hmmjax.rng.normal_counter`` and ``DataModel.sample_steps``), so a run's numbers depend
only on its keys: not on how the steps are blocked, chunked between recording points, or
resumed.

Performance: the data of ``block`` consecutive steps is generated in one batched call (the
Gaussians of all its steps as one fused elementwise computation, F^T c as one matrix
product, the teacher's labels); only the student update runs sequentially, inside
``lax.fori_loop``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from hmmjax.activations import activation
from hmmjax.data import Batch, DataModel
from hmmjax.metrics import Measurement, measure
from hmmjax.networks import TwoLayer, root

__all__ = ["SGD", "advance", "record_steps", "run_steps"]


class SGD(eqx.Module):
    """Online SGD with the scalings of THEORY.md section 1.

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

    # The trainer interface of the sweep engine (``hmmjax.sweep``): advance a member's
    # state, measure it, and the scalar watched for divergence.

    def advance(self, student, model, key, start, stop, block):
        return advance(student, self, model, key, start, stop, block)

    def measure(self, student: TwoLayer, model: DataModel, test: Batch) -> Measurement:
        return measure(student, model, test)

    @staticmethod
    def monitor(m: Measurement) -> Float[Array, ""]:
        """The eg watched for divergence: analytic where available, else Monte Carlo."""
        return jnp.where(jnp.isnan(m.eg), m.eg_mc, m.eg)


def draw_block(
    model: DataModel, key: PRNGKeyArray, first_step: Int[Array, ""], block: int, batch: int
) -> Batch:
    """The data of steps first_step .. first_step + block - 1: leaves of shape (block, B, ...)."""
    return model.sample_steps(key, first_step + jnp.arange(block), batch)


def run_steps(
    carry: Any,
    draw: Callable[[Int[Array, ""]], Any],
    step: Callable[[Any, Any], Any],
    start: Int[Array, ""],
    stop: Int[Array, ""],
    block: int,
) -> Any:
    """Apply ``step(carry, data[i])`` for the steps start .. stop - 1, where ``draw(b0)``
    gives the data of the ``block`` steps b0 .. b0 + block - 1 (leaves of leading size
    ``block``).

    Blocks are aligned to multiples of ``block`` in the global step count, so a block cut
    by a recording point is drawn again in full (at most one extra block per interval).
    """

    def segment(c):
        s, net = c
        b0 = (s // block) * block
        data = draw(b0)
        i1 = jnp.minimum(stop - b0, block)

        def one(i, net):
            return step(net, jax.tree.map(lambda a: a[i], data))

        net = jax.lax.fori_loop(s - b0, i1, one, net)
        return b0 + i1, net

    _, carry = jax.lax.while_loop(lambda c: c[0] < stop, segment, (start, carry))
    return carry


def advance(
    student: TwoLayer,
    sgd: SGD,
    model: DataModel,
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
