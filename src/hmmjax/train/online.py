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
Gaussians of all its steps as one fused elementwise computation, F^T c for all of them
at once (one matrix product for the Gaussian F, batched fast transforms for a structured
one, ``hmmjax.data.features``), the teacher's labels); only the student update runs
sequentially, inside ``lax.fori_loop``. The points of a grid that share a data stream
(``SGD.advance_many``) draw each block once: at large N, where a sample costs 2 D N flop
(Gaussian F) and a student step about 4 K N, a whole learning-rate sweep costs little more
than one of its points. A large ensemble (``SGD.batched``, which the engine calls with
``run.ensemble``) draws only the Gaussians of a block at once and makes each step's inputs
inside the loop (``SGD.step_inputs``): on the hidden manifold (D Gaussians a sample for N
inputs) a block's inputs for every member (block x members x N numbers) are then never
written out whole.
"""

from __future__ import annotations

import copy
import math
from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from hmmjax.core.activations import activation
from hmmjax.core.schedules import AbstractSchedule, cast_schedule, learning_rate
from hmmjax.data.base import AbstractDataModel, Batch
from hmmjax.models.two_layer import TwoLayer, root
from hmmjax.observables.metrics import Measurement, measure
from hmmjax.train.base import AbstractTrainer, register_trainer, run_blocks, run_steps

__all__ = ["SGD", "STEP_INPUTS_MIN", "delayed_block", "draw_block", "advance", "record_steps"]

STEP_INPUTS_MIN = 16
"""Samples a step (members x batch) from which ``SGD.batched`` makes each step's inputs
inside the step loop (the crossover measured on a 2-core CPU, E = 4 .. 256 members; not
measured on a GPU)."""


class SGD(AbstractTrainer):
    """Online SGD with the scalings of docs/theory.md section 1.

    ``lr`` and ``kappa`` are arrays, so they can be vmapped over in sweeps; ``batch`` (B)
    and ``train_second`` (train the second layer too) fix the compiled program.
    ``schedule`` (``hmmjax.core.schedules``): step s of ``advance`` uses the rate
    lr * schedule(s / N) for both layers; None (constant rate) leaves the step unchanged.
    ``step_inputs`` (static, set by ``batched``): a block's samples are made all at once,
    or each step's from the block's Gaussians inside the step loop; the samples are the
    same (to float rounding).
    """

    lr: Float[Array, ""]
    kappa: Float[Array, ""]
    batch: int = eqx.field(static=True, default=1)
    train_second: bool = eqx.field(static=True, default=False)
    schedule: AbstractSchedule | None = None
    step_inputs: bool = eqx.field(static=True, default=False)

    @classmethod
    def create(cls, lr, kappa=0.0, batch=1, train_second=False, dtype=jnp.float32,
               schedule=None):  # fmt: skip
        return cls(jnp.asarray(lr, dtype), jnp.asarray(kappa, dtype), batch, train_second,
                   cast_schedule(schedule, dtype))  # fmt: skip

    def batched(self, members: int) -> SGD:
        """This trainer for ``members`` data streams advanced side by side: it makes each
        step's inputs inside the step loop (``step_inputs``) when they come to at least
        ``STEP_INPUTS_MIN`` samples a step. A copy made without calling ``__init__`` (a
        subclass may have its own)."""
        wanted = members * self.batch >= STEP_INPUTS_MIN
        if wanted == self.step_inputs:
            return self
        new = copy.copy(self)
        object.__setattr__(new, "step_inputs", wanted)  # a static field of a frozen module
        return new

    def at_step(self, step: Int[Array, ""], n: int | Array) -> SGD:
        """This trainer with ``lr`` the rate of step ``step`` (time t = step / n)."""
        t = jnp.asarray(step, self.lr.dtype) / n
        return eqx.tree_at(lambda s: s.lr, self, learning_rate(self.lr, self.schedule, t))

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

    def advance_many(self, students, model, key, start, stop, block):
        """Q students (their trainers: ``self``, lr and kappa (Q,)) on one data stream:
        each block of samples is drawn once and every student trains on it.

        Many students (Q K >= block B): the block's steps as matrix products
        (``delayed_block``), so that the weights are read and written once a block
        instead of once a step; else, or for a subclass with its own ``step``, step after
        step (``step``, vmapped over Q)."""

        cls = type(self)
        if cls.advance is not SGD.advance:  # a subclass's own advance: one per student
            return AbstractTrainer.advance_many(self, students, model, key, start, stop, block)
        step = cls.step  # a subclass's own step (docs/guides/extending.md)
        if step is SGD.step and math.prod(students.w.shape[:2]) >= block * self.batch:
            draw = partial(_timed_block, model, key, block=block, batch=self.batch)
            update = jax.vmap(delayed_block, in_axes=(0, 0, None, None, None, None, None))

            def by_block(nets, drawn, i0, i1):
                data, steps = drawn
                x = data.x.reshape(-1, data.x.shape[-1])
                times = None if self.schedule is None else steps
                return update(self, nets, data, x @ x.T, i0, i1, times)  # the Gram: once a lane

            return run_blocks(students, draw, by_block, start, stop, block)
        draw, one = _stream(self, model, key, block)
        each = jax.vmap(one, in_axes=(0, 0, None))
        return run_steps(students, draw, partial(each, self), start, stop, block)

    def measure(self, student: TwoLayer, model: AbstractDataModel, test: Batch) -> Measurement:
        return measure(student, model, test)

    def monitor(self, m: Measurement) -> Float[Array, ""]:
        """The eg watched for divergence: analytic where available, else Monte Carlo."""
        return jnp.where(jnp.isnan(m.eg), m.eg_mc, m.eg)


def delayed_block(
    sgd: SGD,
    student: TwoLayer,
    data: Batch,
    gram: Float[Array, "bB bB"],
    i0: Int[Array, ""],
    i1: Int[Array, ""],
    steps: Int[Array, " b"] | None = None,
) -> TwoLayer:
    """The student after the steps i0 .. i1 - 1 of a block of b drawn steps (``data``:
    leaves (b, B, ...); ``gram``: X X^T of its b B inputs), the same steps as ``SGD.step``
    one after another, with the first layer updated once.

    Each step adds a rank-B term to w: w_{i+1} = a w_i + c_i X_i (a = 1 - kappa / N,
    c_i = (eta / sqrt N) (v / B) o coef_i^T). Hence w_i = P_i (w_0 + sum_{j<i} C_j X_j)
    with P_i = a^(steps done before i) and C_j = c_j / P_{j+1}, and the fields of step i
    are lambda_i = P_i (X_i w_0^T + sum_{j<i} X_i X_j^T C_j^T) / sqrt N: the products
    with w_0 and the Gram matrix are computed for the whole block at once, the steps
    themselves cost O(b B^2 K) each, and w is written once: w_0 P_b + P_b sum_j C_j X_j.
    Exact in exact arithmetic; in floating point the sums are grouped differently (the
    relative difference from ``SGD.step`` after a block is of the order of the rounding).
    Assumes kappa < N (a > 0), as any sensible weight decay. ``steps``: the global step
    counts of the block's steps, for the rates of ``sgd.schedule`` (None: the rate lr).
    """
    act = activation(student.g)
    b, B, N_in = data.x.shape
    n = student.n
    rn = root(n)
    X = data.x.reshape(b * B, N_in)
    lam0 = (X @ student.w.T).reshape(b, B, -1) / rn  # (b, B, K)
    G = gram.reshape(b, B, b, B) / rn
    a = 1 - sgd.kappa / n
    def one(carry, i):
        C, v, P = carry
        live = (i >= i0) & (i < i1)
        lr = sgd.lr if steps is None else sgd.at_step(steps[i], n).lr
        lam = P * (lam0[i] + jnp.einsum("jkc,jcd->dk", C, G[:, :, i, :]))  # (B, K)
        g_lam = act.fn(lam)
        delta = data.y[i] - g_lam @ v
        coef = act.deriv(lam) * delta[:, None]  # (B, K)
        c = (lr / rn) * coef.T * (v[:, None] / sgd.batch)  # (K, B)
        P_next = jnp.where(live, a * P, P)
        C = C.at[i].set(jnp.where(live, c / P_next, 0))
        if sgd.train_second:
            v = jnp.where(live, v + (lr / n) * (g_lam.T @ delta) / sgd.batch, v)
        return (C, v, P_next), None

    # initial carries built from the inputs: under shard_map they vary like them
    C0 = jnp.zeros_like(lam0).transpose(0, 2, 1)  # (b, K, B)
    (C, v, P), _ = jax.lax.scan(one, (C0, student.v, jnp.ones_like(a)), jnp.arange(b))
    w = P * (student.w + C.transpose(1, 0, 2).reshape(-1, b * B) @ X)
    return TwoLayer(w=w, v=v, g=student.g, dim=student.dim)


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
    blocks of ``block`` steps: their samples made at once by ``draw_block``, or each step's
    inside the loop with ``sgd.step_inputs``; step s at the rate of ``sgd.schedule``, if
    any)."""

    draw, step = _stream(sgd, model, key, block)
    return run_steps(student, draw, partial(step, sgd), start, stop, block)


