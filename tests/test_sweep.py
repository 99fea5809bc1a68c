"""One compiled sweep: padding and masks change nothing, divergence, batching, the Dataset."""

import jax
import numpy as np
import pytest
from conftest import small_config

from hmmjax.config.schema import ConfigError
from hmmjax.experiments.driver import simulate
from hmmjax.models.two_layer import pad_network
from hmmjax.sweep.engine import run_points
from hmmjax.sweep.lanes import (
    build_lanes,
    point_configs,
    point_steps,
    record_times,
    stream_layout,
)
from hmmjax.sweep.ode import ode_points
from hmmjax.sweep.plan import Plan, choose_devices
from hmmjax.sweep.setup import build


def _train(cfgs, steps, batch=None):
    """The engine on ``cfgs`` (one compiled call per chunk), without the Dataset layer,
    in batches of ``batch`` points (default: all)."""
    cfg = cfgs[0]
    devices = choose_devices(cfg)[:1]
    layout = stream_layout(cfgs)
    plan = Plan(layout.n_lanes, batch or layout.n_lanes, 1)
    lanes = build_lanes(cfgs, layout=layout)
    out = run_points(lanes, steps, plan, devices, shared=cfg.data.shared, block=cfg.run.block,
                     chunk=cfg.run.chunk, bound=cfg.run.diverge_eg, stamp="test",
                     layout=layout, progress=False)  # fmt: skip
    return out, plan


# configs: on top of conftest's SMALL (hmm data, N = 30, t_max = 2, 2 members, chunks of 3)
# Points that pad every axis of shape (K, M, D, N) against the grid's largest, point 1;
# M, D, N and seed change the data, so each is a lane of its own (one compiled draw each),
# except point 6, which shares point 0's lane (padded data, two widths K in one lane).
HMM_GRID = {
    "data": {"N": 50, "D": 6, "f": "sign"},
    "sgd": {"lr": 0.5},
    "grid": {
        "points": [
            {"K": 1, "M": 1, "D": 4, "N": 40, "seed": 0},
            {"K": 3, "M": 2, "D": 7, "N": 56, "seed": 1},
            {"K": 3, "M": 1, "D": 4, "N": 56, "seed": 0},
            {"K": 1, "M": 2, "D": 7, "N": 40, "seed": 1},
            {"K": 3, "M": 2, "D": 4, "N": 40, "seed": 0},
            {"K": 1, "M": 1, "D": 7, "N": 56, "seed": 1},
            {"K": 3, "M": 1, "D": 4, "N": 40, "seed": 0},
        ]
    },
}


@pytest.fixture(scope="module")
def hmm_grid():
    cfg = small_config(HMM_GRID)
    cfgs = point_configs(cfg)
    times = record_times(cfgs)
    steps = point_steps(cfgs, times)
    prog, _ = _train(cfgs, steps)
    return cfgs, steps, prog


def test_grid_points_and_shared_times(hmm_grid):
    cfgs, steps, prog = hmm_grid
    assert len(cfgs) == 7
    assert stream_layout(cfgs).n_lanes == 6  # points 0 and 6 share a data stream
    assert prog.history["eg"].shape == (7, 2, steps.shape[1])
    assert prog.history["Q"].shape == (7, 2, steps.shape[1], 3, 3)
    # every point records at the same times t = steps / N
    t = steps / np.array([c.data.N for c in cfgs])[:, None]
    np.testing.assert_allclose(t, np.broadcast_to(t[0], t.shape), atol=0.5 / 40)


