"""Property-based tests (hypothesis): generated configs, ``hmmjax run`` end to end and
generated state files for ``hmmjax ode``.

The properties are those of the documentation and of ``hmmjax.config``: whatever a user writes,
a config is either accepted or refused with a ``ConfigError`` of one line naming the key
(never another exception); the command exits 0 or 2 with one line ``hmmjax: error: ...``
(never a traceback); a state file is accepted or refused with a one-line ``ValueError``
naming the file and the array.

Every test is derandomized (the same examples on every run, so CI is reproducible) and
keeps no example database. The config tests never compile anything and run hundreds of
examples; the end-to-end tests compile JAX code and run a handful.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import re
import struct
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hmmjax.config import load_config
from hmmjax.config.grid import AXES
from hmmjax.config.schema import (
    ACTIVATIONS,
    ODE_F,
    ODE_G,
    SCALINGS,
    SCHEMA,
    ConfigError,
    Option,
    one_line,
)
from hmmjax.config.settings import Config, config_from_dict
from hmmjax.io.state import OPTIONAL_KEYS, REQUIRED_KEYS, SHAPES

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "configs" / "quickstart.toml"
BASE = load_config(QUICKSTART).to_dict()  # a valid config: every generated one starts here

FAST = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SLOW = settings(  # compiles JAX code: a handful of examples, no shrinking (minutes each)
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def assert_one_line_config_error(err: BaseException, labels: list[str]) -> str:
    """``err`` is a ``ConfigError`` whose message is one line naming one of ``labels``
    (a key "run.seed", a section "[foo]", or a regex of the grid's names)."""
    assert type(err) is ConfigError, f"{type(err).__name__} instead of ConfigError: {err}"
    message = str(err)
    assert message, "an empty message"
    assert "\n" not in message and "\r" not in message, f"not one line: {message!r}"
    assert any(
        (
            re.search(label[3:], message)
            if label.startswith("re:")
            else label in message or one_line(label) in message  # odd keys show escaped
        )
        for label in labels
    ), f"names none of {labels}: {message!r}"
    return message


# grid.lr, grid.lr[1], grid.points[0], grid = .., grid: (the table as a whole), grid point
GRID_LABEL = r"re:\bgrid(\.|\[| =|:| point)"


# --------------------------------------------------------------------------- values

# values of the wrong type, non-finite, huge, negative, zero, empty, unknown, unicode
NUMBERS = [
    0, -1, 1, 2, -0.0, 0.0, 0.5, -0.5, 1.0, 2.0, 1e-320, 5e-324, 1e300, -1e300,
    1.7976931348623157e308, math.nan, math.inf, -math.inf, 2**31, 2**32, 2**53 + 1, 2**63,
    2**64 - 1, 2**64, 2**70, -(2**70), 10**400, -(10**400),  # the last two: beyond a float
]  # fmt: skip
WORDS = [
    "", " ", "0", "1", "0.5", "nan", "inf", "true", "auto", "all", "full", "none", "hmm ",
    "HMM", "ｈｍｍ", "é", "日本", "\u2028", "a\nb", "\t", "\x00", "\x7f",
]  # fmt: skip
OTHERS = [
    None, True, False, [], [1], [0.5, "x"], {}, {"a": 1}, {"start": 1, "stop": 2, "num": 2},
    b"1", 1 + 2j, (1, 2), np.int64(3), np.float32(0.5), np.float64(np.nan), np.bool_(True),
]  # fmt: skip

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(NUMBERS),
    st.sampled_from(WORDS),
    st.sampled_from(OTHERS),
    # beyond Python's limit of int -> str (4300 digits); built, as repr() cannot show it
    st.builds(pow, st.just(10), st.just(5000)),
)
ODD = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=6), SCALARS, max_size=3),
)
NAMES = st.one_of(st.text(max_size=10), st.sampled_from(["", " ", "a\nb", "LR", "lr ", "Seed"]))


def valid_value(opt: Option) -> st.SearchStrategy:
    """Values that ``opt`` allows (near its bounds and far from them)."""
    if opt.choices is not None:
        return st.sampled_from(opt.choices)
    if opt.key == "run.seed":
        return st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 2**64 - 1]))
    kinds = getattr(opt.type, "__args__", None) or (opt.type,)
    options = []
    if str in kinds and opt.type is not str:  # "auto" | number
        options.append(st.just(opt.default))
    if bool in kinds:
        options.append(st.booleans())
    if int in kinds:
        low = int(opt.gt) + 1 if opt.gt is not None else int(opt.ge or 0)
        low = 2 if opt.key == "ode.nodes" else 1 if opt.key == "run.devices" else low
        options.append(st.one_of(st.integers(low, low + 100), st.integers(low, 2**70)))
    if float in kinds:
        options.append(
            st.floats(
                min_value=opt.gt if opt.gt is not None else opt.ge,
                max_value=1e300,
                exclude_min=opt.gt is not None,
                allow_nan=False,
            )
        )
    if opt.type is str:
        options.append(st.text(max_size=12))
    return st.one_of(options)


def any_value(opt: Option) -> st.SearchStrategy:
    return st.one_of(valid_value(opt), ODD)


KEYS = [(section, name) for section, options in SCHEMA.items() for name in options]


def _safe_repr(value: Any) -> str:
    """repr, also of ints beyond Python's 4300-digit limit of int -> str."""
    try:
        return repr(value)
    except ValueError:  # a huge int, or a list or table holding one
        return f"<{type(value).__name__} {id(value)}>"


def axis_value(name: str) -> st.SearchStrategy:
    section, key = AXES[name]
    return any_value(SCHEMA[section][key])


