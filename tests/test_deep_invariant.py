"""The convolutional network in the alpha-trick parametrisation on images (issue 19,
docs/theory.md 7.1): its output at initialisation, the trainer's gradient against the loss
written directly, its NTK against J J^T, nested image splits, and padded lanes."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hmmjax.analysis.invariant import invariant_summary
from hmmjax.config import ConfigError, config_from_dict, is_invariant
from hmmjax.data.images import ImageTask, image_side, nested_split
from hmmjax.data.real import RealData, standardise, standardise_global
from hmmjax.experiments import COMPRESSION, simulate
from hmmjax.experiments.validate import check_config
from hmmjax.models.alpha_cnn import init_conv_net
from hmmjax.observables.ntk import empirical_ntk, network_ntk
from hmmjax.plots.invariant import plot_invariant
from hmmjax.sweep.checkpoint import describe_config
from hmmjax.sweep.invariant import image_draws, invariant_lanes, run_grid
from hmmjax.train.hinge import HingeSet, InvariantTrainer

SIDE = 4


def fake_images(n=80, seed=0) -> RealData:
    """n random 4x4 'images' labelled by the sign of their mean over the left half."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, SIDE * SIDE))
    digit = (x.reshape(n, SIDE, SIDE)[:, :, : SIDE // 2].mean(axis=(1, 2)) > 0).astype(int)
    return RealData(x=standardise(x), y=np.where(digit == 0, 1.0, -1.0), digit=digit, name="fake")


def direct_loss(net0, params, x, y, alpha):
    """(1 / (alpha^2 p)) sum_mu max(0, 1 - y_mu alpha (f(w, x_mu) - f(w0, x_mu))),
    written from the network's forward pass only."""
    f = net0.replace(params)(x)
    f0 = net0(x)
    return jnp.mean(jnp.maximum(0.0, 1.0 - y * alpha * (f - f0))) / alpha**2


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_output_is_exactly_zero_at_initialisation(act):
    net0 = init_conv_net(jax.random.key(3), SIDE, depth=2, width=3, act=act)
    x = jnp.asarray(fake_images(16).x, jnp.float32)
    assert np.all(np.asarray(net0.output(net0, x, 7.5)) == 0.0)
    assert np.all(np.asarray(jax.jit(lambda n: n.output(n, x, 1e4))(net0)) == 0.0)
    assert float(jnp.std(net0(x))) > 0.05  # f itself is not zero
    # in the trainer's compiled programs: the margins at w0 are exactly 0
    trainer = InvariantTrainer(data=ImageTask(name="fake", d=SIDE * SIDE), max_steps=5)
    y = jnp.sign(x[:, 0])
    train = HingeSet(net0=net0, x=x, y=y, smask=jnp.ones(16), alpha=jnp.asarray(7.5))
    st = jax.jit(trainer.init)(train)
    assert np.all(np.asarray(st.margins) == 0.0)
    assert float(st.loss) == pytest.approx(1 / 7.5**2, rel=1e-6)


def test_trainer_gradient_is_jax_grad_of_the_loss_written_directly():
    """The gradient the engine steps with (the trainer's state at w, on a training set
    padded from 9 to 12 samples) equals jax.grad of the directly written loss on the 9 true
    samples, in float64; it is checked away from w0 (after perturbing w)."""
    with jax.enable_x64(True):
        net0 = init_conv_net(jax.random.key(1), SIDE, depth=2, width=3, dtype=jnp.float64)
        data = fake_images(12)
        x, y = jnp.asarray(data.x), jnp.asarray(data.y)
        leaves, tree = jax.tree.flatten(net0.params)
        keys = jax.random.split(jax.random.key(2), len(leaves))
        moved = [w + 0.3 * jax.random.normal(k, w.shape, w.dtype) for w, k in zip(leaves, keys)]
        params = jax.tree.unflatten(tree, moved)
        smask = (jnp.arange(12) < 9).astype(jnp.float64)
        alpha = 0.7
        net = net0.replace(params)
        grads, margins, loss = net.hinge(net0, x * smask[:, None], y * smask, smask, alpha)
        expected = jax.grad(lambda p: direct_loss(net0, p, x[:9], y[:9], alpha))(params)
        value = direct_loss(net0, params, x[:9], y[:9], alpha)
    assert float(loss) == pytest.approx(float(value), rel=1e-12)
    assert 0 < np.sum((np.asarray(margins) < 1) * np.asarray(smask)) < 9  # some active, some not
    for g, e in zip(jax.tree.leaves(grads), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-13)
        assert np.max(np.abs(np.asarray(e))) > 0


def test_ntk_is_j_jt_from_jacrev():
    """network_ntk (blocked jvp / vjp) of a tiny CNN equals J(x1) J(x2)^T, J from
    jax.jacrev of f over every parameter, flattened."""
    with jax.enable_x64(True):
        net = init_conv_net(jax.random.key(5), SIDE, depth=2, width=2, act="tanh",
                            dtype=jnp.float64)  # fmt: skip
        x = jnp.asarray(fake_images(7).x)

        def jac(xs):
            J = jax.jacrev(lambda p: net.replace(p)(xs))(net.params)
            return jnp.concatenate([j.reshape(xs.shape[0], -1) for j in jax.tree.leaves(J)], 1)

        K = network_ntk(net, x[:5], x[2:], block=2)
        dense = jac(x[:5]) @ jac(x[2:]).T
    np.testing.assert_allclose(K, dense, rtol=1e-10, atol=1e-12)
    assert K.shape == (5, 5)
    # one compilation per architecture and shape, not one per network
    before = empirical_ntk._cache_size()
    for seed in (6, 7):
        other = init_conv_net(jax.random.key(seed), SIDE, depth=2, width=2, act="tanh")
        network_ntk(other, jnp.asarray(x[:5], jnp.float32))
    assert empirical_ntk._cache_size() == before + 1


def test_nested_split_and_square_images():
    data = fake_images(50)
    small = nested_split(data, 10, 15, seed=4)
    big = nested_split(data, 30, 15, seed=4)
    np.testing.assert_array_equal(big[0][:10], small[0])  # training sets nested in p
    np.testing.assert_array_equal(big[2], small[2])  # one test set for every p
    train = {tuple(r) for r in big[0]}
    assert not train & {tuple(r) for r in big[2]}  # disjoint
    other = nested_split(data, 30, 15, seed=5)
    assert not np.array_equal(other[0], big[0])
    with pytest.raises(ValueError, match="p \\+ n_test <= 50"):
        nested_split(data, 40, 15, seed=4)
    assert image_side(64) == 8 and image_side(784) == 28
    with pytest.raises(ValueError, match="not a square"):
        image_side(63)


def test_padded_lane_equals_its_own_run():
    """A lane of p = 12 images padded to p = 20 in a grid over P ends where the same lane
    trained alone ends (float64): the same iterations, the same parameters to rounding."""
    task = ImageTask(name="fake", d=SIDE * SIDE)
    trainer = InvariantTrainer(data=task, max_steps=200, n_records=4)
    with jax.enable_x64(True):
        draws = image_draws(fake_images(60), task, depth=2, kernel=3, act="tanh", n_test=20,
                            dtype=jnp.float64)  # fmt: skip
        kw = dict(act="tanh", n_test=20, dtype=jnp.float64, draws=draws)
        both = run_grid([0.5], [2], [12, 20], [3], trainer, **kw)
        alone = run_grid([0.5], [2], [12], [3], trainer, **kw)
        with pytest.raises(ValueError, match="not padded"):
            invariant_lanes([0.5, 0.5], [12, 12], [3, 4], np.array([[2], [2]], np.uint64),
                            trainer, draws=draws)  # fmt: skip
    for a, b in zip(jax.tree.leaves(both.network((0, 0, 0, 0)).params),
                    jax.tree.leaves(alone.network((0, 0, 0, 0)).params), strict=True):  # fmt: skip
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    for name in ("steps", "accepted", "err_test", "loss"):
        a, b = getattr(both.history, name)[0, 0, 0, 0], getattr(alone.history, name)[0, 0, 0, 0]
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=name)
    assert float(both.final.rel_change[0, 0, 0, 0]) > 0
    assert np.isnan(both.final.ratio).all()  # no informative directions in images
    assert math.isfinite(float(both.final.err_test[0, 0, 0, 0]))


CNN = {
    "data": {"model": "digits", "N": 64},
    "student": {"K": 4},
    "finite": {"P": 64},
    "invariant": {"network": "cnn", "depth": 2},
    "run": {"test_size": 100},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"data": {"model": "stripe", "N": 64}},
            'data.model = "stripe": invariant.network = "cnn" needs one of "digits", "mnist"',
        ),
        (
            {"data": {"model": "digits", "N": 63}},
            'data.N = 63: invariant.network = "cnn" needs a square number',
        ),
        ({"data": {"model": "digits", "N": 49}}, "data.N = 49: .*has 64 inputs"),
        ({"run": {"test_size": 1750}}, "finite.P = 64: with run.test_size = 1750"),
        (
            {"grid": {"K": [4, 8]}},
            'grid.K: not an axis of invariant.network = "cnn"; it sweeps alpha, P, seed',
        ),
        (
            {"invariant": {"network": "mlp", "depth": 2}, "data": {"model": "stripe", "N": 5}},
            'invariant.depth = 2: used by invariant.network = "cnn" only',
        ),
        ({"invariant": {"network": "cnn", "kernel_size": 0}}, "invariant.kernel_size = 0"),
        ({"run": {"mode": "ode"}}, 'run.mode = "ode": invariant.network = "cnn" needs "sim"'),
    ],
)
def test_bad_cnn_configs_are_refused_in_one_line(change, message):
    d = {k: dict(v) for k, v in CNN.items()}
    for section, values in change.items():
        d[section] = values if section == "grid" else {**d.get(section, {}), **values}
    with pytest.raises(ConfigError, match=message) as err:
        check_config(config_from_dict(d))
    assert "\n" not in str(err.value)