@pytest.mark.parametrize(
    "point", [0, pytest.param(3, marks=pytest.mark.slow), 6]
)  # K, M, D, N; K, N; M, D, N in a lane of 2
def test_padded_point_equals_its_unpadded_run(hmm_grid, point):
    """K, M, D, N padded to the grid's maximum and masked: the same numbers."""
    cfgs, steps, prog = hmm_grid
    single, _ = _train([cfgs[point]], steps[point : point + 1])
    c = cfgs[point]
    K, M = c.student.K, c.teacher.M
    h, s = prog.history, single.history
    for name in ("eg", "eg_mc"):
        np.testing.assert_allclose(h[name][point], s[name][0], rtol=2e-5, atol=1e-7)
    np.testing.assert_allclose(h["Q"][point][..., :K, :K], s["Q"][0], rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(h["R"][point][..., :K, :M], s["R"][0], rtol=2e-5, atol=1e-6)
    # the padded units stay exactly zero
    assert np.all(h["Q"][point][..., K:, :] == 0) and np.all(h["v"][point][..., K:] == 0)


SHARED_GRID = {  # a lane of 8 points, K <= 2: Q K >= run.block, the delayed block updates
    "data": {"N": 40, "D": 6, "f": "sign"},
    "student": {"train_second": True},
    "run": {"block": 8},
    "grid": {"lr": [0.2, 0.7], "kappa": [0.0, 0.1], "K": [1, 2], "seed": [0, 1]},
}


def test_points_of_a_data_stream_share_one_lane():
    cfgs = point_configs(small_config(SHARED_GRID))
    layout = stream_layout(cfgs)
    assert layout.points.shape == (2, 8)  # one lane per seed: lr, kappa, K share the data
    assert {cfgs[i].run.seed for i in layout.points[0]} == {0}
    np.testing.assert_array_equal(np.sort(layout.points.ravel()), np.arange(16))
    assert stream_layout(cfgs, share=False).points.shape == (16, 1)
    # what changes the samples starts a lane of its own
    other = point_configs(small_config(SHARED_GRID, grid={"lr": [0.2, 0.7], "noise": [0, 0.1]}))
    assert stream_layout(other).n_lanes == 2


def test_setup_and_stream_keys_name_what_points_share():
    """Points that differ in lr, kappa or K share their data stream; in lr and kappa their
    drawn set-up; a seed or noise changes both, noise only the stream (the set-up is
    drawn before the noise). The keys are 32-digit digests, cached for a whole grid."""
    from hmmjax.config import MAX_POINTS
    from hmmjax.sweep.lanes import setup_key, stream_key

    cfgs = point_configs(small_config(SHARED_GRID))  # lr x kappa x K x seed
    by = {(c.sgd.lr, c.sgd.kappa, c.student.K, c.run.seed): c for c in cfgs}
    base = by[(0.2, 0.0, 1, 0)]
    for other, same_stream, same_setup in [
        (by[(0.7, 0.1, 1, 0)], True, True),  # lr, kappa
        (by[(0.2, 0.0, 2, 0)], True, False),  # K: the student is drawn
        (by[(0.2, 0.0, 1, 1)], False, False),  # seed
        (base.replace(data={"noise": 0.1}), False, True),  # noise: added to the labels
    ]:
        assert (stream_key(other) == stream_key(base)) == same_stream, other
        assert (setup_key(other) == setup_key(base)) == same_setup, other
    key = setup_key(base)
    assert len(key) == 32 and int(key, 16) >= 0
    assert min(setup_key.cache_info().maxsize, stream_key.cache_info().maxsize) >= MAX_POINTS


def test_lanes_hold_each_points_own_setup_and_trainer():
    """The lanes built from set-ups and trainers shared by the points (each padded or
    made once, stacked once and indexed) hold what each point builds by itself."""
    cfgs = point_configs(small_config(SHARED_GRID))
    layout = stream_layout(cfgs)
    lanes = build_lanes(cfgs, layout=layout)
    K = max(c.student.K for c in cfgs)
    for (lane, slot), p in np.ndenumerate(layout.points):
        own = build(cfgs[p])
        want = pad_network(own.students, K, cfgs[p].data.N)
        got = jax.tree.map(lambda a, lane=lane, slot=slot: a[lane, slot], lanes.students)
        np.testing.assert_array_equal(got.w, want.w)
        np.testing.assert_array_equal(got.v, want.v)
        assert float(lanes.trainer.lr[lane, slot]) == np.float32(cfgs[p].sgd.lr)
        assert float(lanes.trainer.kappa[lane, slot]) == np.float32(cfgs[p].sgd.kappa)
        if slot == 0:  # the lane's data: its first point's
            np.testing.assert_array_equal(lanes.keys[lane], own.stream_keys)
            np.testing.assert_array_equal(lanes.test.x[lane], own.test.x)
            for got_f, want_f in zip(jax.tree.leaves(lanes.model.features),
                                     jax.tree.leaves(own.model.features), strict=True):  # fmt: skip
                np.testing.assert_array_equal(got_f[lane], want_f)
    assert lanes.trainer.lr.shape == layout.points.shape


def test_shared_stream_points_equal_their_single_runs():
    """Common random numbers change nothing: every point of a lane is its own single run."""
    cfgs = point_configs(small_config(SHARED_GRID))
    steps = point_steps(cfgs, record_times(cfgs))
    prog, plan = _train(cfgs, steps)
    assert plan.n_lanes == 2
    for point in (0, 3, 6, 9, 12, 15):  # both lanes, both K, every lr and kappa
        single, _ = _train([cfgs[point]], steps[point : point + 1])
        K = cfgs[point].student.K
        h, s = prog.history, single.history
        np.testing.assert_allclose(h["eg"][point], s["eg"][0], rtol=2e-5, atol=1e-7)
        np.testing.assert_allclose(h["Q"][point][..., :K, :K], s["Q"][0], rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(h["v"][point][..., :K], s["v"][0], rtol=2e-5, atol=1e-6)
    # and the points differ: they did train with their own lr, kappa and K
    assert len({float(prog.history["eg"][p, 0, -1]) for p in range(len(cfgs))}) == len(cfgs)


def test_lanes_of_unequal_size_are_padded_with_copies():
    """A list of points whose streams hold 2 and 1 points: the short lane repeats its
    point in the spare slot, and every point still gets its own single run's numbers."""
    cfg = small_config(SHARED_GRID, grid={"points": [{"lr": 0.2, "seed": 0},
                                                     {"lr": 0.7, "seed": 0},
                                                     {"lr": 0.7, "seed": 1}]})  # fmt: skip
    cfgs = point_configs(cfg)
    layout = stream_layout(cfgs)
    np.testing.assert_array_equal(layout.points, [[0, 1], [2, 2]])
    steps = point_steps(cfgs, record_times(cfgs))
    prog, _ = _train(cfgs, steps)
    assert prog.history["eg"].shape[0] == 3
    single, _ = _train(cfgs[2:], steps[2:])
    np.testing.assert_allclose(prog.history["eg"][2], single.history["eg"][0], rtol=2e-5)


def test_padded_ode_point_equals_its_unpadded_run():
    """Point 0 of HMM_GRID beside the point that pads it in K, M, D and N (the grid's two
    extremes: each further point is one more set-up to draw and compile)."""
    first, widest = HMM_GRID["grid"]["points"][:2]
    cfg = small_config(HMM_GRID, run={"mode": "ode"}, ode={"nodes": 9},
                       grid={"points": [first, widest]})  # fmt: skip
    cfgs = point_configs(cfg)
    times = record_times(cfgs)
    all_points = ode_points(cfgs, {}, times)
    c = cfgs[0]
    assert all(getattr(cfgs[1].data, k) > getattr(c.data, k) for k in ("D", "N"))
    assert cfgs[1].student.K > c.student.K and cfgs[1].teacher.M > c.teacher.M
    one = ode_points([c], {}, times)
    K, M = c.student.K, c.teacher.M
    np.testing.assert_allclose(all_points["eg"][0], one["eg"][0], rtol=1e-11)
    np.testing.assert_allclose(all_points["R"][0][:, :K, :M], one["R"][0], rtol=1e-10,
                               atol=1e-14)  # fmt: skip
    assert np.all(all_points["Q"][0][:, K:, :] == 0)


def test_iid_ode_grid_equals_single_runs():
    d = {
        "data": {"model": "iid", "N": 40},
        "run": {"mode": "ode"},
        # the two corners of lr x K x M x noise (each further point: one more set-up)
        "grid": {"points": [{"lr": 0.3, "K": 1, "M": 1, "noise": 0.0},
                            {"lr": 1.0, "K": 2, "M": 3, "noise": 0.2}]},
    }  # fmt: skip
    cfgs = point_configs(small_config(d))
    times = record_times(cfgs)
    grid = ode_points(cfgs, {}, times)
    for point in (0, 1):  # padded in K and M, and not (lr, noise: not shapes)
        one = ode_points([cfgs[point]], {}, times)
        np.testing.assert_allclose(grid["eg"][point], one["eg"][0], rtol=1e-12)


def test_divergence_is_flagged_frozen_and_isolated():
    d = {
        "data": {"model": "iid", "N": 40},
        "student": {"g": "linear", "K": 2},
        "run": {"t_max": 4.0, "diverge_eg": 1e3},
        "grid": {"lr": [0.05, 30.0]},
    }
    cfgs = point_configs(small_config(d))
    steps = point_steps(cfgs, record_times(cfgs))
    prog, _ = _train(cfgs, steps)
    dead = prog.dead
    assert not dead[0].any() and dead[1].all(axis=0)[-1]
    first = int(np.argmax(dead[1, 0]))
    assert np.all(np.isnan(prog.history["eg"][1, 0, first:]))
    assert np.all(np.isfinite(prog.history["eg"][1, 0, :first]))
    alone, _ = _train(cfgs[:1], steps[:1])
    np.testing.assert_allclose(prog.history["eg"][0], alone.history["eg"][0], rtol=1e-6)


def test_batches_give_the_numbers_of_one_batch(hmm_grid):
    cfgs, steps, prog = hmm_grid
    few = cfgs[:5]
    batched, plan = _train(few, steps[:5], batch=2)
    assert plan.n_batches == 3
    np.testing.assert_allclose(batched.history["eg"], prog.history["eg"][:5], rtol=1e-5)
    np.testing.assert_array_equal(batched.dead, prog.dead[:5])


def test_memory_estimate_too_large_is_an_error_before_any_work():
    d = {**HMM_GRID, "run": {"memory_gib": 1e-4}}
    with pytest.raises(ConfigError, match="run.memory_gib.*GiB"):
        simulate(small_config(d), progress=False)


def test_an_ode_run_too_large_for_memory_is_refused_before_drawing(monkeypatch):
    """``run.mode = "ode"`` and ``hmmjax optimise`` measure their set-ups (a Gaussian F of
    D N floats, and the ODE's float64 copy of it) before drawing anything: one line naming
    run.memory_gib and its value (at N = 2^17 XLA aborted the process instead). The same N
    with the Walsh-Hadamard F fits."""
    import hmmjax.sweep.ode as sweep_ode
    from hmmjax.experiments.optimise import optimise
    from hmmjax.sweep.memory import check_ode_setups, ode_sample_bytes
    from hmmjax.sweep.plan import device_budget

    def build(cfg, test=True):
        raise AssertionError("a set-up was drawn")

    monkeypatch.setattr(sweep_ode, "build", build)
    big = {"data": {"N": 4096, "D": 2048}, "run": {"mode": "ode", "memory_gib": 0.5}}
    cfg = small_config(big)
    assert ode_sample_bytes(cfg) == 8 * 2048 * 4096 + 32 * 2048**2  # F's copy, Gram, eigh
    refused = r"run.memory_gib = 0.5: the ODE's set-ups need about 0\.\d+ GiB.*hadamard"
    with pytest.raises(ConfigError, match=refused):
        simulate(cfg, progress=False)
    with pytest.raises(ConfigError, match=refused):
        optimise(cfg.replace(sgd={"schedule": "constant"}), progress=False)
    had = small_config(big, data={"features": "hadamard"})
    assert ode_sample_bytes(had) == 0
    assert check_ode_setups([had], device_budget(had)) < 0.5 * 2**30


def test_more_devices_than_there_are_is_an_error():
    with pytest.raises(ConfigError, match="run.devices = 64"):
        simulate(small_config(HMM_GRID, run={"devices": 64}), progress=False)


def test_dataset_of_a_product_grid():
    d = {
        "data": {"model": "iid", "N": 30},
        "run": {"mode": "both"},
        "grid": {"lr": [0.2, 0.6, 1.0], "K": [1, 2]},
    }
    ds = simulate(small_config(d), progress=False)
    assert ds.eg_sim.dims == ("lr", "K", "member", "t")
    assert ds.eg_ode.dims == ("lr", "K", "t")
    assert ds.Q.dims == ("lr", "K", "member", "t", "k", "l")
    assert list(ds.lr.values) == [0.2, 0.6, 1.0] and list(ds.K.values) == [1, 2]
    # K = 1 points: the padded unit is NaN; the real one is not
    assert np.isnan(ds.Q.sel(K=1).values[..., 1, :]).all()
    assert np.isfinite(ds.Q.sel(K=1).values[..., 0, 0]).all()
    np.testing.assert_allclose(ds.eg_sim_mean.values, ds.eg_sim.mean("member").values)
    assert ds.diverged.dtype == bool and not ds.diverged.any()
    assert ds.attrs["swept"] == '["lr", "K"]'
    # eg from the order parameters and Monte Carlo agree on the test set's scale
    assert np.allclose(ds.eg.values, ds.eg_mc.values, rtol=0.3, atol=0.02)


def test_dataset_of_explicit_points():
    d = {
        "data": {"model": "iid", "N": 30},
        "grid": {"points": [{"lr": 0.2, "K": 1}, {"lr": 0.5, "K": 3}]},
    }
    ds = simulate(small_config(d), progress=False)
    assert ds.eg_sim.dims == ("point", "member", "t")
    assert list(ds.K.values) == [1, 3] and ds.K.dims == ("point",)


def test_a_checkpoint_of_another_config_is_refused(tmp_path):
    from hmmjax.sweep.checkpoint import FORMAT, save_checkpoint

    ckpt = tmp_path / "run.nc.ckpt.npz"
    save_checkpoint(ckpt, {"format": np.asarray(FORMAT), "fingerprint": np.asarray("another"),
                           "batch": np.asarray(0)})  # fmt: skip
    d = {"data": {"model": "iid", "N": 30}, "grid": {"lr": [0.2, 0.5]}}
    with pytest.raises(ConfigError, match="different config.*--fresh"):
        simulate(small_config(d), progress=False, checkpoint=ckpt)
    assert ckpt.exists()  # nothing of the user's is deleted
    # a checkpoint of an earlier format (no "format" key: before the one engine)
    save_checkpoint(ckpt, {"fingerprint": np.asarray("another"), "batch": np.asarray(0)})
    with pytest.raises(ConfigError, match="another version of hmmjax.*--fresh"):
        simulate(small_config(d), progress=False, checkpoint=ckpt)


def test_sweep_results_file_and_figure(tmp_path):
    from hmmjax.cli import main
    from hmmjax.io.results import read_dataset

    d = {"data": {"model": "iid", "N": 30}, "grid": {"lr": [0.2, 0.5], "K": [1, 2]}}
    toml = tmp_path / "s.toml"
    toml.write_text(
        small_config(d).to_toml().replace('out = "results/hmmjax.nc"', f'out = "{tmp_path}/s.nc"')
    )
    assert main(["run", str(toml), "-q"]) == 0
    ds = read_dataset(tmp_path / "s.nc")
    assert ds.eg_sim.dims == ("lr", "K", "member", "t")
    assert (tmp_path / "s.png").stat().st_size > 10_000
    assert not (tmp_path / "s.nc.ckpt.npz").exists()
    assert main(["plot", str(tmp_path / "s.nc"), "--out", str(tmp_path / "again.png")]) == 0
    assert (tmp_path / "again.png").stat().st_size > 10_000