def axis_range(name: str) -> st.SearchStrategy:
    """A range table {start, stop, num | step, spacing}, some keys missing or odd; at most
    a few hundred values (huge ranges: test_huge_grid_ranges_are_refused)."""
    section, key = AXES[name]
    number = st.one_of(valid_value(SCHEMA[section][key]), st.integers(-5, 50), SCALARS)
    small = st.one_of(st.integers(-2, 40), st.sampled_from([0, 1, 2, 3, 7]), SCALARS)
    table = st.fixed_dictionaries(
        {},
        optional={
            "start": number,
            "stop": number,
            "num": small,
            "step": small,
            "spacing": st.one_of(st.sampled_from(["linear", "log", "Log", ""]), SCALARS),
            "stride": small,
        },
    )
    return table.filter(_small_range)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _small_range(spec: dict) -> bool:
    num, step, start, stop = (spec.get(k) for k in ("num", "step", "start", "stop"))
    if _is_int(num) and num > 400:
        return False
    if _is_int(step) and step > 0 and _is_int(start) and _is_int(stop):
        return (stop - start) // step < 400
    return True


def axis_spec(name: str) -> st.SearchStrategy:
    return st.one_of(
        st.lists(axis_value(name), min_size=0, max_size=4),
        st.lists(axis_value(name), min_size=1, max_size=3, unique_by=_safe_repr),
        axis_range(name),
        ODD,
    )


AXIS_NAMES = st.one_of(st.sampled_from(list(AXES)), NAMES)


def _spec(name: Any) -> st.SearchStrategy:
    return axis_spec(name) if name in AXES else ODD


@st.composite
def grids(draw) -> Any:
    """A [grid] table: product axes (at most 3 of at most 4 values), points, or junk."""
    kind = draw(st.sampled_from(["product", "product", "points", "junk"]))
    if kind == "junk":
        return draw(st.one_of(ODD, st.just({"points": []}), st.just({"points": {}})))
    if kind == "product":
        names = draw(st.lists(AXIS_NAMES, min_size=0, max_size=3, unique=True))
        return {name: draw(_spec(name)) for name in names}
    names = draw(st.lists(AXIS_NAMES, min_size=1, max_size=2, unique=True))
    n = draw(st.integers(1, 3))
    points = []
    for _ in range(n):
        point = {name: draw(axis_value(name) if name in AXES else ODD) for name in names}
        if draw(st.integers(0, 9)) == 0:  # a point with other axes
            point = draw(st.dictionaries(AXIS_NAMES, SCALARS, max_size=2))
        points.append(point)
    table: dict[str, Any] = {"points": points}
    if draw(st.integers(0, 9)) == 0:
        table[draw(AXIS_NAMES)] = draw(SCALARS)
    return table


@st.composite
def mutations(draw) -> tuple[str, Any, Any, Any]:
    """One change of a config dict: (kind, section, key, value)."""
    kind = draw(
        st.sampled_from(["set"] * 8 + ["delete", "unknown_key", "unknown_section", "section"])
    )
    if kind in ("set", "delete"):
        section, key = draw(st.sampled_from(KEYS))
        return kind, section, key, draw(any_value(SCHEMA[section][key]))
    if kind == "unknown_key":
        section = draw(st.sampled_from(list(SCHEMA)))
        key = draw(st.one_of(NAMES, st.integers(), st.sampled_from(["section", "Lr", "n"])))
        return kind, section, key, draw(ODD)
    if kind == "unknown_section":
        name = draw(st.one_of(NAMES, st.sampled_from(["Data", "grids", "sgd "]), st.integers()))
        return kind, name, None, draw(ODD)
    section = draw(st.sampled_from(list(SCHEMA)))
    return kind, section, None, draw(SCALARS)


def apply(base: dict, changes: list, grid: Any) -> tuple[dict, list[str]]:
    """``base`` with ``changes`` and ``grid`` applied; the labels an error may name."""
    d = copy.deepcopy(base)
    labels = []
    for kind, section, key, value in changes:
        if kind == "set":
            if isinstance(d.get(section), dict):  # (not after "section" replaced it)
                d[section][key] = value
                labels.append(f"{section}.{key}")
        elif kind == "delete":
            if isinstance(d.get(section), dict):
                d[section].pop(key, None)
            labels.append(f"{section}.{key}")
        elif kind == "unknown_key":
            if isinstance(d.get(section), dict) and key not in SCHEMA[section]:
                d[section][key] = value
                labels.append(f"{section}.{key}")
        elif kind == "unknown_section":
            if section not in d:
                d[section] = value
                labels.append(f"[{section}]")
        else:  # a section that is not a table
            d[section] = value
            labels += [f"{section} = ", f"{section}.", f"[{section}]"]
    if grid is not None:
        d["grid"] = grid
        labels.append(GRID_LABEL)
    return d, labels


def check_accepted(cfg: Config) -> None:
    """An accepted config survives its dict and its TOML unchanged (nothing lost), and
    ``check_config`` passes it or refuses it in one line."""
    from hmmjax.experiments import check_config

    assert isinstance(cfg, Config)
    assert config_from_dict(cfg.to_dict()) == cfg
    text = cfg.to_toml()
    try:
        again = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise AssertionError(f"Config.to_toml wrote TOML that cannot be read ({err}):\n{text}")
    assert config_from_dict(again) == cfg
    try:
        check_config(cfg)
    except ConfigError as err:
        assert_one_line_config_error(err, ["data.", "finite.P", "run.test_size", GRID_LABEL])


# --------------------------------------------------------------------------- 1. configs


