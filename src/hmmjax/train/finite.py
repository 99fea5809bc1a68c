"""Training on a finite training set: P samples drawn once, many passes (``finite.P > 0``).

The P samples come from a data model (the first P samples of a data stream, with batch 1,
so that a long enough online run would see exactly these samples) or from a real data
set (``hmmjax.data.real``: scikit-learn's digits, an MNIST file), split into training and
test parts by ``run.seed``. Labels (``finite.labels``): the teacher's output, its sign,
or the signs shuffled across the training samples ("random": memorisation; the test
labels stay true). Every
ensemble member trains on the same set from its own initial weights and its own sample
order (``finite.shuffle``: a new permutation every epoch).

One step is one mini-batch of ``sgd.batch`` samples; an epoch is P / batch steps, and
``sgd.batch = P`` is full-batch gradient descent. The update is an optax optimiser
(``finite.optimizer``) on the gradient of 0.5 mean (y - yhat)^2, with the scalings of
online SGD (docs/theory.md 1): the first layer's gradient as is, the second layer's divided by N,
and the weight decay -(kappa / N) w applied outside the optimiser. With ``optimizer =
"sgd"`` a step is exactly the online step of ``online.SGD`` on the same samples (tested).
Time is t = steps / N as for online runs.

The trainer plugs into the sweep engine (``hmmjax.sweep.engine``): grids over K, lr, seeds, data
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
import optax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from hmmjax.data.base import Batch
from hmmjax.models.two_layer import TwoLayer
from hmmjax.observables.errors import (
    classification_error,
    fitted,
    mse_between,
    sign_agreement,
)
from hmmjax.train.base import AbstractTrainer, run_steps

__all__ = ["TrainingSet", "TestSet", "FiniteMeasurement", "FiniteTrainer", "training_batch"]


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


class FiniteTrainer(AbstractTrainer):
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

    # the trainer interface of the sweep engine (``hmmjax.train.base.AbstractTrainer``)

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

    def monitor(self, m: FiniteMeasurement) -> Float[Array, ""]:
        """The training loss is watched for divergence."""
        return m.loss_train


def training_batch(model, key: PRNGKeyArray, P: int) -> Batch:
    """The first P samples of the data stream ``key`` with batch 1 (noisy labels)."""
    b = model.sample_steps(key, jnp.arange(P), 1)
    return Batch(x=b.x[:, 0], y=b.y[:, 0], z=b.z[:, 0])