def test_a_cnn_config_is_an_invariant_experiment():
    cfg = config_from_dict(CNN)
    check_config(cfg)
    assert is_invariant(cfg)
    assert not is_invariant(cfg.replace(invariant={"network": "mlp", "depth": 3}))


def test_a_fixed_step_of_the_cnn_is_dt_times_the_gradient():
    """In the NTK parametrisation eta = dt (step_scale 1): one fixed gradient step
    (adaptive = False) moves every parameter by exactly -dt dL/dw, dt = lr min(1, alpha)."""
    net0 = init_conv_net(jax.random.key(7), SIDE, depth=2, width=3)
    data = fake_images(10)
    x, y = jnp.asarray(data.x, jnp.float32), jnp.asarray(data.y, jnp.float32)
    trainer = InvariantTrainer(data=ImageTask(name="fake", d=SIDE * SIDE), lr=0.3,
                               adaptive=False, max_steps=5)  # fmt: skip
    train = HingeSet(net0=net0, x=x, y=y, smask=jnp.ones(10), alpha=jnp.asarray(0.5))
    st0 = trainer.init(train)
    st1 = trainer.step(train, st0)
    dt = 0.3 * 0.5
    assert float(st0.dt) == pytest.approx(dt)
    for w0, g, w1 in zip(jax.tree.leaves(st0.params), jax.tree.leaves(st0.grads),
                         jax.tree.leaves(st1.params), strict=True):  # fmt: skip
        np.testing.assert_allclose(w1, w0 - dt * g, rtol=1e-6, atol=1e-7)
    assert float(st1.time) == pytest.approx(dt)