@FAST
@given(
    changes=st.lists(mutations(), min_size=1, max_size=4),
    grid=st.one_of(st.none(), grids()),
)
@example(changes=[("set", "sgd", "lr", 10**400)], grid=None)
@example(changes=[("set", "data", "N", 10**400)], grid=None)
@example(changes=[("unknown_key", "sgd", "l\nr", 1)], grid=None)
@example(changes=[], grid={"K": {"start": 1, "stop": 10**400, "num": 2}})
def test_generated_configs_are_accepted_or_refused_in_one_line(changes, grid):
    """Property: ``config_from_dict`` of any dict returns a Config or raises a one-line
    ``ConfigError`` that names a changed key (never another exception); an accepted one
    round-trips through its dict and TOML and passes or fails ``check_config`` cleanly."""
    d, labels = apply(BASE, changes, grid)
    try:
        cfg = config_from_dict(d)
    except Exception as err:  # noqa: BLE001 (any other type is the failure)
        assert_one_line_config_error(err, labels)
        return
    check_accepted(cfg)


SPECIALS = [*NUMBERS, *WORDS, *OTHERS, 10**5000]


def _refused_or_accepted(d: dict, labels: list[str]) -> None:
    try:
        cfg = config_from_dict(d)
    except Exception as err:  # noqa: BLE001
        assert_one_line_config_error(err, labels)
        return
    check_accepted(cfg)


KEY_IDS = [f"{s}.{k}" for s, k in KEYS]


@pytest.mark.parametrize(("section", "key"), KEYS, ids=KEY_IDS)
@settings(FAST, max_examples=10)
@given(data=st.data())
def test_every_key_takes_generated_values_or_refuses_them_in_one_line(section, key, data):
    """Property, key by key: the quickstart config with ``section.key`` set to a generated
    value (valid or not) is accepted or refused in one line naming the key."""
    opt = SCHEMA[section][key]
    value = data.draw(st.one_of(valid_value(opt), ODD), label="value")
    d = copy.deepcopy(BASE)
    d[section][key] = value
    _refused_or_accepted(d, [f"{section}.{key}"])


@pytest.mark.parametrize(("section", "key"), KEYS, ids=KEY_IDS)
def test_every_key_takes_each_special_value_or_refuses_it_in_one_line(section, key):
    """The same, exhaustively over the special values: wrong types, NaN, inf, 1e300, 2^70,
    10^400, 10^5000, negative, zero, "", unicode, ..."""
    failures = []
    for value in SPECIALS:
        d = copy.deepcopy(BASE)
        d[section][key] = value
        try:
            _refused_or_accepted(d, [f"{section}.{key}"])
        except AssertionError as err:
            failures.append(f"{section}.{key} = {_safe_repr(value)[:60]}: {str(err)[:200]}")
    assert not failures, f"{len(failures)} of {len(SPECIALS)} values:\n" + "\n".join(failures)


def _axis_grids(axis: str, good: Any, value: Any) -> list[dict]:
    """Grids of axis ``axis`` holding ``value``: product, points, ranges (of at most a few
    hundred values: huge ranges are test_huge_grid_ranges_are_refused's)."""
    grids = [
        {axis: [good, value]},
        {axis: [value]},
        {"points": [{axis: good}, {axis: value}]},
        {axis: {"start": value, "stop": value, "num": 1}},
        {axis: {"start": good, "stop": value, "num": 3}},
        {axis: {"start": value, "stop": 7, "step": 2}},
    ]
    return [g for g in grids if not isinstance(g.get(axis), dict) or _small_range(g[axis])]


def _axis_base(axis: str) -> dict:
    d = copy.deepcopy(BASE)
    if axis in ("P", "labels"):  # axes of finite-set runs
        d["finite"]["P"] = 6
    if axis == "alpha":  # an axis of invariant runs
        d["data"].update(model="stripe", N=10)
        d["finite"]["P"] = 6
    return d


@pytest.mark.parametrize("axis", list(AXES))
@settings(FAST, max_examples=15)
@given(data=st.data())
def test_every_grid_axis_takes_generated_values_or_refuses_them_in_one_line(axis, data):
    """Property, axis by axis: product grids, points and ranges holding generated values
    (valid or not) are accepted or refused in one line naming the grid (grid.lr[1],
    grid.points[0].lr, grid.lr.start, ...)."""
    section, key = AXES[axis]
    good = data.draw(valid_value(SCHEMA[section][key]), label="valid")
    value = data.draw(st.one_of(valid_value(SCHEMA[section][key]), ODD), label="value")
    for grid in _axis_grids(axis, good, value):
        _refused_or_accepted({**_axis_base(axis), "grid": grid}, [GRID_LABEL])


@pytest.mark.parametrize("axis", list(AXES))
def test_every_grid_axis_takes_each_special_value_or_refuses_it_in_one_line(axis):
    """The same, exhaustively over the special values."""
    section, key = AXES[axis]
    good = _axis_base(axis)[section][key]
    failures = []
    for value in SPECIALS:
        for grid in _axis_grids(axis, good, value):
            try:
                _refused_or_accepted({**_axis_base(axis), "grid": grid}, [GRID_LABEL])
            except AssertionError as err:
                failures.append(f"grid = {_safe_repr(grid)[:80]}: {str(err)[:200]}")
    assert not failures, f"{len(failures)} grids:\n" + "\n".join(failures)