def _stream(sgd: SGD, model: AbstractDataModel, key: PRNGKeyArray, block: int):
    """(draw, step) for ``run_steps``: ``draw(b0)`` gives the data of a block of steps and
    their global counts, ``step(sgd, student, drawn[i])`` one SGD step on step i's data.

    Either the samples of the whole block are made at once (``draw_block``), or, with
    ``sgd.step_inputs``, only their standard normals are drawn a block at a time
    (``AbstractDataModel.normals``) and each step makes its own samples from them
    (``realise``): for many members side by side the inputs of a block (block x members x
    N numbers) are then never written out whole, which makes an E = 256 ensemble 1.2-1.6x
    faster than whole blocks of 16 and 1.7-2.1x faster than whole blocks of 64 on a 2-core
    CPU (benchmarks/online.py), while for a single run the per-step products would cost
    more than they save. The samples are the same either way, to float rounding (the
    products are grouped differently). A data model with its own ``sample_steps`` always
    gets whole blocks."""
    step = type(sgd).step
    own_samples = type(model).sample_steps is not AbstractDataModel.sample_steps
    if not sgd.step_inputs or own_samples:
        return partial(_timed_block, model, key, block=block, batch=sgd.batch), _timed(step)

    def draw(first_step):
        steps = first_step + jnp.arange(block)
        return model.normals(key, steps, sgd.batch), steps

    def realised(sgd, student, normals):
        return step(sgd, student, model.realise(normals))

    return draw, _timed(realised)


