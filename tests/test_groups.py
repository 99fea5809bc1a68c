"""Independent groups (hmmjax.core.groups): a batch split into groups gives every unit the
numbers of the unsplit batch; in the engine (its members split) the training bit for bit,
the test-set error to its last bit. A single run's members in parts (lanes of their own,
``engine.member_parts``): the numbers of its groups, on one device or on two."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from conftest import small_config

import hmmjax.sweep.engine as engine
from hmmjax.core.groups import CPU_GROUPS, cpu_groups, group_bounds, in_groups
from hmmjax.experiments.driver import simulate
from hmmjax.sweep.lanes import Layout, split_members

BOUNDS = [(7, 3), (5, 3), (2, 8), (1, 4), (9, 1), (8, 2), (3, 0)]  # (size, groups)


@pytest.mark.parametrize(("size", "groups"), BOUNDS)
def test_group_bounds_cover_the_axis_in_near_equal_slices(size, groups):
    bounds = group_bounds(size, groups)
    assert len(bounds) == max(1, min(size, groups))
    assert bounds[0][0] == 0 and bounds[-1][1] == size
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))  # consecutive, no gap
    sizes = [hi - lo for lo, hi in bounds]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("cores", [1, 2, 64])
def test_cpu_groups_fixed_whatever_the_cores(monkeypatch, cores):
    """The same program, hence the same numbers, on every CPU; none on an accelerator."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    cpu = jax.devices("cpu")[0]
    assert cpu_groups([cpu]) == cpu_groups([cpu, cpu]) == CPU_GROUPS == 2

    class Accelerator:
        platform = "gpu"

    assert cpu_groups([Accelerator()]) == 1


@pytest.mark.default_codegen
def test_in_groups_equals_the_unsplit_call():
    """Arguments batched along different axes, one whole, a pytree output: the same."""
    w = jax.random.normal(jax.random.PRNGKey(0), (7, 3, 5))  # batch axis 0
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 7))  # batch axis 1
    scale = jnp.arange(5.0)  # every group gets it whole

    def fn(w, x, scale):
        h = jnp.tanh(jnp.einsum("bkn,nb->bk", w, x * scale[:, None]))
        return {"h": h, "sum": h.sum(-1)}

    whole = jax.jit(fn)(w, x, scale)
    split = jax.jit(in_groups(fn, 3, (0, 1, None), 0))(w, x, scale)
    for k in whole:
        np.testing.assert_array_equal(np.asarray(split[k]), np.asarray(whole[k]))
    assert in_groups(fn, 1, (0, 1, None), 0) is fn
    one = in_groups(fn, 3, (0, 1, None), 0)(w[:1], x[:, :1], scale)  # a batch of one: whole
    np.testing.assert_array_equal(np.asarray(one["h"]), np.asarray(fn(w[:1], x[:, :1], scale)["h"]))
    with pytest.raises(TypeError, match="2 arguments for 3 in_axes"):
        in_groups(fn, 2, (0, 1, None), 0)(w, x)
    with pytest.raises(ValueError, match=r"lengths \[6, 7\], expected one length"):
        in_groups(fn, 2, (0, 1, None), 0)(w, x[:, :6], scale)


# configs on top of conftest's SMALL: the members of one point split (data per member, an
# uneven split of 5; shared data, 32 members: each step's samples made in the step loop);
# the members of a grid's 12 lanes of one point (seed, N, M differ: different recording
# steps; M padded); a finite training set; and lanes of many points (lr, K share a data
# stream), which the engine does not split
CASES = {
    "members, data per member": ({"data": {"shared": False}, "run": {"ensemble": 5}}, True),
    "members, samples in the step loop": ({"run": {"ensemble": 32}}, True),
    "lanes": (
        {"grid": {"seed": [0, 1, 2], "N": [30, 40], "M": [1, 2]}, "run": {"ensemble": 4}},
        True,
    ),
    "finite set": ({"finite": {"P": 40}, "run": {"ensemble": 4, "t_max": 3.0}}, True),
    "points of a lane": (
        {"grid": {"lr": [0.3, 0.6], "K": [1, 2]}, "run": {"ensemble": 4}},
        False,
    ),
}


def _assert_same(whole, split):
    """The training bit for bit; the test-set error (eg_mc, a batched product over the
    group's members) to its last float32 bit."""
    assert set(split.data_vars) == set(whole.data_vars)
    for name in whole.data_vars:
        a, b = whole[name].values, split[name].values
        if name == "eg_mc":
            np.testing.assert_allclose(b, a, rtol=3e-7, atol=0, err_msg=name)
        elif np.issubdtype(a.dtype, np.number) or a.dtype == bool:
            np.testing.assert_array_equal(b, a, err_msg=name)