@st.composite
def grid_configs(draw) -> tuple[dict, list[str]]:
    """Small online / finite configs with a grid over one or two valid-looking axes: the
    cross-key checks at every grid point (e.g. student.K <= data.N, batch | P)."""
    base = copy.deepcopy(BASE)
    base["data"]["N"] = draw(st.sampled_from([1, 2, 3, 10, 784]))
    base["finite"]["P"] = draw(st.sampled_from([0, 0, 4, 6]))
    base["sgd"]["batch"] = draw(st.sampled_from([1, 1, 2, 4]))
    base["run"]["mode"] = draw(st.sampled_from(["sim", "sim", "ode", "both"]))
    base["data"]["model"] = draw(st.sampled_from(["hmm", "iid", "get", "hmm_x", "stripe"]))
    names = draw(st.lists(st.sampled_from(list(AXES)), min_size=1, max_size=2, unique=True))
    small = {
        "model": st.sampled_from(["hmm", "iid", "get", "hmm_x", "digits", "stripe", "cylinder"]),
        "labels": st.sampled_from(["teacher", "sign", "random"]),
        "seed": st.integers(0, 5),
    }
    grid: dict[str, Any]
    if draw(st.booleans()):
        grid = {}
        for name in names:
            value = small.get(name, st.sampled_from([0, 1, 2, 3, 4, 5, 8, 0.5, 1e-3]))
            grid[name] = draw(st.lists(value, min_size=1, max_size=3, unique=True))
    else:
        point = st.fixed_dictionaries(
            {n: small.get(n, st.sampled_from([0, 1, 2, 3, 4, 8, 0.5])) for n in names}
        )
        grid = {"points": draw(st.lists(point, min_size=1, max_size=3))}
    labels = ["data.", "finite.P", "sgd.batch", "run.mode", "student.K", GRID_LABEL]
    return {**base, "grid": grid}, labels


@FAST
@given(case=grid_configs())
def test_generated_grids_are_accepted_or_refused_in_one_line(case):
    """Property: a grid of plausible values is accepted as a whole or refused in one line
    that names the grid axis, the grid point or the key it conflicts with."""
    d, labels = case
    try:
        cfg = config_from_dict(d)
    except Exception as err:  # noqa: BLE001
        assert_one_line_config_error(err, labels)
        return
    check_accepted(cfg)
    assert len(cfg.grid.configs(cfg)) == cfg.grid.size


# TOML literals, some of which tomllib reads as values no config takes (dates, tables) or
# cannot read at all
TOML_LITERALS = [
    "1" + "0" * 5000, "1e400", "-1e400", "nan", "+inf", "-inf", "0x10", "0o7", "0b1",
    "1_000", "1979-05-27", "1979-05-27T07:32:00Z", "07:32:00", "[1, 2]", "[]", "{a = 1}",
    '"x"', "'lit'", '"a\\nb"', '"\\u007f"', '"\\u2028"', "true", "false", "0", "-1", "1.5",
    "18446744073709551616", "18446744073709551615", "", "=", "[", '"', "a b", "1 2",
]  # fmt: skip


def toml_key(key: Any) -> str:
    return json.dumps(str(key), ensure_ascii=False)


def toml_value(value: Any) -> str:
    """A TOML literal for ``value`` (invalid TOML for what TOML cannot hold: fine, the
    loader must refuse it in one line)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_int(value):
        if value == 10**5000:  # str() refuses ints beyond 4300 digits; TOML has no limit
            return "1" + "0" * 5000
        return format(value, "d") if abs(value) < 10**4000 else "0"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else "inf" if value > 0 else "-inf"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


@st.composite
def overrides(draw) -> tuple[str, list[str]]:
    """A ``--set`` string and the labels its error may name."""
    kind = draw(st.sampled_from(["key", "key", "key", "unknown", "text"]))
    if kind == "text":
        text = draw(
            st.one_of(st.text(max_size=20), st.sampled_from(["=", "sgd=1", ".=1", "a.b.c=1"]))
        )
        return text, [text.partition("=")[0].strip() or "override", "override"]
    if kind == "key":
        section, key = draw(st.sampled_from(KEYS))
    else:
        section, key = draw(st.one_of(NAMES, st.sampled_from(list(SCHEMA)))), draw(NAMES)
    raw = draw(
        st.one_of(
            st.sampled_from(TOML_LITERALS),
            any_value(SCHEMA[section][key]).map(toml_value) if kind == "key" else st.nothing(),
            st.text(max_size=12),
        )
    )
    return f"{section}.{key}={raw}", [f"{section}.{key}".strip(), f"[{section}]", "override"]


@FAST
@given(
    sections=st.lists(
        st.tuples(
            st.sampled_from(KEYS), st.one_of(st.sampled_from(TOML_LITERALS), st.text(max_size=8))
        ),
        max_size=3,
    ),
    sets=st.lists(overrides(), max_size=3),
)
def test_generated_toml_and_overrides_load_or_fail_in_one_line(sections, sets):
    """Property: ``load_config`` of the quickstart TOML with generated literals written into
    it and generated ``--set`` overrides returns a Config or raises a one-line ConfigError
    naming the key, the override or the file (a TOML error)."""
    text = QUICKSTART.read_text(encoding="utf-8")
    labels = [str(QUICKSTART.name), "override"]
    extra = []
    for (section, key), raw in sections:
        extra.append(f"[{section}]\n{toml_key(key)} = {raw}\n")
        labels.append(f"{section}.{key}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "generated.toml"
        # the generated keys go in sections of their own at the end; a section written
        # twice is a TOML error (fine: refused in one line naming the file)
        path.write_text(text + "\n" + "\n".join(extra), encoding="utf-8")
        labels.append(str(path))
        for text_, names in sets:
            labels += names
        try:
            cfg = load_config(path, [s for s, _ in sets])
        except Exception as err:  # noqa: BLE001
            assert_one_line_config_error(err, labels)
            return
    check_accepted(cfg)


def _write_mnist(folder: Path, n: int, h: int, w: int, labels: np.ndarray, damage: str) -> Path:
    """An MNIST-like pair of IDX files in ``folder`` (damaged as told); the images' path."""
    from hmmjax.data.real import write_idx

    images = folder / "t-images-idx3-ubyte"
    lab = folder / "t-labels-idx1-ubyte"
    write_idx(images, np.arange(n * h * w, dtype=np.uint8).reshape(n, h, w))
    write_idx(lab, labels.astype(np.uint8))
    if damage == "truncate images":
        images.write_bytes(images.read_bytes()[:-1])
    elif damage == "truncate labels":
        lab.write_bytes(lab.read_bytes()[:-1])
    elif damage == "no labels":
        lab.unlink()
    elif damage == "garbage":
        images.write_bytes(b"\x00\x00\x08\x09garbage")
    elif damage == "header only":
        images.write_bytes(images.read_bytes()[:6])
    return images


