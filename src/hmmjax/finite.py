"""Training on a finite training set: P samples drawn once, many passes (``finite.P > 0``).

The P samples come from a data model (the first P samples of a data stream, with batch 1,
so that a long enough online run would see exactly these samples) or from a real data
set (``hmmjax.datasets``: scikit-learn's digits, an MNIST file), split into training and
test parts by ``run.seed``. Labels (``finite.labels``): the teacher's output, its sign,
or the signs shuffled across the training samples ("random": memorisation; the test
labels stay true). Every
ensemble member trains on the same set from its own initial weights and its own sample
order (``finite.shuffle``: a new permutation every epoch).

One step is one mini-batch of ``sgd.batch`` samples; an epoch is P / batch steps, and
``sgd.batch = P`` is full-batch gradient descent. The update is an optax optimiser
(``finite.optimizer``) on the gradient of 0.5 mean (y - yhat)^2, with the scalings of
online SGD (THEORY 1): the first layer's gradient as is, the second layer's divided by N,
and the weight decay -(kappa / N) w applied outside the optimiser. With ``optimizer =
"sgd"`` a step is exactly the online step of ``online.SGD`` on the same samples (tested).
Time is t = steps / N as for online runs.

The trainer plugs into the sweep engine (``hmmjax.sweep``): grids over K, lr, seeds, data
models, ensembles, devices, checkpoints and divergence flags work as for online runs.
What is recorded at each time (``FiniteMeasurement``): test and training errors (0.5 MSE
and the classification error of the sign), the agreement of the test predictions with
the best linear predictor fitted to the same training set (phenomenon 1 of the PRX
paper), and which training samples are fitted, y yhat > 0 (phenomenon 2).
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from hmmjax.config import REAL_DATA
from hmmjax.data import Batch
from hmmjax.networks import TwoLayer, pad_network, pad_tail
from hmmjax.online import run_steps
from hmmjax.phenomena import (
    classification_error,
    fitted,
    linear_predictor,
    mse_between,
    sign_agreement,
)

__all__ = [
    "FiniteMeasurement",
    "FiniteTrainer",
    "TestSet",
    "TrainingSet",
    "build_finite_lanes",
    "training_batch",
]


class TrainingSet(eqx.Module):
    """P training samples x (P, N), labels y (P,); the order they are visited in."""

    x: Float[Array, "P N"]
    y: Float[Array, " P"]
    shuffle: bool = eqx.field(static=True, default=True)

    @property
    def size(self) -> int:
        return self.y.shape[-1]

    def order(self, key: PRNGKeyArray, epoch: Int[Array, ""], batch: int) -> Int[Array, "S B"]:
        """The sample indices of the P / batch steps of ``epoch``: a permutation drawn
        from (key, epoch), or 0 .. P - 1 without shuffling."""
        P = self.size
        if self.shuffle:
            perm = jax.random.permutation(jax.random.fold_in(key, epoch), P)
        else:
            perm = jnp.arange(P)
        return perm.reshape(P // batch, batch)


class TestSet(NamedTuple):
    """Test inputs and clean labels, and the linear predictor's outputs on them."""

    x: Float[Array, "T N"]
    y: Float[Array, " T"]
    y_lin: Float[Array, " T"]


class FiniteMeasurement(NamedTuple):
    """Recorded at each time, per member."""

    eg_mc: Float[Array, ""]  # 0.5 mean (y - yhat)^2 on the test set
    err_test: Float[Array, ""]  # test classification error, fraction with y yhat <= 0
    loss_train: Float[Array, ""]  # 0.5 mean (y - yhat)^2 on the training set
    err_train: Float[Array, ""]  # training classification error
    agree_lin: Float[Array, ""]  # fraction of test inputs with sign(yhat) = sign(linear)
    mse_lin: Float[Array, ""]  # 0.5 mean (yhat - linear)^2 on the test set
    fitted: Bool[Array, " P"]  # training samples with y yhat > 0