# the lanes of a grid and a finite set: under the slow marker (10 s each)
@pytest.mark.default_codegen
@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=pytest.mark.slow) if c in ("lanes", "finite set") else c
     for c in CASES],
)  # fmt: skip
def test_engine_in_groups_gives_the_ungrouped_numbers(monkeypatch, case):
    layer, splits_members = CASES[case]
    cfg = small_config(layer)
    monkeypatch.setattr(engine, "_COMPILED", {})  # traced here, with this test's settings
    monkeypatch.setattr(engine, "cpu_groups", lambda devices: 1)
    whole = simulate(cfg, progress=False)
    monkeypatch.setattr(engine, "_COMPILED", {})
    monkeypatch.setattr(engine, "MIN_GROUP_MEMBERS", 2)
    monkeypatch.setattr(engine, "cpu_groups", lambda devices: 4)
    members = []  # the members each traced call of the lanes' function got

    def spy(fn, groups, in_axes, out_axis):
        def counted(*args):
            members.append(args[4].shape[1])  # the keys (L, E, ...)
            return fn(*args)

        return in_groups(counted, groups, in_axes, out_axis)

    monkeypatch.setattr(engine, "in_groups", spy)
    split = simulate(cfg, progress=False)
    _assert_same(whole, split)
    assert min(members) >= 2  # two members a group at least
    E = cfg.run.ensemble
    assert (min(members) < E) == splits_members  # split, or kept whole
    assert np.isfinite(whole.eg_mc.values).any()