def test_ntk_parametrisation_keeps_f_and_the_kernel_of_order_one():
    """At initialisation, on i.i.d. N(0, 1) pixels, E f^2 and the NTK's diagonal do not
    grow or vanish with the width (4 against 32 channels: within a factor 2, and O(1));
    the first layer's pre-activations have unit variance at interior pixels."""
    side = 6
    x = jax.random.normal(jax.random.key(11), (64, side * side))
    stats = {}
    for width in (4, 32):
        nets = [init_conv_net(jax.random.key(s), side, depth=2, width=width) for s in range(4)]
        f2 = np.mean([np.mean(np.asarray(n(x)) ** 2) for n in nets])
        diag = np.mean([np.diag(np.asarray(network_ntk(n, x[:8], block=8))) for n in nets])
        stats[width] = (f2, diag)
    for f2, diag in stats.values():
        assert 0.1 < f2 < 3 and 0.1 < diag < 10, stats
    for i in range(2):
        assert 0.5 < stats[4][i] / stats[32][i] < 2, stats
    net = init_conv_net(jax.random.key(0), side, depth=1, width=64)
    z = jax.lax.conv_general_dilated(x.reshape(-1, 1, side, side), net.kernels[0], (1, 1),
                                     "SAME") / 3.0  # fmt: skip
    assert float(jnp.var(z[:, :, 1:-1, 1:-1])) == pytest.approx(1.0, abs=0.1)


