"""Independent groups (hmmjax.core.groups): a batch split into groups gives every unit the
numbers of the unsplit batch, bit for bit, in the engine too (its members split)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import small_config

import hmmjax.sweep.engine as engine
from hmmjax.core.groups import MAX_GROUPS, cpu_groups, group_bounds, in_groups
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


def test_cpu_groups_one_per_core_of_each_device_at_most_max():
    cpu = jax.devices("cpu")
    assert 1 <= cpu_groups(cpu[:1]) <= MAX_GROUPS

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
    split = jax.jit(in_groups(fn, 3, (0, 1, None), 0, 7))(w, x, scale)
    for k in whole:
        np.testing.assert_array_equal(np.asarray(split[k]), np.asarray(whole[k]))
    assert in_groups(fn, 1, (0, 1, None), 0, 7) is fn
    with pytest.raises(TypeError, match="2 arguments for 3 in_axes"):
        in_groups(fn, 2, (0, 1, None), 0, 7)(w, x)


# configs on top of conftest's SMALL: the members of one point split (data shared or not,
# an uneven split of 5); the members of a grid's 12 lanes of one point (seed, N, M differ:
# different recording steps; M padded); a finite training set; and lanes of many points
# (lr, K share a data stream), which the engine does not split
CASES = {
    "members": ({"run": {"ensemble": 6}}, True),
    "members, data per member": ({"data": {"shared": False}, "run": {"ensemble": 5}}, True),
    "lanes": (
        {"grid": {"seed": [0, 1, 2], "N": [30, 40], "M": [1, 2]}, "run": {"ensemble": 4}},
        True,
    ),  # fmt: skip
    "finite set": ({"finite": {"P": 40}, "run": {"ensemble": 4, "t_max": 3.0}}, True),
    "points of a lane": (
        {"grid": {"lr": [0.3, 0.6], "K": [1, 2]}, "run": {"ensemble": 4}},
        False,
    ),  # fmt: skip
}


@pytest.mark.parametrize("case", list(CASES))
def test_engine_in_groups_gives_the_ungrouped_numbers(monkeypatch, case):
    layer, splits_members = CASES[case]
    cfg = small_config(layer)
    monkeypatch.setattr(engine, "cpu_groups", lambda devices: 1)
    whole = simulate(cfg, progress=False)
    monkeypatch.setattr(engine, "MIN_GROUP_UNITS", 1)
    monkeypatch.setattr(engine, "cpu_groups", lambda devices: 4)
    splits = []  # the engine's groups: (groups, members)

    def spy(fn, groups, in_axes, out_axis, size):
        splits.append((len(group_bounds(size, groups)), size))
        return in_groups(fn, groups, in_axes, out_axis, size)

    monkeypatch.setattr(engine, "in_groups", spy)
    split = simulate(cfg, progress=False)
    assert splits and all(size >= 2 * n for n, size in splits if n > 1)  # two members a group
    assert any(n >= 2 for n, _ in splits) == splits_members
    assert set(split.data_vars) == set(whole.data_vars)
    for name in whole.data_vars:
        a, b = whole[name].values, split[name].values
        if np.issubdtype(a.dtype, np.number) or a.dtype == bool:
            np.testing.assert_array_equal(b, a, err_msg=name)
    assert np.isfinite(whole.eg_mc.values).any()