@settings(FAST, max_examples=100)
@given(
    model=st.sampled_from(["digits", "mnist", "mnist", "hmm"]),
    P=st.one_of(st.integers(0, 40), st.sampled_from([1796, 1797, 1798, 10**6])),
    test_size=st.one_of(st.integers(1, 40), st.sampled_from([1797, 5000])),
    N=st.sampled_from([1, 2, 4, 6, 63, 64]),
    mnist=st.tuples(
        st.integers(1, 30),
        st.integers(1, 3),
        st.integers(1, 3),
        st.sampled_from(
            [
                "",
                "",
                "truncate images",
                "truncate labels",
                "no labels",
                "garbage",
                "header only",
                "wrong count",
                "bad labels",
            ]
        ),
    ),
    path=st.sampled_from(["mnist", "mnist", "", "nowhere", ".", "x\x00y"]),
    grid_P=st.one_of(
        st.none(), st.lists(st.integers(1, 2000), min_size=1, max_size=2, unique=True)
    ),
)
def test_real_data_configs_pass_check_config_only_if_the_data_fits(
    model, P, test_size, N, mnist, path, grid_P
):
    """Property: for digits / MNIST-like files (complete or damaged), ``check_config``
    passes a config or refuses it in one line naming data.path, data.N or finite.P (grid.P);
    when it passes, the data set loads with data.N inputs and finite.P + run.test_size
    samples at every grid point."""
    from hmmjax.data import real
    from hmmjax.experiments import check_config

    n, h, w, damage = mnist
    labels_ = np.arange(n) % 10
    if damage == "wrong count":
        labels_ = labels_[:-1] if n > 1 else np.zeros(2)
    elif damage == "bad labels":
        labels_ = labels_ + 5
    with tempfile.TemporaryDirectory() as tmp:
        images = _write_mnist(Path(tmp), n, h, w, labels_, damage)
        d = copy.deepcopy(BASE)
        d["data"].update(model=model, N=N, path=str(images) if path == "mnist" else path)
        d["student"]["K"] = 1
        d["finite"]["P"] = P
        d["run"]["test_size"] = test_size
        if grid_P is not None and P > 0:
            d["grid"] = {"P": grid_P}
        labels = ["data.", "finite.P", "run.test_size", GRID_LABEL]
        try:
            cfg = config_from_dict(d)
            check_config(cfg)
        except Exception as err:  # noqa: BLE001
            assert_one_line_config_error(err, labels)
            return
        for point in cfg.grid.configs(cfg) if cfg.grid.size > 1 else [cfg]:
            if point.finite.P > 0 and point.data.model in real.DATASETS:
                data = real.load(point.data.model, point.data.path)
                assert data.x.shape[1] == point.data.N
                assert point.finite.P + point.run.test_size <= data.x.shape[0]


_HUGE_GRID = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # 1 GiB
from hmmjax.config.schema import ConfigError
from hmmjax.config.settings import config_from_dict
try:
    config_from_dict({"data": {"N": 50}, "grid": %s})
except ConfigError as err:
    print("ConfigError:", err)
else:
    print("accepted")
"""


@settings(
    max_examples=3,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
)
@given(
    axis=st.sampled_from(["seed", "N", "lr"]),
    size=st.one_of(st.integers(10**9, 2**80), st.sampled_from([10**12, 2**63])),
)
@example(axis="seed", size=2**62)
@example(axis="seed", size=2**70)
@example(axis="lr", size=10**12)
@example(axis="product", size=10**5)
def test_huge_grid_ranges_are_refused(axis, size):
    """Property: a range of absurd length (or a product of ranges of 10^10 points) is
    refused in one line naming the grid, promptly, in 1 GiB of memory (not a
    MemoryError, an OverflowError or a sweep of 10^10 configs)."""
    if axis == "product":
        grid = {
            "lr": {"start": 0.1, "stop": 1.0, "num": size},
            "seed": {"start": 0, "stop": size - 1, "step": 1},
        }
    elif axis == "lr":
        grid = {"lr": {"start": 0.1, "stop": 1.0, "num": size}}
    else:
        grid = {axis: {"start": 1, "stop": size, "step": 1}}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _HUGE_GRID % repr(grid)],
            capture_output=True,
            text=True,
            timeout=20,
            cwd=REPO,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"config_from_dict(grid = {grid}) ran for more than 20 s") from None
    assert done.returncode == 0, f"grid = {grid}:\n{done.stderr[-2000:]}"
    out = done.stdout.strip()
    assert out == "accepted" or (
        out.startswith("ConfigError: ")
        and "\n" not in out
        and re.search(GRID_LABEL[3:], out.removeprefix("ConfigError: "))
    ), out


# --------------------------------------------------------------------------- 2. hmmjax run


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``hmmjax.cli.main(argv)`` in this process: (exit code, stdout, stderr). An
    exception out of main (what would be a traceback) fails the test."""
    from hmmjax.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def assert_clean_exit(code: int, stderr: str, out: Path) -> None:
    """Exit 0 with the results file written, or exit 2 with one line of error."""
    assert "Traceback" not in stderr, stderr
    if code == 0:
        assert out.is_file() and out.stat().st_size > 0, f"exit 0 but no {out}"
        return
    lines = stderr.splitlines()
    assert code == 2, f"exit {code}: {stderr}"
    assert len(lines) == 1 and lines[0].startswith("hmmjax: error: "), stderr


def toml_document(d: dict) -> str:
    lines = []
    for section, values in d.items():
        lines.append(f"[{section}]")
        lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