@pytest.mark.parametrize("E", [32, pytest.param(64, marks=pytest.mark.slow)])
def test_groups_at_the_default_optimisation_level(tmp_path, E):
    """As users' programs are compiled (conftest compiles the suite at level 0): a single
    run of E members (samples made in the step loop), whole and in the CPU's groups (the
    engine's defaults)."""
    code = f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from conftest import small_config
        import hmmjax.sweep.engine as engine
        from hmmjax.experiments import simulate
        for groups in (1, 2):
            engine.cpu_groups = lambda devices, g=groups: g
            ds = simulate(small_config(run={{"ensemble": {E}}}), progress=False)
            ds.drop_attrs().to_netcdf(r"{tmp_path}/g%d.nc" % groups)
    """
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, check=True,
                   capture_output=True, text=True, timeout=300)  # fmt: skip
    whole, split = (xr.load_dataset(tmp_path / f"g{g}.nc") for g in (1, 2))
    _assert_same(whole, split)


class _Device:
    def __init__(self, platform):
        self.platform = platform


@pytest.mark.parametrize(
    ("points", "members", "shared", "platform", "model", "parts"),
    [
        ([[0]], 256, True, "cpu", 10, 2),  # a single run: two parts
        ([[0]], 32, True, "cpu", 10, 2),  # 16 members a part, the least
        ([[0]], 30, True, "cpu", 10, 1),  # 15 a part: too few
        ([[0]], 33, True, "cpu", 10, 1),  # parts of unequal sizes: not split
        ([[0]], 256, False, "cpu", 10, 1),  # data per member: not split
        ([[0], [1]], 256, True, "cpu", 10, 1),  # two lanes: the devices take lanes
        ([[0, 1]], 256, True, "cpu", 10, 1),  # a lane of two points
        ([[0]], 256, True, "gpu", 10, 1),  # an accelerator batches the members
        ([[0]], 256, True, "cpu", 512, 2),  # a model as large as the states
        ([[0]], 256, True, "cpu", 513, 1),  # larger: each part would read it all
    ],
)
def test_member_parts(points, members, shared, platform, model, parts):
    """From the layout, the lanes' shapes (members' states (L, Q, E, 2, N); the model, D
    rows of N) and the platform."""
    from hmmjax.sweep.lanes import Lanes

    N, L, Q = 30, *np.array(points).shape
    shape = jax.ShapeDtypeStruct
    lanes = Lanes(students=shape((L, Q, members, 2, N), np.float32), trainer=None,
                  model=shape((L, model, N), np.float32), keys=shape((L, members, 2), np.uint32),
                  test=None)  # fmt: skip
    layout = Layout(np.array(points))
    assert engine.member_parts(lanes, layout, shared, [_Device(platform)]) == parts


def test_a_layout_in_parts_joins_its_members_back():
    """Lanes (3 points, 2 slots) split in 2 parts: to_points gives the unsplit arrays."""
    whole = Layout(np.array([[0, 1], [2, 2]]))  # the second lane repeats its point
    split = split_members(whole, 2)
    assert split.n_lanes == 4 and split.parts == 2
    E, n = 6, 3
    a = np.arange(whole.n_lanes * 2 * E * n).reshape(whole.n_lanes * 2, E, n)  # (L Q, E, n)
    lanes = a.reshape(2, 2, 2, E // 2, n)  # (lane, slot, part, members of a part, n)
    parts = lanes.transpose(0, 2, 1, 3, 4).reshape(8, E // 2, n)  # (lane part, slot) flat
    np.testing.assert_array_equal(split.to_points(parts), whole.to_points(a))
    assert split_members(whole, 1) is whole
    with pytest.raises(ValueError, match="already split in 2 parts"):
        split_members(split, 2)


@pytest.mark.default_codegen
def test_member_parts_on_one_or_two_devices(tmp_path):
    """At the default optimisation level, with two host devices: a single run of E = 32
    whole (no groups, no parts), in two groups of one lane (no parts: the engine before
    the parts), in 2 parts on one device and on two, and resumed on one device from a
    checkpoint the two devices wrote after their second chunk. The parts give the same
    numbers on one device or two and resumed, bit for bit, those of the two groups after
    t = 0, and the whole run's numbers (the test-set error to its last bit)."""
    code = f"""
        import sys
        import numpy as np
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from conftest import small_config
        import hmmjax.experiments.driver as driver
        import hmmjax.sweep.engine as engine
        from hmmjax.experiments import simulate
        saved, write = [], engine.save_checkpoint
        engine.save_checkpoint = lambda path, state: (saved.append(dict(state)),
                                                      write(path, state))
        parts = driver.member_parts
        runs = {{"whole": (1, 1, True), "groups": (2, 1, False), "one": (2, 1, True),
                 "two": (2, "all", True)}}
        for name, (groups, devices, split) in runs.items():
            engine.cpu_groups = lambda devices, g=groups: g
            driver.member_parts = parts if split else lambda *args: 1
            engine._COMPILED.clear()
            cfg = small_config(run={{"ensemble": 32, "devices": devices, "chunk": 1,
                                     "n_times": 4}})
            ckpt = r"{tmp_path}/%s.ckpt.npz" % name
            ds = simulate(cfg, progress=False, checkpoint=__import__("pathlib").Path(ckpt))
            print(name, ds.attrs["plan"])
            ds.drop_attrs().to_netcdf(r"{tmp_path}/%s.nc" % name)
        np.savez(r"{tmp_path}/resumed.ckpt.npz", **saved[-3])  # two's, after its 2nd chunk
    """
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, check=True,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    plans = dict(line.split(" ", 1) for line in run.stdout.strip().splitlines())
    assert "1 data stream(s) in 1 batch(es) of 1 lanes on 1 device(s)" in plans["whole"]
    assert "1 data stream(s) in 1 batch(es) of 1 lanes on 1 device(s)" in plans["groups"]
    assert "its members in 2 parts, in 1 batch(es) of 2 lanes on 1 device(s)" in plans["one"]
    assert "its members in 2 parts, in 1 batch(es) of 2 lanes on 2 device(s)" in plans["two"]
    names = ("whole", "groups", "one", "two")
    whole, groups, one, two = (xr.load_dataset(tmp_path / f"{n}.nc") for n in names)
    # resumed here, on this process's one device, from the two devices' checkpoint
    cfg = small_config(run={"ensemble": 32, "chunk": 1, "n_times": 4})
    resumed = simulate(cfg, progress=False, checkpoint=tmp_path / "resumed.ckpt.npz")
    assert "on 1 device(s)" in resumed.attrs["plan"]
    for name in one.data_vars:
        for label, other in (("two", two), ("resumed", resumed)):
            np.testing.assert_array_equal(other[name].values, one[name].values,
                                          err_msg=f"{name}, {label}")  # fmt: skip
    # the engine before the parts: its first measurement (t = 0) took the test-set error
    # over the lane's 32 members at once, the parts over 16: the last bit; then identical
    later = groups.isel(t=slice(1, None))
    for name in one.data_vars:
        np.testing.assert_array_equal(later[name].values, one.isel(t=slice(1, None))[name].values,
                                      err_msg=name)  # fmt: skip
    _assert_same(groups, one)
    _assert_same(whole, two)


def test_a_run_in_member_parts_resumes_bit_for_bit(tmp_path, saved_checkpoints):
    """A single run of 32 members (two parts, one device here) killed after its second
    chunk resumes from the checkpoint to the uninterrupted numbers."""
    cfg = small_config(run={"ensemble": 32, "chunk": 1, "n_times": 4})
    ckpt = tmp_path / "run.ckpt.npz"
    full = simulate(cfg, progress=False, checkpoint=ckpt)
    assert "its members in 2 parts" in full.attrs["plan"]
    assert len(saved_checkpoints) >= 3
    np.savez(ckpt, **saved_checkpoints[1])  # as if killed after the second chunk
    resumed = simulate(cfg, progress=False, checkpoint=ckpt)
    for name in full.data_vars:
        np.testing.assert_array_equal(resumed[name].values, full[name].values, err_msg=name)