def _timed_block(model, key, first_step, *, block: int, batch: int) -> tuple[Batch, Array]:
    """``draw_block`` and the global step counts of its steps (for ``sgd.schedule``)."""
    return draw_block(model, key, first_step, block, batch), first_step + jnp.arange(block)


def _timed(step):
    """``step(sgd, student, data)`` as a function of (sgd, student, (data, step count)): at
    the scheduled rate of that step when ``sgd.schedule`` is set."""

    def timed(sgd, student, drawn):
        data, s = drawn
        return step(sgd if sgd.schedule is None else sgd.at_step(s, student.n), student, data)

    return timed


def record_steps(N: int, t_max: float, n: int = 200, spacing: str = "log") -> np.ndarray:
    """Step counts at which to record: 0 and ``n`` times up to t_max (t = steps / N).

    ``spacing="log"`` spaces them logarithmically from t = 1/N (as the published code does);
    ``"linear"`` evenly. Duplicate step counts are dropped, so fewer may come back.
    """
    last = int(round(t_max * N))
    if spacing == "log":  # (n = 1: logspace would give its start, t = 1 / N, alone)
        t = np.logspace(0.0, math.log10(max(last, 1)), n) if n > 1 else np.array([last])
    elif spacing == "linear":
        t = np.linspace(last / n, last, n)
    else:
        raise ValueError(f"spacing={spacing!r} is not allowed; choose log or linear")
    return np.unique(np.concatenate([[0], np.round(t).astype(np.int64), [last]]))


register_trainer("sgd", SGD.create)