@st.composite
def tiny_runs(draw) -> tuple[dict, list[str]]:
    """A valid tiny config (a few SGD steps, a few students) as a TOML dict and --set
    overrides: online or finite-set, iid or hmm, simulation or ODE (what the ODE takes),
    with or without a small grid."""
    model = draw(st.sampled_from(["iid", "hmm"]))
    mode = draw(st.sampled_from(["sim", "sim", "sim", "ode", "both"]))
    ode = mode != "sim"
    N, K = draw(st.integers(3, 20)), draw(st.integers(1, 3))
    g = draw(st.sampled_from(ODE_G if ode else ACTIVATIONS))
    d: dict[str, dict[str, Any]] = {
        "data": {
            "model": model,
            "N": N,
            "D": draw(st.integers(1, 10)),
            "f": draw(st.sampled_from(ODE_F if ode else ACTIVATIONS)),
            "noise": 0.0 if ode and model == "hmm" else draw(st.sampled_from([0.0, 0.1])),
        },
        "teacher": {
            "M": draw(st.integers(1, 2)),
            "g": draw(st.sampled_from(("", g) if ode else ("", *ACTIVATIONS))),
            "scaling": draw(st.sampled_from(SCALINGS)),
        },
        "student": {
            "K": K,
            "g": g,
            "init": draw(st.sampled_from(["large", "small"])),
            "second_layer": draw(st.sampled_from(["ones", "gaussian"])),
            "scaling": draw(st.sampled_from(SCALINGS)),
            "train_second": draw(st.booleans()),
        },
        "sgd": {"lr": draw(st.sampled_from([0.05, 0.3, 1.0])), "kappa": 0.0, "batch": 1},
        "run": {
            "mode": mode,
            "t_max": draw(st.sampled_from([0.1, 0.5])),
            "n_times": draw(st.integers(1, 5)),
            "spacing": draw(st.sampled_from(["log", "linear"])),
            "ensemble": draw(st.integers(1, 2)),
            "seed": draw(st.integers(0, 2**64 - 1)),
            "test_size": draw(st.integers(1, 50)),
            "chunk": draw(st.integers(1, 3)),
        },
    }
    if not ode and draw(st.booleans()):  # a finite training set, sgd.batch dividing it
        P = draw(st.integers(1, 12))
        d["finite"] = {
            "P": P,
            "optimizer": draw(st.sampled_from(["sgd", "momentum", "adam"])),
            "labels": draw(st.sampled_from(["teacher", "sign", "random"])),
            "shuffle": draw(st.booleans()),
        }
        d["sgd"]["batch"] = draw(st.sampled_from([b for b in range(1, P + 1) if P % b == 0]))
    elif not ode:
        d["sgd"]["batch"] = draw(st.integers(1, 2))
    axis = draw(st.sampled_from([None, "lr", "K", "seed"]))
    values = {
        "lr": st.sampled_from([0.1, 0.5, 2.0]),
        "K": st.integers(1, min(3, N)),
        "seed": st.integers(0, 2**64 - 1),
    }
    if axis is not None:
        grid_values = draw(st.lists(values[axis], min_size=1, max_size=2, unique=True))
        if draw(st.booleans()):
            d["grid"] = {axis: grid_values}
        else:
            d["grid"] = {"points": [{axis: v} for v in grid_values]}
    # some keys go on the command line instead of into the file
    sets = []
    for section, key in draw(
        st.lists(
            st.sampled_from(
                [
                    ("sgd", "lr"),
                    ("run", "seed"),
                    ("data", "model"),
                    ("student", "g"),
                    ("run", "spacing"),
                ]
            ),
            max_size=2,
            unique=True,
        )
    ):
        if key in d[section]:
            value = d[section].pop(key)
            sets += ["--set", f"{section}.{key}={value}"]
    return d, sets


_TINY_RUN = {"t_max": 0.1, "n_times": 3, "ensemble": 1, "test_size": 10}
# the ODE of a one-dimensional manifold (D = 1: a single eigenvalue rho)
_ODE_D1 = {
    "data": {"model": "hmm", "N": 5, "D": 1, "f": "sign"},
    "student": {"K": 1},
    "teacher": {"M": 1},
    "run": {**_TINY_RUN, "mode": "ode"},
}
# a finite training set swept over a list of points
_FINITE_POINTS = {
    "data": {"model": "iid", "N": 5},
    "student": {"K": 1},
    "teacher": {"M": 1},
    "finite": {"P": 4},
    "run": _TINY_RUN,
    "grid": {"points": [{"lr": 0.1}, {"lr": 0.5}]},
}


@settings(SLOW, max_examples=2)  # and the two explicit examples: 4 runs, ~40 s
@given(case=tiny_runs())
@example(case=(_ODE_D1, []))
@example(case=(_FINITE_POINTS, []))
def test_hmmjax_run_on_generated_tiny_configs(case):
    """Property: ``hmmjax run`` of a valid tiny config exits 0 and writes the results, or
    exits 2 with one line ``hmmjax: error: ...`` exactly when ``hmmjax config`` refuses the
    same config too; never a traceback."""
    d, sets = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tiny.toml"
        path.write_text(toml_document(d), encoding="utf-8")
        out = Path(tmp) / "out" / "tiny.nc"
        code_config, _, err_config = run_cli(["config", str(path), *sets])
        assert "Traceback" not in err_config, err_config
        code, stdout, stderr = run_cli(["run", str(path), "--out", str(out), "-q", *sets])
        assert_clean_exit(code, stderr, out)
        assert code == code_config, (code, stderr, code_config, err_config)
        if code == 0:
            assert f"hmmjax: wrote {out}" in stdout
            assert out.with_suffix(".png").is_file()
            assert not list(out.parent.glob("*.ckpt*")), "checkpoint left behind"


# --------------------------------------------------------------------------- 3. state files

WHERE = "state file gen.npz"


