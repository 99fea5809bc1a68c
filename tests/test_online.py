"""Online SGD: the step against autodiff, determinism, ensembles, blocking invariance."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hmmjax.data.base import Batch, make_data_model
from hmmjax.models.two_layer import TwoLayer, init_network, pad_network
from hmmjax.train.online import SGD, advance, delayed_block, draw_block, record_steps

N, D, K, M = 64, 16, 3, 2


@pytest.fixture(scope="module")
def model():
    return make_data_model(jax.random.PRNGKey(0), "hmm", N=N, M=M, D=D, f="sign", noise=0.1)


@pytest.fixture(scope="module")
def student():
    return init_network(jax.random.PRNGKey(1), K, N, second_layer="gaussian")


@pytest.fixture(scope="module")
def advance_jit():
    return jax.jit(advance, static_argnames="block")


@pytest.mark.parametrize("g", ["erf", "tanh", "relu", "linear"])
@pytest.mark.parametrize("train_second", [False, True])
def test_step_is_gradient_descent_with_the_stated_scalings(model, student, g, train_second):
    net = TwoLayer(w=student.w, v=student.v, g=g)
    B, lr, kappa = 5, 0.7, 0.3
    data = model.sample(jax.random.PRNGKey(2), B)

    def loss(params):
        w, v = params
        return jnp.mean(0.5 * (data.y - TwoLayer(w=w, v=v, g=g)(data.x)) ** 2)

    gw, gv = jax.grad(loss)((net.w, net.v))
    new = SGD.create(lr, kappa, batch=B, train_second=train_second).step(net, data)
    # THEORY 1: w <- w - eta grad_w L - (kappa / N) w;  v <- v - (eta / N) grad_v L.
    np.testing.assert_allclose(new.w, net.w - lr * gw - kappa / N * net.w, rtol=1e-5, atol=1e-6)
    v_expected = net.v - lr / N * gv if train_second else net.v
    np.testing.assert_allclose(new.v, v_expected, rtol=1e-5, atol=1e-7)


def test_step_by_hand_for_one_sample(model, student):
    """The update written out for B = 1: w_k += eta/sqrt(N) v_k g'(lambda_k) Delta x."""
    data = model.sample(jax.random.PRNGKey(3), 1)
    x, y = np.asarray(data.x[0], np.float64), float(data.y[0])
    w, v = np.asarray(student.w, np.float64), np.asarray(student.v, np.float64)
    lam = w @ x / math.sqrt(N)
    g = np.array([math.erf(a / math.sqrt(2)) for a in lam])
    gp = math.sqrt(2 / math.pi) * np.exp(-(lam**2) / 2)
    delta = y - v @ g
    lr = 0.5
    w_new = w + lr / math.sqrt(N) * np.outer(v * gp * delta, x)
    v_new = v + lr / N * g * delta
    new = SGD.create(lr, train_second=True).step(student, data)
    np.testing.assert_allclose(new.w, w_new, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new.v, v_new, rtol=1e-5, atol=1e-7)


def test_data_of_a_step_depends_only_on_its_index(model):
    key = jax.random.PRNGKey(4)
    a = draw_block(model, key, jnp.asarray(10), 8, 2)
    b = draw_block(model, key, jnp.asarray(14), 8, 2)
    np.testing.assert_array_equal(a.x[4:], b.x[:4])
    np.testing.assert_array_equal(a.y[4:], b.y[:4])