def test_global_standardisation_is_one_affine_map():
    data = fake_images(40)
    raw = np.random.default_rng(1).uniform(0, 16, size=(40, 16))
    raw[:, 0] = 0.0  # a blank pixel stays as blank as its neighbours' background
    x = standardise_global(raw)
    assert x.mean() == pytest.approx(0.0, abs=1e-12) and x.std() == pytest.approx(1.0)
    scale = (x[1, 1] - x[0, 1]) / (raw[1, 1] - raw[0, 1])
    np.testing.assert_allclose(x, (raw - raw.mean()) * scale, atol=1e-12)
    assert data.x.shape == (40, 16)


def test_fingerprints_of_mlp_runs_do_not_name_the_cnn_keys():
    """Checkpoints of two-layer runs written before the cnn keys existed still resume:
    their fingerprint omits network, depth, kernel_size; a cnn run's names them."""
    mlp = config_from_dict({"data": {"model": "stripe", "N": 5}, "finite": {"P": 8}})
    assert not {"network", "depth", "kernel_size"} & set(json.loads(describe_config(mlp))[
        "invariant"])  # fmt: skip
    cnn = json.loads(describe_config(config_from_dict(CNN)))["invariant"]
    assert cnn["network"] == "cnn" and cnn["depth"] == 2


def test_a_cnn_config_runs_end_to_end():
    """simulate() of a tiny digits config: the dataset's variables and attributes, the
    figure's panels and the summary (learning-curve exponents, no theory for images)."""
    d = {**CNN, "student": {"K": 2}, "run": {"test_size": 100, "ensemble": 2, "n_times": 4},
         "invariant": {"network": "cnn", "depth": 1, "max_steps": 40, "ntk": True, "ntk_top": 12,
                       "ntk_max_p": 16},
         "grid": {"alpha": [0.01, 100.0], "P": [8, 32]}}  # fmt: skip
    ds = simulate(config_from_dict(d), progress=False)
    assert ds.attrs["experiment"] == "invariant" and ds.attrs["network"] == "cnn"
    assert not set(COMPRESSION) & set(ds.data_vars)
    assert {"rel_change", "err_test", "kr_err", "svm_err", "ntk_align"} <= set(ds.data_vars)
    assert dict(ds["err_test"].sizes) == {"alpha": 2, "P": 2, "member": 2, "record": 5}
    change = ds["rel_change"].isel(record=-1)
    assert float(change.sel(alpha=0.01).min()) > float(change.sel(alpha=100.0).max())
    assert ds["kr_err"].sel(P=32).isnull().all()  # above invariant.ntk_max_p: not analysed
    assert ds["kr_err"].sel(P=8).notnull().all()
    # ntk_top eigenvectors at every point (the parts of the split over P gather), NaN
    # beyond a point's P
    align = ds["ntk_align"].sel(P=8)
    assert ds.sizes["eig"] == 12
    assert align.isel(eig=slice(8)).notnull().all()
    assert align.isel(eig=slice(8, None)).isnull().all()
    fig = plot_invariant(ds)
    kernels = next(ax for ax in fig.axes if ax.get_label() == "invariant:kernels")
    assert "P=8" in kernels.get_title()  # the NTK panels show the largest P analysed
    labels = {ax.get_label() for ax in fig.axes}
    assert {"invariant:alpha", "invariant:weights", "invariant:curves",
            "invariant:kernels"} <= labels  # fmt: skip
    assert "invariant:compression" not in labels
    summary = invariant_summary(ds)
    assert "alpha=0.01:beta" in summary, sorted(summary)[:8]
    assert math.isfinite(summary["alpha=0.01:beta"])
    assert math.isnan(summary["alpha=0.01:beta_lazy"])
    # the alignment's k: ALIGN_K = 10 is beyond P = 8, so the largest k every analysed
    # point has
    assert summary["align_k"] == 8
    assert all(math.isfinite(v) for key, v in summary.items() if "P=8" in key and "align" in key)
