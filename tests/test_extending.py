"""Extending hmmjax without touching the package: a data model and a trainer defined here,
registered, and run as a grid through the code path of ``hmmjax run``.

- ``Rademacher``: inputs x with i.i.d. +-1 components, a two-layer teacher acting on x.
- ``NormalisedSGD``: online SGD whose first-layer step has a fixed length: the gradient
  direction scaled to norm eta sqrt(K) (a trainer the package does not have).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import Array, Float

from hmmjax import (
    AbstractDataModel,
    AbstractTrainer,
    TwoLayer,
    init_network,
    load_config,
    pad_network,
    register_data_model,
    register_trainer,
)
from hmmjax.cli import main
from hmmjax.config import ConfigError, config_from_dict
from hmmjax.core.activations import activation
from hmmjax.io import read_dataset
from hmmjax.observables import measure
from hmmjax.sweep import build
from hmmjax.train import draw_block, run_steps


class Rademacher(AbstractDataModel):
    """x_i = sign(z_i), z ~ N(0, I_N): E x x^T = I, teacher on x."""

    teacher: TwoLayer
    noise: Float[Array, ""]
    true_N: Float[Array, ""] | None = None

    @property
    def groups(self) -> tuple[int, ...]:
        return (self.input_dim,)

    @property
    def input_dim(self) -> int:
        return self.teacher.input_dim

    def inputs(self, zT):
        x = jnp.sign(zT.T)
        if self.true_N is not None:  # padded: the components past the true N are zero
            x = jnp.where(jnp.arange(x.shape[-1]) < self.true_N, x, 0.0)
        return x, x

    def pad(self, N, D, M):
        """Zero-padded to a grid's largest N and M (the true N kept for the scalings)."""
        lead = self.teacher.w.shape[:-2]
        n_true = jnp.broadcast_to(jnp.asarray(self.n, self.dtype), lead)
        return Rademacher(pad_network(self.teacher, M, N), self.noise, true_N=n_true)


def create_rademacher(key, *, N, M, D=None, f="sign", g="erf", noise=0.0,
                      teacher_scaling="none", dtype=jnp.float32) -> Rademacher:  # fmt: skip
    teacher = init_network(key, M, N, g=g, scaling=teacher_scaling, dtype=dtype)
    return Rademacher(teacher=teacher, noise=jnp.asarray(noise, dtype))


class NormalisedSGD(AbstractTrainer):
    """w <- w + eta sqrt(K) grad / |grad| (the SGD direction, a fixed step length)."""

    lr: Float[Array, ""]
    batch: int = eqx.field(static=True, default=1)

    @classmethod
    def create(cls, lr, kappa=0.0, batch=1, train_second=False, dtype=jnp.float32):
        return cls(jnp.asarray(lr, dtype), batch)

    def step(self, student: TwoLayer, data) -> TwoLayer:
        act = activation(student.g)
        lam = student.fields(data.x)
        delta = data.y - act.fn(lam) @ student.v
        grad = ((act.deriv(lam) * delta[:, None]).T @ data.x) * student.v[:, None]
        size = jnp.sqrt(jnp.sum(grad**2)) + 1e-30
        step = self.lr * jnp.sqrt(grad.shape[0]) * grad / size
        return TwoLayer(w=student.w + step, v=student.v, g=student.g, dim=student.dim)

    def advance(self, state, data, key, start, stop, block):
        return run_steps(state, lambda b0: draw_block(data, key, b0, block, self.batch),
                         self.step, start, stop, block)  # fmt: skip

    def measure(self, state, data, test):
        return measure(state, data, test)

    def monitor(self, m):
        return m.eg_mc


register_data_model("rademacher", create_rademacher)
register_trainer("normalised_sgd", NormalisedSGD.create)

CONFIG = """
[data]
model = "rademacher"
N = 50
[teacher]
M = 1
[student]
K = 2
g = "erf"
[sgd]
trainer = "normalised_sgd"
lr = 0.05
[run]
t_max = 4.0
n_times = 5
ensemble = 2
test_size = 500
[grid]
lr = [0.05, 0.2]
K = [1, 2]
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy")
    path = folder / "toy.toml"
    path.write_text(CONFIG)
    out = folder / "toy.nc"
    # --plugin imports this module (already imported here): the path a user takes
    assert main(["run", str(path), "--out", str(out), "-q", "--plugin", __name__]) == 0
    return read_dataset(out), load_config(path)


def test_toy_grid_runs_through_hmmjax_run(results):
    ds, _ = results
    assert dict(ds.sizes) == {"lr": 2, "K": 2, "member": 2, "t": ds.sizes["t"], "k": 2,
                              "l": 2, "m": 1}  # fmt: skip
    assert np.all(np.isnan(ds.eg))  # no closed form for this model: Monte Carlo only
    eg = ds.eg_mc.values
    assert np.all(np.isfinite(eg))
    assert not ds.diverged.values.any()
    # the error falls everywhere; at lr = 0.2 a K = 1 student halves it by t = 4
    assert np.all(eg[..., -1] < eg[..., 0])
    assert np.all(eg[1, 0, :, -1] < 0.5 * eg[1, 0, :, 0])


def test_toy_point_equals_its_own_trainer_loop(results):
    """The grid's point (lr = 0.2, K = 2), member 1 equals the trainer and data model
    used by hand, step by step (the engine adds nothing of its own)."""
    ds, cfg = results
    point = cfg.replace(grid={}, sgd={"lr": 0.2}, student={"K": 2})
    setup = build(point)
    trainer = NormalisedSGD.create(0.2)
    member = jax.tree.map(lambda a: a[1], setup.students)
    steps = ds.step.values
    w = member
    for s in range(int(steps[-1])):
        batch = setup.model.sample_steps(setup.stream_keys[1], jnp.asarray(s), 1)
        w = trainer.step(w, batch)
    expected = 0.5 * np.mean((np.asarray(setup.test.y) - np.asarray(w(setup.test.x))) ** 2)
    got = ds.eg_mc.sel(lr=0.2, K=2).isel(member=1, t=-1).item()
    assert got == pytest.approx(expected, rel=1e-4)


def test_unknown_names_are_refused_by_config():
    with pytest.raises(ConfigError, match=r"sgd.trainer = \"nope\": expected one of"):
        config_from_dict({"sgd": {"trainer": "nope"}})
    cfg = config_from_dict({"data": {"model": "rademacher"}})
    assert cfg.data.model == "rademacher"
