"""Independent groups (hmmjax.core.groups): a batch split into groups gives every unit the
numbers of the unsplit batch; in the engine (its members split) the training bit for bit,
the test-set error to its last bit."""

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