class FiniteTrainer(eqx.Module):
    """An optax optimiser with the scalings of online SGD; ``lr`` and ``kappa`` are
    arrays (batched over grid points), the rest fixes the compiled program."""

    lr: Float[Array, ""]
    kappa: Float[Array, ""]
    batch: int = eqx.field(static=True, default=1)
    train_second: bool = eqx.field(static=True, default=False)
    optimizer: str = eqx.field(static=True, default="sgd")
    momentum: float = eqx.field(static=True, default=0.9)

    def transform(self) -> optax.GradientTransformation:
        if self.optimizer == "sgd":
            return optax.sgd(self.lr)
        if self.optimizer == "momentum":
            return optax.sgd(self.lr, momentum=self.momentum)
        if self.optimizer == "adam":
            return optax.adam(self.lr)
        raise ValueError(f"optimizer={self.optimizer!r}; choose sgd, momentum or adam")

    def init(self, student: TwoLayer):
        """A member's state: the network and its optimiser state."""
        return student, self.transform().init((student.w, student.v))

    def step(self, state, x: Float[Array, "B N"], y: Float[Array, " B"]):
        """One optimiser step on the mini-batch (x, y)."""
        net, opt_state = state

        def loss(params):
            w, v = params
            out = TwoLayer(w=w, v=v, g=net.g, dim=net.dim)(x)
            return 0.5 * jnp.mean((y - out) ** 2)

        N = net.n
        gw, gv = jax.grad(loss)((net.w, net.v))
        gv = gv / N if self.train_second else jnp.zeros_like(gv)
        (uw, uv), opt_state = self.transform().update((gw, gv), opt_state, (net.w, net.v))
        w = net.w + uw - (self.kappa / N) * net.w
        v = net.v + uv if self.train_second else net.v
        return TwoLayer(w=w, v=v, g=net.g, dim=net.dim), opt_state

    # the trainer interface of the sweep engine (see online.SGD)

    def advance(self, state, data: TrainingSet, key, start, stop, block):
        """Steps start .. stop - 1; the sample order is drawn one epoch at a time, so
        ``block`` is replaced by the steps per epoch."""
        P = data.size
        per_epoch = P // self.batch

        def draw(b0):
            return data.order(key, b0 // per_epoch, self.batch)

        def step(state, idx):
            if self.batch == P:  # full batch: the order does not matter
                return self.step(state, data.x, data.y)
            return self.step(state, data.x[idx], data.y[idx])

        return run_steps(state, draw, step, start, stop, per_epoch)

    def measure(self, state, data: TrainingSet, test: TestSet) -> FiniteMeasurement:
        net = state[0]
        y_test, y_train = net(test.x), net(data.x)
        return FiniteMeasurement(
            eg_mc=mse_between(test.y, y_test),
            err_test=classification_error(test.y, y_test),
            loss_train=mse_between(data.y, y_train),
            err_train=classification_error(data.y, y_train),
            agree_lin=sign_agreement(y_test, test.y_lin),
            mse_lin=mse_between(y_test, test.y_lin),
            fitted=fitted(data.y, y_train),
        )

    @staticmethod
    def monitor(m: FiniteMeasurement) -> Float[Array, ""]:
        """The training loss is watched for divergence."""
        return m.loss_train


# --- building the lanes of a grid -----------------------------------------------------


def _signs(y: Array) -> Array:
    return jnp.where(y >= 0, 1.0, -1.0).astype(y.dtype)


def training_batch(model, key: PRNGKeyArray, P: int) -> Batch:
    """The first P samples of the data stream ``key`` with batch 1 (noisy labels)."""
    b = model.sample_steps(key, jnp.arange(P), 1)
    return Batch(x=b.x[:, 0], y=b.y[:, 0], z=b.z[:, 0])


def _sets(cfg, keys, dtype):
    """(x_train, y_train, x_test, y_test, students) of a point, labels as
    ``finite.labels``: a data model's set-up is drawn as for an online run
    (``simulate.build``: model, students, test set), the training set from its own key."""
    from hmmjax.simulate import build, draw_students

    f = cfg.finite
    if cfg.data.model in REAL_DATA:
        from hmmjax.datasets import load, split

        train, test = split(load(cfg.data.model, cfg.data.path), f.P, cfg.run.test_size,
                            cfg.run.seed)  # fmt: skip
        arrays = (jnp.asarray(a, dtype) for a in (train.x, train.y, test.x, test.y))
        return (*arrays, draw_students(cfg, keys.students))
    setup = build(cfg)
    train = training_batch(setup.model, keys.train, f.P)
    y_train, y_test = train.y, setup.test.y
    if f.labels != "teacher":
        y_train, y_test = _signs(y_train), _signs(y_test)
    return train.x, y_train, setup.test.x, y_test, setup.students


def _point(cfg, sizes) -> tuple:
    """One grid point, padded to ``sizes`` = (K, N) unless None: (states, trainer, data,
    keys, test)."""
    from hmmjax.simulate import _dtype, run_keys

    dtype = _dtype(cfg)
    keys = run_keys(cfg)
    x, y, x_test, y_test, students = _sets(cfg, keys, dtype)
    if cfg.finite.labels == "random":
        y = y[jax.random.permutation(jax.random.fold_in(keys.train, 1), y.shape[0])]
    w_lin, b_lin = linear_predictor(x, y)
    test = TestSet(x=x_test, y=y_test, y_lin=x_test @ w_lin + b_lin)
    if sizes is not None:
        K, N = sizes
        students = pad_network(students, K, N)
        x, test = pad_tail(x, (N,)), test._replace(x=pad_tail(test.x, (N,)))
    trainer = FiniteTrainer(
        lr=jnp.asarray(cfg.sgd.lr, dtype),
        kappa=jnp.asarray(cfg.sgd.kappa, dtype),
        batch=cfg.sgd.batch,
        train_second=cfg.student.train_second,
        optimizer=cfg.finite.optimizer,
        momentum=cfg.finite.momentum,
    )
    states = jax.vmap(trainer.init)(students)
    data = TrainingSet(x=x, y=y, shuffle=cfg.finite.shuffle)
    return states, trainer, data, keys.streams, test


def build_finite_lanes(cfgs):
    """Every point of a finite-set grid, padded to the grid's largest K and N and stacked
    (a ``sweep.Lanes``)."""
    from hmmjax.sweep import Lanes, stack

    shapes = {(c.student.K, c.data.N) for c in cfgs}
    sizes = tuple(max(s) for s in zip(*shapes, strict=True)) if len(shapes) > 1 else None
    return stack([Lanes(*_point(c, sizes)) for c in cfgs])


def epochs(cfgs, times: np.ndarray) -> np.ndarray | None:
    """Epochs at the recording times, t N batch / P (None if the points differ)."""
    per = {c.data.N * c.sgd.batch / c.finite.P for c in cfgs}
    return times * per.pop() if len(per) == 1 else None
