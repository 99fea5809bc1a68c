"""Finite training sets: the optax loop against the online loop, full-batch GD by hand,
sample orders, labels, padding, checkpoints, and the config checks."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import small_config

from hmmjax.config.schema import ConfigError
from hmmjax.data.base import make_data_model
from hmmjax.experiments import check_config, simulate
from hmmjax.models.two_layer import init_network
from hmmjax.sweep.finite import build_finite_lanes
from hmmjax.sweep.lanes import point_configs
from hmmjax.train.finite import FiniteTrainer, TrainingSet, training_batch
from hmmjax.train.online import SGD, advance

N, P = 30, 120


def _setup(dtype=jnp.float64):
    k_model, k_net, k_data = jax.random.split(jax.random.PRNGKey(3), 3)
    model = make_data_model(k_model, "hmm", N=N, M=2, D=8, f="sign", g="erf", dtype=dtype)
    net = init_network(k_net, 3, N, second_layer="gaussian", g="erf", dtype=dtype)
    return model, net, k_data


@pytest.mark.default_codegen
@pytest.mark.parametrize("train_second, kappa", [(False, 0.0), (True, 0.05)])
def test_one_pass_in_order_is_the_online_run_on_the_same_samples(train_second, kappa):
    """optimizer = sgd, batch 1, no shuffling, one epoch: exactly online SGD on the
    first P samples of the same data stream (autodiff against the hand-written update)."""
    with jax.enable_x64(True):
        model, net, key = _setup()
        lr = 0.7
        online = advance(net, SGD.create(lr, kappa, 1, train_second, jnp.float64), model, key,
                         0, P, block=16)  # fmt: skip
        batch = training_batch(model, key, P)
        data = TrainingSet(x=batch.x, y=batch.y, shuffle=False)
        trainer = FiniteTrainer(jnp.asarray(lr), jnp.asarray(kappa), 1, train_second)
        run = jax.jit(lambda state, data, key: trainer.advance(state, data, key, 0, P, 0))
        state = run(trainer.init(net), data, key)
        finite = state[0]
    assert np.abs(np.asarray(online.w - net.w)).max() > 0.05  # the run moved the weights
    np.testing.assert_allclose(finite.w, online.w, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(finite.v, online.v, rtol=1e-11, atol=1e-13)


def test_full_batch_gradient_descent_by_hand():
    """batch = P: w <- w - lr dL/dw with L = 0.5 mean (y - yhat)^2, by NumPy."""
    with jax.enable_x64(True):
        model, net, key = _setup()
        batch = training_batch(model, key, P)
        data = TrainingSet(x=batch.x, y=batch.y)
        trainer = FiniteTrainer(jnp.asarray(0.5), jnp.asarray(0.0), P)
        state = trainer.advance(trainer.init(net), data, key, 0, 5, 0)
    x, y = np.asarray(batch.x), np.asarray(batch.y)
    w, v = np.asarray(net.w), np.asarray(net.v)
    from scipy.special import erf

    for _ in range(5):
        lam = x @ w.T / np.sqrt(N)
        delta = y - erf(lam / np.sqrt(2)) @ v
        gprime = np.sqrt(2 / np.pi) * np.exp(-(lam**2) / 2)
        w = w + 0.5 / np.sqrt(N) * ((delta[:, None] * gprime).T @ x) * v[:, None] / P
    np.testing.assert_allclose(state[0].w, w, rtol=1e-10)


def test_momentum_zero_is_sgd_and_adam_moves_and_lowers_the_loss():
    with jax.enable_x64(True):
        model, net, key = _setup()
        batch = training_batch(model, key, P)
        data = TrainingSet(x=batch.x, y=batch.y)
        runs = {}
        for name, opt, mom in (("sgd", "sgd", 0.9), ("mom0", "momentum", 0.0),
                               ("adam", "adam", 0.9)):  # fmt: skip
            tr = FiniteTrainer(jnp.asarray(0.05), jnp.asarray(0.0), 10, False, opt, mom)
            runs[name] = (tr, tr.advance(tr.init(net), data, key, 0, 60, 0))
        tr, state = runs["adam"]
        before = tr.measure(tr.init(net), data, _test(batch)).loss_train
        after = tr.measure(state, data, _test(batch)).loss_train
    np.testing.assert_array_equal(runs["mom0"][1][0].w, runs["sgd"][1][0].w)
    assert after < 0.8 * before


def _test(batch):
    from hmmjax.train.finite import TestSet

    return TestSet(x=batch.x, y=batch.y, y_lin=jnp.zeros_like(batch.y))


def test_every_epoch_visits_every_sample_once_in_its_own_order():
    data = TrainingSet(x=jnp.zeros((12, 2)), y=jnp.zeros(12))
    key = jax.random.PRNGKey(0)
    orders = [np.asarray(data.order(key, e, 3)) for e in range(3)]
    for o in orders:
        assert o.shape == (4, 3)
        np.testing.assert_array_equal(np.sort(o.ravel()), np.arange(12))
    assert not np.array_equal(orders[0], orders[1])
    other = np.asarray(data.order(jax.random.PRNGKey(1), 0, 3))
    assert not np.array_equal(orders[0], other)
    fixed = TrainingSet(x=data.x, y=data.y, shuffle=False)
    np.testing.assert_array_equal(fixed.order(key, 2, 3).ravel(), np.arange(12))


# on top of conftest's SMALL (hmm data)
FINITE = {
    "data": {"N": 40, "D": 8},
    "finite": {"P": 60},
    "sgd": {"lr": 0.5, "batch": 2},
    "run": {"t_max": 3.0, "ensemble": 3, "test_size": 100, "chunk": 2},
}


def test_labels_signs_and_random_labels_are_a_shuffle_of_them():
    cfg = small_config(FINITE, grid={"labels": ["teacher", "sign", "random"]})
    lanes = build_finite_lanes(point_configs(cfg))
    y = np.asarray(lanes.model.y)  # (3 points, P)
    np.testing.assert_array_equal(y[1], np.where(y[0] >= 0, 1.0, -1.0))
    np.testing.assert_array_equal(np.sort(y[2]), np.sort(y[1]))
    assert np.mean(y[2] != y[1]) > 0.2
    # test labels stay true; the linear predictor is fitted to the shuffled labels
    np.testing.assert_array_equal(lanes.test.y[2], lanes.test.y[1])
    assert not np.allclose(lanes.test.y_lin[2], lanes.test.y_lin[1])


@pytest.fixture(scope="module")
def k_grid():
    return simulate(small_config(FINITE, grid={"K": [1, 3]}), progress=False)


def test_padded_width_equals_its_own_run(k_grid):
    alone = simulate(small_config(FINITE, student={"K": 1}), progress=False)
    for name in ("eg_mc", "loss_train", "agree_lin"):
        np.testing.assert_allclose(k_grid[name].sel(K=1), alone[name], rtol=2e-5, atol=1e-6)
    np.testing.assert_array_equal(k_grid.fitted.sel(K=1), alone.fitted)


def test_finite_dataset_layout_and_phenomena(k_grid):
    ds = k_grid
    assert ds.attrs["experiment"] == "finite"
    assert ds.fitted.dims == ("K", "member", "t", "sample")
    assert ds.sizes["sample"] == 60
    np.testing.assert_allclose(ds.epoch, ds.t * 40 * 2 / 60)
    # fit_all <= each member's fraction; the ratio is fit_all / fit_indep
    frac = ds.fitted.mean("sample")
    assert np.all(ds.fit_all <= frac.min("member") + 1e-12)
    np.testing.assert_allclose(ds.fit_ratio, ds.fit_all / ds.fit_indep)
    # the training error is 1 - the fitted fraction
    np.testing.assert_allclose(ds.err_train, 1 - frac, atol=1e-6)
    assert float(ds.err_train.isel(t=-1).mean()) < float(ds.err_train.isel(t=0).mean())


def test_checkpoint_resume_with_optimiser_state(tmp_path, saved_checkpoints):
    cfg = small_config(FINITE, finite={"P": 60, "optimizer": "adam"}, sgd={"lr": 0.05, "batch": 2})
    saved = saved_checkpoints
    ckpt = tmp_path / "run.ckpt.npz"
    full = simulate(cfg, progress=False, checkpoint=ckpt)
    assert len(saved) >= 3 and any(k.startswith("net_") for k in saved[1])
    np.savez(ckpt, **saved[1])  # as if killed after the second chunk
    resumed = simulate(cfg, progress=False, checkpoint=ckpt)
    for name in ("eg_mc", "loss_train", "fitted", "fit_ratio"):
        np.testing.assert_array_equal(resumed[name], full[name])


@pytest.mark.parametrize(
    "sections, words",
    [
        ({"sgd": {"batch": 7}}, "sgd.batch = 7: expected a divisor of finite.P = 60"),
        ({"run": {"mode": "both"}}, 'run.mode = "both": finite.P = 60'),
        ({"data": {"shared": False}}, "data.shared = false"),
        (
            {"data": {"model": "digits", "D": 10}},
            'data.N = 40: data.model = "digits" has 64 inputs',
        ),
        ({"data": {"model": "digits", "N": 64, "D": 10}, "finite": {"P": 1700}}, "finite.P = 1700"),
        (
            {"data": {"model": "digits", "N": 64, "D": 10}, "grid": {"P": [60, 1700]}},
            "grid.P: not an axis of finite-set runs",
        ),
        (
            {
                "data": {"model": "digits", "N": 64, "D": 10},
                "finite": {"P": 1700},
                "grid": {"seed": [0, 1]},
            },
            "finite.P = 1700",
        ),
        (
            {"data": {"model": "mnist", "N": 784, "D": 10, "path": "/nowhere/x-images-idx3-ubyte"}},
            "data.path",
        ),
        ({"data": {"model": "digits", "N": 64, "D": 10}, "finite": {"P": 0}}, "set finite.P > 0"),
        ({"finite": {"P": 0, "optimizer": "adam"}}, 'finite.optimizer = "adam"'),
        ({"finite": {"labels": "shuffled"}}, "finite.labels"),
    ],
)
def test_config_errors(sections, words):
    """Refused by the config, or by ``check_config`` (what needs the data files), as
    ``hmmjax run`` and ``hmmjax config FILE`` do."""
    with pytest.raises(ConfigError, match=re.escape(words)):
        check_config(small_config(FINITE, **sections))


def test_digits_end_to_end():
    cfg = small_config(FINITE, data={"model": "digits", "N": 64, "D": 10}, finite={"P": 200},
                       run={"t_max": 1.0, "test_size": 300})  # fmt: skip
    ds = simulate(cfg, progress=False)
    # even vs odd on 8x8 digits: the linear predictor is far better than chance
    assert 0.02 < float(ds.err_lin) < 0.3
    assert ds.sizes["sample"] == 200
    assert np.all(np.isfinite(ds.err_test))
