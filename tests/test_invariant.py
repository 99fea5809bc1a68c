"""Invariant manifolds (Paccolat et al. 2021): data, the alpha trick, the hinge gradient,
padding, training to zero loss, compression, and the learning-curve exponents."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hmmjax.analysis.exponents import fit_exponent, predicted_exponents
from hmmjax.core.activations import activation
from hmmjax.data.invariant import CYLINDER_R2_THEORY, InvariantData, labels, sample
from hmmjax.models.alpha import hinge_loss
from hmmjax.models.alpha_net import hinge_grad, init_net, output
from hmmjax.sweep import Plan, load_checkpoint, run_points
from hmmjax.sweep.invariant import invariant_lanes, iteration_steps, run_grid
from hmmjax.sweep.lanes import one_per_lane
from hmmjax.train.hinge import InvariantTrainer


def product_lanes(alphas, seeds, ps, hs, trainer, **kw):
    """The lanes of the points alphas x ps x hs (that order), members the seeds."""
    points = [(a, p, h) for a in alphas for p in ps for h in hs]
    a_, p_, h_ = (list(v) for v in zip(*points, strict=True))
    return invariant_lanes(a_, p_, h_, np.tile(seeds, (len(points), 1)), trainer, **kw)


@pytest.mark.parametrize("act", ["relu", "softplus", "tanh", "erf"])
def test_output_is_exactly_zero_at_initialisation(act):
    net0 = init_net(jax.random.PRNGKey(0), 7, 5, width=9, act=act)
    x, _ = sample(jax.random.PRNGKey(1), 50, InvariantData(d=5))
    for alpha in (1e-3, 1.0, 1e3):
        F = np.asarray(output(net0, net0, x, alpha))
        assert np.all(F == 0.0)
    trainer = InvariantTrainer(data=InvariantData(d=5))
    lanes = product_lanes([1e-3, 1e3], [0], [20], [6, 9], trainer, act=act, n_test=64)
    assert np.all(np.asarray(lanes.students.margins) == 0.0)


def _direct_loss(params, x, y, alpha, p, h, params0, act):
    """The hinge loss on the true samples and units only, written from the formulas."""
    sigma = activation(act).fn
    d = x.shape[1]

    def f(omega, b, beta):
        return sigma(x[:p] @ omega[:h].T / math.sqrt(d) + b[:h]) @ beta[:h] / h

    F = alpha * (f(*params) - f(*params0))
    return jnp.sum(jnp.maximum(0.0, 1.0 - y[:p] * F)) / (alpha**2 * p)


@pytest.mark.parametrize("act", ["relu", "softplus"])
def test_hinge_gradient_is_autodiff_of_the_loss_with_padding(act):
    """The trainer's written-out gradient on a lane padded in p (5 of 9 samples) and h
    (4 of 7 units) equals jax.grad of the loss on the true samples and units; padded
    units get exactly zero gradient (softplus: sigma(0) != 0, so beta_pad needs the
    mask)."""
    with jax.enable_x64(True):
        trainer = InvariantTrainer(data=InvariantData(d=3))
        lanes = product_lanes([5.0], [3], [5, 9], [4, 7], trainer, act=act, n_test=16,
                              dtype=jnp.float64)  # fmt: skip
        lane = jax.tree.map(lambda a: a[0, 0], lanes.model)  # p = 5, h = 4, padded to 9, 7
        assert float(lane.smask.sum()) == 5 and float(lane.net0.width) == 4
        mask = lane.net0.mask
        keys = jax.random.split(jax.random.PRNGKey(9), 3)
        kicks = [jax.random.normal(k, p0.shape, jnp.float64) for k, p0 in
                 zip(keys, lane.net0.params, strict=True)]  # fmt: skip
        omega, b, beta = (p0 + 2.0 * k for p0, k in zip(lane.net0.params, kicks, strict=True))
        params = (omega * mask[:, None], b * mask, beta * mask)  # padded units stay zero

        def compute(params):
            net = lane.net0.replace(params)
            args = (lane.x, lane.y, lane.smask, lane.alpha)
            direct = (lane.x, lane.y, lane.alpha, 5, 4, lane.net0.params, act)
            return (
                hinge_grad(net, lane.net0, *args),
                jax.value_and_grad(_direct_loss)(params, *direct),
                jax.grad(lambda p: hinge_loss(lane.net0.replace(p), lane.net0, *args))(params),
            )

        (grads, margins, loss), (loss_direct, direct), autodiff = jax.jit(compute)(params)
        true_margins = np.asarray(margins[:5])
        assert (true_margins < 1).any() and (true_margins >= 1).any()  # both hinge branches
        np.testing.assert_allclose(loss, loss_direct, rtol=1e-12)
        for g, gd, ga in zip(grads, direct, autodiff, strict=True):
            np.testing.assert_allclose(g[:4], gd[:4], rtol=1e-12, atol=1e-14)
            assert np.all(np.asarray(g[4:]) == 0.0)
            np.testing.assert_allclose(g, ga, rtol=1e-12, atol=1e-14)


def test_padded_lanes_train_as_unpadded_ones_and_padded_units_never_move():
    """A lane padded in p and h ends where the same lane trained alone ends; its padded
    units are still exactly zero."""
    data = InvariantData(d=3)
    trainer = InvariantTrainer(data=data, max_steps=300, n_records=5)
    with jax.enable_x64(True):
        kw = dict(act="softplus", n_test=64, dtype=jnp.float64)
        both = run_grid([0.5], [2], [12, 20], [4, 6], trainer, **kw)
        alone = run_grid([0.5], [2], [12], [4], trainer, **kw)
    padded = both.network((0, 0, 0, 0))
    single = alone.network((0, 0, 0, 0))
    for a, b in zip(padded.params, single.params, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(both.final.steps[0, 0, 0, 0], alone.final.steps[0, 0, 0, 0])
    full = jax.tree.map(lambda a: a[0, 0, 0, 0], both.net)
    for leaf in full.params:
        assert np.all(np.asarray(leaf)[4:] == 0.0)
    assert float(both.final.rel_change[0, 0, 0, 0]) > 0  # the true units did move


def test_class_balance():
    n = 200_000
    four_sigma = 4 * math.sqrt(0.25 / n)
    key = jax.random.PRNGKey(11)
    for model in ("stripe", "cylinder"):
        _, y = sample(key, n, InvariantData(d=4, model=model))
        assert abs(float(jnp.mean(y > 0)) - 0.5) < four_sigma, model
    # THEORY's threshold d_par - 2/3 = 4/3: P(chi2_2 > 4/3) = exp(-2/3) = 0.513, not 1/2
    x, _ = sample(key, n, InvariantData(d=4, model="cylinder"))
    frac = float(jnp.mean(labels(x, "cylinder", CYLINDER_R2_THEORY) > 0))
    assert abs(frac - math.exp(-2 / 3)) < four_sigma
    assert frac - 0.5 > 2 * four_sigma


@pytest.mark.parametrize("model", ["stripe", "cylinder"])
def test_labels_depend_on_the_informative_coordinates_only(model):
    data = InvariantData(d=6, model=model)
    x, y = sample(jax.random.PRNGKey(4), 5000, data)
    noise = jax.random.normal(jax.random.PRNGKey(5), x.shape)
    other = x.at[:, data.d_par :].set(10 * noise[:, data.d_par :])
    np.testing.assert_array_equal(data.labels(other), y)
    moved = x.at[:, : data.d_par].set(noise[:, : data.d_par])
    assert np.mean(np.asarray(data.labels(moved)) != np.asarray(y)) > 0.3


def test_samples_are_nested_and_the_test_set_is_shared():
    data = InvariantData(d=4)
    x_small, _ = sample(jax.random.PRNGKey(0), 10, data)
    x_big, _ = sample(jax.random.PRNGKey(0), 30, data)
    np.testing.assert_array_equal(x_small, x_big[:10])
    trainer = InvariantTrainer(data=data)
    lanes = product_lanes([0.1, 10.0], [0, 1], [8, 16], [3], trainer, n_test=32)
    t = np.asarray(lanes.test.x)  # (points alpha x p, members = seeds, 32, 4)
    for point in range(1, 4):
        np.testing.assert_array_equal(t[0, 0], t[point, 0])  # same seed: same test set
    assert not np.array_equal(t[0, 0], t[0, 1])  # other seed: another one


@pytest.fixture(scope="module")
def trained():
    """d = 3, stripe, p = 32, h = 64; alpha in {1e-2, 1e2, 1e3}."""
    trainer = InvariantTrainer(data=InvariantData(d=3), max_steps=5000, n_records=12)
    return run_grid([1e-2, 1e2, 1e3], [0], [32], [64], trainer, n_test=1024)


def test_training_reaches_zero_loss_at_small_and_large_alpha(trained):
    f = trained.final
    assert np.all(trained.converged)
    assert np.all(np.asarray(f.loss) == 0) and np.all(np.asarray(f.n_unfit) == 0)
    assert np.all(np.asarray(f.err_train) == 0)
    assert np.all(np.asarray(f.steps) < 5000)
    assert np.all(np.asarray(f.err_test) < 0.4)
    # frozen after convergence: the last records repeat the final state
    h = trained.history
    assert np.all(np.diff(np.asarray(h.steps), axis=-1) >= 0)
    assert np.all(np.asarray(h.steps)[..., -1] == np.asarray(f.steps))
    alphas = np.asarray(trained.alphas)[:, None, None, None]
    np.testing.assert_allclose(np.asarray(h.loss)[..., 0], 1 / alphas**2, rtol=1e-6)


def test_feature_learning_compresses_and_lazy_weights_barely_move(trained):
    f = trained.final
    ratio = np.asarray(f.ratio)[:, 0, 0, 0]
    rel = np.asarray(f.rel_change)[:, 0, 0, 0]
    assert ratio[0] > 1.5 * ratio[1]  # alpha = 1e-2 compresses more than alpha = 1e2
    assert np.asarray(f.Lambda)[0, 0, 0, 0] > np.asarray(f.Lambda)[1, 0, 0, 0]
    assert rel[0] > 1 and rel[1] < 0.15
    assert 5 < rel[1] / rel[2] < 20  # ~ 1/alpha


def test_fit_exponent():
    p = np.array([64, 128, 256, 512, 1024, 2048])
    beta, se = fit_exponent(p, 3.0 * p**-0.4)
    assert beta == pytest.approx(0.4, abs=1e-12)
    assert se < 1e-10
    rng = np.random.default_rng(0)
    sigma = 0.1
    betas, ses = [], []
    for _ in range(200):
        err = 3.0 * p**-0.4 * np.exp(sigma * rng.standard_normal((10, p.size)))
        b, s = fit_exponent(p, err)
        betas.append(b)
        ses.append(s)
    betas, ses = np.array(betas), np.array(ses)
    # the reported stderr matches the scatter of the estimates over repetitions
    assert abs(np.mean(betas) - 0.4) < 3 * np.std(betas) / math.sqrt(len(betas))
    assert 0.7 < np.median(ses) / np.std(betas) < 1.4
    b1, s1 = fit_exponent(p, err.mean(axis=0))  # one curve: stderr from the residuals
    assert abs(b1 - 0.4) < 5 * s1 and s1 > 0
    bw, sw = fit_exponent(p, err.mean(axis=0), weights=np.full(p.size, 1e4))
    suu = np.sum((np.log(p) - np.log(p).mean()) ** 2)
    assert bw == pytest.approx(b1) and sw == pytest.approx(1 / math.sqrt(1e4 * suu))


def test_predicted_exponents():
    e = predicted_exponents(5, 1)
    assert e["lazy"] == pytest.approx(5 / 13) and e["feature"] == pytest.approx(9 / 13)
    e = predicted_exponents(5, 2)
    assert e["lazy"] == pytest.approx(5 / 13) and e["feature"] == pytest.approx(6.5 / 13)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="model"):
        InvariantData(model="ring")
    with pytest.raises(ValueError, match="d_par"):
        InvariantData(d=2, model="cylinder")
    with pytest.raises(ValueError, match="activation"):
        init_net(jax.random.PRNGKey(0), 3, 4, act="gelu")


@pytest.mark.default_codegen
def test_engine_equals_one_call_and_resumes(tmp_path, saved_checkpoints):
    """The sweep engine (chunks of records, checkpointed) gives the numbers of
    vmap(trainer.run); a checkpoint written after a chunk resumes bit-identically, and
    one of another config is refused."""
    trainer = InvariantTrainer(data=InvariantData(d=3), max_steps=400, n_records=6)
    lanes = product_lanes([0.1, 10.0], [0], [16], [8], trainer, n_test=64)
    one_call, params = jax.jit(jax.vmap(jax.vmap(trainer.run)))(lanes.model, lanes.test)
    ckpt = tmp_path / "inv.ckpt.npz"

    def run(stamp):
        steps = iteration_steps(trainer, 2)
        saved = load_checkpoint(ckpt, stamp) if ckpt.exists() else None
        return run_points(one_per_lane(lanes), steps, Plan(2, 2, 1, 0, 0),
                          jax.local_devices()[:1],
                          shared=False, block=1, chunk=2, bound=np.inf, stamp=stamp,
                          progress=False, checkpoint=ckpt, resume=saved,
                          keep_final=True)  # fmt: skip

    out = run("x")
    assert len(saved_checkpoints) == 3  # three chunks of two records
    for name, a in one_call._asdict().items():
        np.testing.assert_array_equal(np.asarray(a), out.history[name], err_msg=name)
    for a, b in zip(params, out.final.params, strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)
    np.savez(ckpt, **saved_checkpoints[1])  # as if stopped after the second chunk
    resumed = run("x")
    assert len(saved_checkpoints) == 4  # resumed: only the third chunk ran again
    for name, a in out.history.items():
        np.testing.assert_array_equal(a, resumed.history[name])
    with pytest.raises(Exception, match="different config"):
        run("y")