def state_is_valid(state: dict) -> bool:
    """An independent statement of what ``check_state`` accepts (its docstring)."""
    if set(REQUIRED_KEYS) - set(state) or set(state) - set(SHAPES):
        return False
    a = {k: np.asarray(v) for k, v in state.items()}
    for key in ("N", "D"):
        if a[key].shape != () or a[key].dtype.kind not in "iu" or int(a[key]) < 1:
            return False
    if any(v.dtype.kind != "f" for k, v in a.items() if k not in ("N", "D")):
        return False
    if a["v"].ndim != 1 or a["A"].ndim != 1 or not a["v"].size or not a["A"].size:
        return False
    sizes = {"K": a["v"].shape[0], "M": a["A"].shape[0], "N": int(a["N"]), "D": int(a["D"])}
    for key, dims in SHAPES.items():
        if key in a and a[key].shape != tuple(sizes[d] for d in dims):
            return False
    if not all(np.isfinite(v).all() for v in a.values()):
        return False
    rho = a["rho"]
    return bool(rho.min() >= -1e-8 * np.abs(rho).max())


@st.composite
def consistent_states(draw) -> dict:
    """A state of consistent shapes (random, not necessarily physical), some optional
    arrays left out."""
    sizes = {d: draw(st.integers(1, 4)) for d in ("K", "M", "D", "N")}
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    state: dict[str, Any] = {}
    for key, dims in SHAPES.items():
        if key in OPTIONAL_KEYS and not draw(st.booleans()):
            continue
        state[key] = rng.normal(size=tuple(sizes[d] for d in dims))
    state["rho"] = rng.uniform(0.0, 2.0, sizes["D"])
    state["N"], state["D"] = np.int64(sizes["N"]), np.int64(sizes["D"])
    return state


DTYPES = st.sampled_from(
    [
        np.float64,
        np.float32,
        np.float16,
        np.int64,
        np.int8,
        np.uint64,
        np.bool_,
        np.complex128,
        np.dtype("<U2"),
        np.dtype(">f8"),
        np.dtype("S2"),
    ]
)


def any_array(shape_hint: tuple[int, ...]) -> st.SearchStrategy:
    """An array of some dtype and shape: the right shape, a near one, or any small one."""
    near = [
        shape_hint,
        shape_hint[:-1],
        (*shape_hint, 1),
        tuple(s + 1 for s in shape_hint),
        tuple(max(s - 1, 0) for s in shape_hint),
    ]
    shapes = st.one_of(
        st.sampled_from(near), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
    )
    return st.tuples(DTYPES, shapes).flatmap(
        lambda ds: hnp.arrays(ds[0], ds[1], elements=_elements(ds[0]))
    )


def _elements(dtype) -> st.SearchStrategy | None:
    kind = np.dtype(dtype).kind
    if kind == "f":
        return st.floats(
            width=8 * np.dtype(dtype).itemsize if np.dtype(dtype).itemsize <= 8 else 64
        )
    return None


SCALAR_N = st.one_of(
    st.integers(-3, 10).map(np.int64),
    st.sampled_from(
        [
            np.uint64(2**63 + 5),
            np.int8(-1),
            np.int64(0),
            np.uint8(255),
            np.float64(3.0),
            np.bool_(True),
            np.array([3]),
            np.array(2.5),
            np.array("3"),
            3,
            3.0,
            True,
            "3",
        ]
    ),
)


@st.composite
def damage_state(draw, state: dict) -> tuple[dict, list[str]]:
    """``state`` (a copy) with one to three damages; the keys damaged."""
    state = dict(state)
    damaged = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(
            st.sampled_from(["replace", "replace", "nonfinite", "scale", "delete", "extra", "size"])
        )
        key = draw(st.sampled_from(sorted(state) or ["rho"]))
        if kind == "extra":
            key = draw(
                st.one_of(
                    st.text(min_size=1, max_size=8).filter(lambda k: k not in SHAPES),
                    st.sampled_from(["Beta", "rho ", "W.npy", "eg"]),
                )
            )
            state[key] = draw(any_array((2,)))
        elif key not in state:
            continue
        elif kind == "delete":
            del state[key]
        elif key in ("N", "D") and kind in ("replace", "size"):
            state[key] = draw(SCALAR_N)
        elif kind == "replace":
            state[key] = draw(any_array(np.shape(state[key])))
        elif kind == "nonfinite" and np.ndim(state[key]):
            a = np.array(state[key], dtype=float)
            a.flat[draw(st.integers(0, a.size - 1))] = draw(
                st.sampled_from([np.nan, np.inf, -np.inf])
            )
            state[key] = a
        elif kind == "scale" and np.ndim(state[key]):  # e.g. negative eigenvalues rho
            state[key] = np.asarray(state[key]) * draw(st.sampled_from([-1.0, 0.0, 1e300, 1e-300]))
        else:  # "size": K or M of another length, through v or A
            key = draw(st.sampled_from(["v", "A"]))
            state[key] = np.ones(draw(st.integers(0, 6)))
        damaged.append(key)
    return state, damaged


def damaged_states() -> st.SearchStrategy:
    return consistent_states().flatmap(damage_state)


def array_named(message: str, keys: list[str]) -> bool:
    """Whether ``message`` names one of ``keys`` (or the size it sets: K from v, N = ..)."""
    patterns = []
    for k in keys:
        patterns += [f": {k} ", repr(k), f"{k} = ", f"from {k}", f"cannot read {k} "]
    patterns += ["missing keys"]  # a deleted key
    return any(p in message for p in patterns)