def test_blocking_and_interval_splitting_do_not_change_the_run(model, student, advance_jit):
    sgd = SGD.create(0.3, train_second=True)
    key = jax.random.PRNGKey(5)
    whole = advance_jit(student, sgd, model, key, 0, 300, block=64)
    other = advance_jit(student, sgd, model, key, 0, 300, block=7)
    split = student
    for a, b in [(0, 13), (13, 13), (13, 200), (200, 300)]:
        split = advance_jit(split, sgd, model, key, a, b, block=64)
    for net in (other, split):
        np.testing.assert_allclose(net.w, whole.w, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(net.v, whole.v, rtol=1e-5, atol=1e-6)
    # and the run did something
    assert float(jnp.abs(whole.w - student.w).max()) > 1e-2


def test_vmapped_ensemble_equals_separate_runs(model, advance_jit):
    E = 3
    students = jax.vmap(lambda k: init_network(k, K, N))(jax.random.split(jax.random.PRNGKey(6), E))
    keys = jax.random.split(jax.random.PRNGKey(7), E)
    sgd = SGD.create(0.3)
    batched = jax.jit(jax.vmap(lambda s, k: advance(s, sgd, model, k, 0, 200, 64)))(students, keys)
    for e in range(E):
        one = jax.tree.map(lambda a: a[e], students)
        single = advance_jit(one, sgd, model, keys[e], 0, 200, block=64)
        np.testing.assert_allclose(batched.w[e], single.w, rtol=1e-5, atol=1e-6)


def test_record_steps():
    s = record_steps(784, 10.0, 200)
    assert s[0] == 0 and s[-1] == 7840
    assert np.all(np.diff(s) > 0)
    assert len(s) > 150
    lin = record_steps(100, 5.0, 10, spacing="linear")
    np.testing.assert_array_equal(lin, np.arange(0, 501, 50))
    with pytest.raises(ValueError, match="spacing"):
        record_steps(100, 1.0, 5, spacing="cubic")
    for spacing in ("log", "linear"):  # one recording time: t_max, after the start
        np.testing.assert_array_equal(record_steps(100, 5.0, 1, spacing), [0, 500])


@pytest.mark.parametrize("second", [False, True])
def test_a_delayed_block_is_its_steps_one_after_another(second):
    """``delayed_block`` (the block's steps as matrix products, THEORY section 1 step)
    against ``SGD.step`` applied step by step: weight decay, a mini-batch of 2, a padded
    network, the second layer trained, a block cut at both ends."""
    N, K, b, B = 50, 3, 16, 2
    with jax.enable_x64(True):
        net = init_network(jax.random.PRNGKey(0), K, N, second_layer="gaussian",
                           dtype=jnp.float64)  # fmt: skip
        net = pad_network(net, K + 1, N + 5)
        sgd = SGD.create(0.7, 0.3, B, second, dtype=jnp.float64)
        x = jax.random.normal(jax.random.PRNGKey(1), (b, B, N + 5)).at[..., N:].set(0)
        y = jax.random.normal(jax.random.PRNGKey(2), (b, B))
        ref = net
        for i in range(3, 13):
            ref = sgd.step(ref, Batch(x=x[i], y=y[i], z=None))
        X = x.reshape(-1, N + 5)
        out = delayed_block(sgd, net, Batch(x=x, y=y, z=y[..., None]), X @ X.T, 3, 13)
    assert np.max(np.abs(ref.w - net.w)) > 0.5  # the steps did move the weights
    np.testing.assert_allclose(out.w, ref.w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.v, ref.v, rtol=0, atol=1e-12)
    if not second:
        np.testing.assert_array_equal(out.v, net.v)


def test_a_subclass_step_is_used_in_a_lane_of_many_students():
    """A lane of many students runs SGD's own step as delayed matrix products; a subclass
    with its own ``step`` (docs/guides/extending.md) must still get its step."""

    class Frozen(SGD):
        def step(self, student, data):
            return student

    N, K, Q, block = 30, 2, 40, 16  # Q K >= block: the delayed path for plain SGD
    model = make_data_model(jax.random.PRNGKey(0), "hmm", N=N, M=2, D=5, f="sign")
    nets = jax.vmap(lambda k: init_network(k, K, N))(jax.random.split(jax.random.PRNGKey(1), Q))
    key = jax.random.PRNGKey(2)
    for cls, moves in ((SGD, True), (Frozen, False)):
        trainers = jax.vmap(lambda lr, cls=cls: cls.create(lr))(jnp.linspace(0.1, 0.5, Q))
        out = trainers.advance_many(nets, model, key, 0, 40, block)
        assert bool(jnp.any(out.w != nets.w)) == moves, cls


def test_a_subclass_advance_is_used_in_a_lane():
    """A subclass with its own ``advance`` gets it for every point of a lane."""

    class Still(SGD):
        def advance(self, student, model, key, start, stop, block):
            return student

    model = make_data_model(jax.random.PRNGKey(0), "hmm", N=30, M=2, D=5, f="sign")
    nets = jax.vmap(lambda k: init_network(k, 2, 30))(jax.random.split(jax.random.PRNGKey(1), 40))
    trainers = jax.vmap(lambda lr: Still.create(lr))(jnp.linspace(0.1, 0.5, 40))
    out = trainers.advance_many(nets, model, jax.random.PRNGKey(2), 0, 40, 16)
    np.testing.assert_array_equal(out.w, nets.w)


def test_a_step_realised_from_its_normals_is_that_step_of_the_block():
    """``realise`` of one step's normals (``normals``, sliced) gives the samples that
    ``sample_steps`` gives for that step within a block: the data of the per-step path."""
    model = make_data_model(jax.random.PRNGKey(0), "get", N=N, M=M, D=D, f="tanh", noise=0.1)
    key, steps = jax.random.PRNGKey(8), 5 + jnp.arange(6)
    block = model.sample_steps(key, steps, 3)
    normals = model.normals(key, steps, 3)
    assert [z.shape for z in normals] == [(6, n, 3) for n in (*model.groups, 1)]
    for i in (0, 4):
        one = model.realise(tuple(z[i] for z in normals))
        assert one.x.shape == (3, N) and one.y.shape == (3,)
        for a, b in zip(one, jax.tree.map(lambda a, i=i: a[i], block), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    quiet = model.realise(model.normals(key, steps, 3, noise=False))
    np.testing.assert_allclose(quiet.x, block.x, rtol=1e-6, atol=1e-6)
    assert float(jnp.abs(quiet.y - block.y).max()) > 1e-3  # the label noise is left out


def test_batched_picks_per_step_inputs_from_the_samples_a_step():
    from hmmjax.core.schedules import Power
    from hmmjax.train.online import STEP_INPUTS_MIN

    sgd = SGD.create(0.3, 0.1, batch=2, train_second=True, schedule=Power(1.0, 0.5))
    assert not sgd.step_inputs
    assert sgd.batched(STEP_INPUTS_MIN // 2 - 1) is sgd  # unchanged: the same trainer
    many = sgd.batched(STEP_INPUTS_MIN // 2)
    assert many.step_inputs and not sgd.step_inputs
    assert (many.batch, many.train_second, many.schedule) == (2, True, sgd.schedule)
    assert (float(many.lr), float(many.kappa)) == (float(sgd.lr), float(sgd.kappa))
    assert not many.batched(1).step_inputs

    class Own(SGD):  # a subclass with its own __init__ (docs/guides/extending.md)
        def __init__(self, lr):
            self.lr, self.kappa = jnp.asarray(lr), jnp.asarray(0.0)
            self.batch, self.train_second, self.schedule = 1, False, None

    own = Own(0.2).batched(STEP_INPUTS_MIN)
    assert type(own) is Own and own.step_inputs


@pytest.mark.parametrize("name", ["hmm", "iid", "get"])
def test_per_step_inputs_run_the_same_steps(name, realised_steps):
    """``SGD.step_inputs`` (each step makes its samples from the block's normals) against
    the samples of a whole block made at once: an ensemble with weight decay, a mini-batch,
    a schedule, the second layer, a run cut inside blocks. Equal up to rounding."""
    from hmmjax.core.schedules import Power

    E, lo, hi = 3, 5, 150
    model = make_data_model(jax.random.PRNGKey(0), name, N=N, M=M, D=D, f="sign", noise=0.1)
    nets = jax.vmap(lambda k: init_network(k, K, N))(jax.random.split(jax.random.PRNGKey(6), E))
    keys = jax.random.split(jax.random.PRNGKey(7), E)
    sgd = SGD.create(0.4, 0.2, batch=2, train_second=True,
                     schedule=Power(0.5, 1.0))  # fmt: skip
    runs = []
    for members in (1, 64):
        trainer = sgd.batched(members)
        fn = jax.jit(jax.vmap(lambda s, k, t=trainer: advance(s, t, model, k, lo, hi, 16)))
        runs.append(fn(nets, keys))
    assert realised_steps == [(16,), ()]  # a whole block of 16 steps, then one step at a time
    blocks, steps = runs
    assert float(jnp.abs(blocks.w - nets.w).max()) > 1e-2
    np.testing.assert_allclose(steps.w, blocks.w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(steps.v, blocks.v, rtol=1e-5, atol=1e-6)


def test_per_step_inputs_in_a_lane_of_few_students(realised_steps):
    """A lane of few students (Q K < block: step after step) with per-step inputs: each
    student as its own run."""
    Q, block = 3, 16
    model = make_data_model(jax.random.PRNGKey(0), "hmm", N=N, M=M, D=D, f="sign")
    nets = jax.vmap(lambda k: init_network(k, 1, N))(jax.random.split(jax.random.PRNGKey(1), Q))
    key = jax.random.PRNGKey(2)
    trainers = jax.vmap(lambda lr: SGD.create(lr))(jnp.asarray([0.1, 0.3, 0.9])).batched(64)
    assert trainers.step_inputs
    out = trainers.advance_many(nets, model, key, 3, 90, block)
    assert realised_steps == [()]
    for q in range(Q):
        one = jax.tree.map(lambda a, q=q: a[q], (trainers, nets))
        ref = advance(one[1], one[0].batched(1), model, key, 3, 90, block)
        np.testing.assert_allclose(out.w[q], ref.w, rtol=1e-5, atol=1e-6)