@FAST
@given(case=st.one_of(consistent_states().map(lambda s: (s, [])), damaged_states()))
def test_check_state_agrees_with_the_format_on_generated_states(case):
    """Property: ``check_state`` accepts exactly the states of the documented format
    (an independent statement of it), and refuses the others with a one-line ValueError
    that starts with the file's name and names a damaged array."""
    from hmmjax.io.state import check_state

    state, damaged = case
    try:
        check_state(state, WHERE)
    except Exception as err:  # noqa: BLE001
        assert type(err) is ValueError, f"{type(err).__name__}: {err}"
        message = str(err)
        assert message.startswith(WHERE + ":") and "\n" not in message, message
        assert not state_is_valid(state), f"a valid state refused: {message}"
        assert array_named(message, damaged), (damaged, message)
        return
    assert state_is_valid(state), f"accepted an invalid state (damaged: {damaged})"


def _savez_bytes(state: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **state)
    return buf.getvalue()


# zip records (numpy's .npz): (signature, {field: (offset, struct format)})
_ZIP_FIELDS = {
    b"PK\x03\x04": {
        "flags": (6, "<H"),
        "method": (8, "<H"),
        "crc": (14, "<I"),
        "csize": (18, "<I"),
        "usize": (22, "<I"),
        "namelen": (26, "<H"),
        "extralen": (28, "<H"),
    },
    b"PK\x01\x02": {
        "flags": (8, "<H"),
        "method": (10, "<H"),
        "crc": (16, "<I"),
        "csize": (20, "<I"),
        "usize": (24, "<I"),
        "namelen": (28, "<H"),
        "extralen": (30, "<H"),
        "offset": (42, "<I"),
    },
    b"PK\x05\x06": {"entries": (10, "<H"), "cdsize": (12, "<I"), "cdoffset": (16, "<I")},
}


@st.composite
def damage_file(draw, good: bytes) -> bytes:
    """The bytes ``good`` of an .npz state file, damaged: truncated, bytes changed, a field
    of a zip record set to another value, random bytes, or not damaged at all."""
    data = bytearray(good)
    kind = draw(st.sampled_from(["none", "truncate", "bytes", "field", "field", "random"]))
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    if kind == "bytes":
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    if kind == "field":
        for _ in range(draw(st.integers(1, 2))):
            signature = draw(st.sampled_from(list(_ZIP_FIELDS)))
            starts = [m.start() for m in re.finditer(re.escape(signature), data)]
            start = starts[draw(st.integers(0, len(starts) - 1))]
            name = draw(st.sampled_from(sorted(_ZIP_FIELDS[signature])))
            offset, fmt = _ZIP_FIELDS[signature][name]
            top = 2 ** (8 * struct.calcsize(fmt)) - 1
            value = draw(
                st.one_of(
                    st.sampled_from([0, 1, 8, 9, 12, 14, 93, 99, top, top - 1]), st.integers(0, top)
                )
            )
            struct.pack_into(fmt, data, start + offset, value)
        return bytes(data)
    if kind == "random":
        head = draw(st.sampled_from([b"", b"PK", b"PK\x03\x04", b"\x93NUMPY"]))
        return head + draw(st.binary(max_size=200))
    return bytes(data)


def damaged_files() -> st.SearchStrategy:
    return consistent_states().map(_savez_bytes).flatmap(damage_file)


@FAST
@given(data=damaged_files())
def test_load_state_reads_or_refuses_generated_files(data):
    """Property: ``load_state`` of any bytes returns a valid state or raises a one-line
    ValueError starting with ``state file PATH`` (never zipfile's, numpy's or zlib's own
    errors)."""
    from hmmjax.io.state import check_state, load_state

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gen.npz"
        path.write_bytes(data)
        try:
            state = load_state(path)
        except Exception as err:  # noqa: BLE001
            assert type(err) is ValueError, f"{type(err).__name__}: {err}"
            message = str(err)
            assert message.startswith(f"state file {path}"), message
            assert "\n" not in message and "\r" not in message, message
            return
    check_state(state)  # what load_state returns is a state


@settings(SLOW, max_examples=5)
@given(data=st.data())
def test_hmmjax_ode_on_generated_state_files(data):
    """Property: ``hmmjax ode STATE`` of a physical state file (``save_state``), intact or
    damaged (arrays or bytes), exits 0 and writes the results, or exits 2 with one line
    ``hmmjax: error: state file ...``; never a traceback. An intact file exits 0."""
    import jax

    from hmmjax.data.base import make_data_model
    from hmmjax.io.state import state_arrays
    from hmmjax.models.two_layer import init_network

    # two shapes (K, M, D, N) only, every new one compiles the ODE (~10 s); one of D = 1
    K, M, D, N = data.draw(st.sampled_from([(1, 1, 1, 3), (2, 1, 3, 4)]), label="K, M, D, N")
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    model = make_data_model(jax.random.PRNGKey(seed), "hmm", N=N, M=M, D=D, f="sign")
    state = state_arrays(init_network(jax.random.PRNGKey(seed + 1), K, N), model)
    kind = data.draw(st.sampled_from(["intact", "intact", "arrays", "file"]), label="damage")
    if kind == "arrays":
        state, _ = data.draw(damage_state(state), label="damaged state")
    good = _savez_bytes(state)
    raw = data.draw(damage_file(good), label="damaged file") if kind == "file" else good
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.npz"
        path.write_bytes(raw)
        out = Path(tmp) / "ode.nc"
        argv = [
            "ode",
            str(path),
            "--lr",
            "0.5",
            "--t-max",
            "0.1",
            "--n-times",
            "3",
            "--out",
            str(out),
        ]
        code, _, stderr = run_cli(argv)
        assert_clean_exit(code, stderr, out)
        if code == 2:
            assert stderr.startswith(f"hmmjax: error: state file {path}"), stderr
        if kind == "intact":  # a physical state: solved, with finite errors
            assert code == 0, stderr
            from hmmjax.io import read_dataset

            eg = read_dataset(out)["eg_ode"].values
            assert np.isfinite(eg).all(), eg
