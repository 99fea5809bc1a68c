"""Parameter grids ("sweeps") in configs: the ``[grid]`` table -> a validated, frozen Grid.

A grid sweeps some of the keys named in ``AXES``, either as the product of one list of
values per axis, or as an explicit list of points::

    [grid]
    lr = {start = 0.01, stop = 2.0, num = 8, spacing = "log"}   # a range, both ends included
    K = [1, 2, 4]                                               # a list of numbers
    seed = {start = 0, stop = 3, step = 1}                      # integer axes: a step range

    [grid]
    points = [{lr = 0.1, K = 2}, {lr = 0.5, K = 4}]              # instead of axes

Ranges are expanded when the config is loaded, every value is checked like the key it
sets (errors name it as ``grid.lr[2]`` or ``grid.points[3].lr``), and ``Grid.configs``
gives one validated ``Config`` per point. Like the rest of ``hmmjax.config``, this module
imports only the standard library; it knows ``Config`` (``hmmjax.config.settings``, which
holds a Grid) only as the dataclass it is given.

    grid = parse_grid({"lr": [0.1, 0.5], "K": [1, 2, 4]})
    grid.shape, grid.points()[0]  # (2, 3), {"lr": 0.1, "K": 1}
    [cfg.sgd.lr for cfg in grid.configs(Config())]
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from hmmjax.config.schema import SCHEMA, ConfigError, Option, closest, show, type_name

__all__ = [
    "AXES",
    "MAX_POINTS",
    "KINDS",
    "SPACINGS",
    "SIGNIFICANT_DIGITS",
    "Value",
    "Axes",
    "Grid",
    "parse_grid",
    "grid_reference_markdown",
    "part_of_grid",
    "in_part_of_grid",
]


# The swept axes and the config key each sets, in the canonical order of the dims.
AXES: dict[str, tuple[str, str]] = {
    "model": ("data", "model"),
    "features": ("data", "features"),
    "labels": ("finite", "labels"),
    "alpha": ("invariant", "alpha"),
    "lr": ("sgd", "lr"),
    "kappa": ("sgd", "kappa"),
    "noise": ("data", "noise"),
    "K": ("student", "K"),
    "M": ("teacher", "M"),
    "D": ("data", "D"),
    "N": ("data", "N"),
    "P": ("finite", "P"),
    "seed": ("run", "seed"),
}


KINDS = ("product", "points", "none")


SPACINGS = ("linear", "log")


MAX_POINTS = 100_000  # values of one grid axis, and points of a grid


SIGNIFICANT_DIGITS = 12  # range values are rounded to these, so 0.1 + 0.2 is 0.3


Value = int | float
_C = TypeVar("_C")  # a Config (hmmjax.config.settings), which imports this module


Axes = tuple[tuple[str, tuple[Value, ...]], ...]


@dataclass(frozen=True)
class Grid:
    """A validated parameter grid; ``Grid()`` is no grid (a single run).

    ``kind``: "product" (every combination of the axes' values), "points" (the i-th
    value of every axis is point i) or "none". ``axes``: ``(name, values)`` pairs, put in
    the canonical order of ``AXES``; each value is checked and coerced like its key.
    """

    kind: str = "none"
    axes: Axes = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            allowed = ", ".join(show(k) for k in KINDS)
            raise ConfigError(f"Grid(kind = {show(self.kind)}): expected one of {allowed}")
        object.__setattr__(self, "axes", _checked_axes(self.kind, self.axes))

    @property
    def names(self) -> tuple[str, ...]:
        """The swept axes, in canonical order."""
        return tuple(name for name, _ in self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        """Product: the length of each axis; points: ``(number of points,)``; none: ()."""
        lengths = tuple(len(values) for _, values in self.axes)
        return lengths if self.kind == "product" else lengths[:1]

    @property
    def dims(self) -> tuple[str, ...]:
        """The names of the dims of ``shape``: the axes, or ("point",) for points."""
        return ("point",) if self.kind == "points" else self.names

    @property
    def size(self) -> int:
        """The number of points (1 for no grid)."""
        return math.prod(self.shape)

    def points(self) -> list[dict[str, Value]]:
        """Every point as ``{axis: value}``: the product in C order over ``names``, the
        points in the order given, ``[{}]`` for no grid."""
        columns = [values for _, values in self.axes]
        rows = zip(*columns, strict=True) if self.kind == "points" else itertools.product(*columns)
        return [dict(zip(self.names, row, strict=True)) for row in rows]

    def to_dict(self) -> dict[str, Any]:
        """The ``[grid]`` table: ``{axis: [values]}``, ``{"points": [...]}`` or ``{}``."""
        if self.kind == "points":
            return {"points": self.points()}
        return {name: list(values) for name, values in self.axes}

    def select(self, name: str, value: Value) -> Grid:
        """The points with ``name == value``, without that axis (``Grid()`` if none is
        left): e.g. the part of a grid over data models that one model runs."""
        rows = [p for p in self.points() if p.get(name) == value]
        rest = [n for n in self.names if n != name]
        if not rows or not rest:
            return Grid()
        if self.kind == "product":
            return Grid("product", tuple((n, v) for n, v in self.axes if n != name))
        return Grid("points", tuple((n, tuple(p[n] for p in rows)) for n in rest))

    def configs(self, base: _C) -> list[_C]:
        """One validated Config per point, in the order of ``points()``: ``base`` with the
        point's values and no grid. Errors name the grid axis: ``grid.lr[2] = ...``.
        The last two grids' configs are kept (frozen, so shared safely): loading a config,
        checking it and running it build its points once."""
        try:
            hash(base)
        except TypeError:  # a base of unhashable values (not a Config): not kept
            return list(_configs.__wrapped__(self, base))
        return list(_configs(self, base))

    def _config(self, base: _C, i: int, point: Mapping[str, Value]) -> _C:
        updates: dict[str, dict[str, Value]] = {}
        for name, value in point.items():
            section, key = AXES[name]
            updates.setdefault(section, {})[key] = value
        try:  # as base.replace(grid={}, **updates), without the round trip through dicts
            sections = {s: dataclasses.replace(getattr(base, s), **u) for s, u in updates.items()}
            with part_of_grid():
                return dataclasses.replace(base, grid=Grid(), **sections)
        except ConfigError as err:
            raise ConfigError(self._relabel(str(err), i, point)) from None

    def check_each(self, base: _C, check: Callable[[_C], None]) -> None:
        """``check(config)`` for every point's config (``base`` itself without a grid); a
        ``ConfigError`` names the grid axis or point, as ``configs`` does."""
        if self.kind == "none":
            check(base)
            return
        for i, (point, cfg) in enumerate(zip(self.points(), self.configs(base), strict=True)):
            try:
                check(cfg)
            except ConfigError as err:
                raise ConfigError(self._relabel(str(err), i, point)) from None

    def _relabel(self, message: str, i: int, point: Mapping[str, Value]) -> str:
        """A point's error, naming the grid axis if it is about one, else the point."""
        for name, value in point.items():
            prefix = f"{'.'.join(AXES[name])} = "
            if message.startswith(prefix):
                index = i if self.kind == "points" else dict(self.axes)[name].index(value)
                return f"{_label(self.kind, name, index)} = {message[len(prefix) :]}"
        where = f"grid.points[{i}]" if self.kind == "points" else f"grid point {show(point)}"
        return f"{message} (at {where})"


@functools.lru_cache(maxsize=2)
def _configs(grid: Grid, base: Any) -> tuple[Any, ...]:
    """``Grid.configs``, cached by (grid, base): both frozen and hashable. Two grids kept
    (about 1.4 kB a point: up to 0.28 GB for two grids of ``MAX_POINTS``)."""
    return tuple(grid._config(base, i, point) for i, point in enumerate(grid.points()))


_PART = contextvars.ContextVar("hmmjax_part_of_grid", default=False)


@contextlib.contextmanager
def part_of_grid() -> Iterator[None]:
    """The configs made inside are points or parts of a grid already checked as a whole
    (``Grid.configs``; a run split by data model): the checks that concern the whole grid
    (a key that no point reads) skip them."""
    token = _PART.set(True)
    try:
        yield
    finally:
        _PART.reset(token)


def in_part_of_grid() -> bool:
    """True inside ``part_of_grid``."""
    return _PART.get()


def parse_grid(table: Any) -> Grid:
    """The ``[grid]`` table of a config -> a validated Grid (a Grid is returned as is)."""
    if isinstance(table, Grid):
        return table
    if not isinstance(table, Mapping):
        raise ConfigError(
            f"grid = {show(table)} ({type_name(table)}): expected a table [grid] of axes "
            f"({', '.join(AXES)}) or points = [...]"
        )
    if not table:
        return Grid()
    if "points" in table:
        grid = _points_grid(table)
    else:
        for name, spec in table.items():
            _check_axis_name(f"grid.{name}", name, spec)
        axes = tuple((name, _axis_values(name, spec)) for name, spec in table.items())
        grid = Grid("product", axes)
    if grid.size > MAX_POINTS:
        raise ConfigError(
            f"grid: {grid.size} points ({' x '.join(map(str, grid.shape))}); expected at most "
            f"{MAX_POINTS} points"
        )
    return grid


def grid_reference_markdown() -> str:
    """A markdown paragraph documenting the ``[grid]`` table."""
    axes = ", ".join(f"`{name}` (`{'.'.join(key)}`)" for name, key in AXES.items())
    integers = ", ".join(f"`{name}`" for name in AXES if _is_integer_axis(name))
    return f"""
### `[grid]`: parameter sweeps

`[grid]` runs one experiment per point of a grid over these axes:
{axes}.
Each numeric axis is a non-empty list of numbers, `lr = [0.1, 0.2, 0.5]`, or a range,
expanded on loading: `{{start, stop, num}}` gives `num` values from `start` to `stop`, both
included, evenly spaced (`spacing = "linear"`, the default) or log-spaced
(`spacing = "log"`, `start > 0`); the integer axes ({integers}) also take
`{{start, stop, step}}`.
`model` (the data model) takes a list of names, `model = ["hmm", "get"]`: the points of
each model run as one compiled computation per model, and the results are put together
along the model axis (e.g. hidden manifold against its Gaussian equivalent, at the same
F, teacher, initial weights and latent inputs).
`features` (the feature matrix F) takes names too, `features = ["gaussian", "hadamard"]`,
and runs the same way, one computation per kind (grids over D or N need the Gaussian F).
The grid is every combination of the axes' values (dims in the order above).
Instead of axes, `points = [{{lr = 0.1, K = 2}}, {{lr = 0.5, K = 4}}]` lists the points
themselves, each naming the same axes. Every value is checked like the key it sets, and
every point as a whole config (e.g. `student.K <= data.N`);
errors name the value as `grid.lr[2]` or `grid.points[1].K`.

```toml
[grid]
lr = {{start = 0.01, stop = 2.0, num = 8, spacing = "log"}}
K = [1, 2, 4]
seed = {{start = 0, stop = 3, step = 1}}
```
"""


def _checked_axes(kind: str, axes: Iterable[tuple[str, Iterable[Any]]]) -> Axes:
    """``axes`` checked for ``kind``, values coerced, in canonical order."""
    given = [(name, tuple(values)) for name, values in axes]
    names = [name for name, _ in given]
    for name, values in given:
        _check_axis_name(f"grid.{name}", name, values)
    if len(set(names)) != len(names):
        raise ConfigError(f"grid axes {', '.join(names)}: expected each axis once")
    if (kind == "none") != (not given):
        raise ConfigError(
            f'Grid(kind = {show(kind)}) with axes {show(names)}: only "none" has none'
        )
    if kind == "points" and len({len(values) for _, values in given}) != 1:
        raise ConfigError(
            f"grid.points with axes {show(names)}: expected one value per axis per point"
        )
    if kind == "product":
        for name, values in given:
            if not values:
                raise _not_list_or_range(name, [])
    checked = {
        name: tuple(_checked_value(_label(kind, name, i), name, v) for i, v in enumerate(values))
        for name, values in given
    }
    _check_distinct(kind, checked)
    return tuple((name, checked[name]) for name in AXES if name in checked)


def _label(kind: str, name: str, i: int) -> str:
    """How an error names value ``i`` of axis ``name``: grid.lr[2] or grid.points[2].lr."""
    return f"grid.points[{i}].{name}" if kind == "points" else f"grid.{name}[{i}]"


def _axis_option(name: str) -> Option:
    section, key = AXES[name]
    return SCHEMA[section][key]


def _is_integer_axis(name: str) -> bool:
    return _axis_option(name).type is int


def _checked_value(label: str, name: str, value: Any) -> Value:
    """``value`` checked and coerced like the key axis ``name`` sets, named ``label``."""
    if _axis_option(name).type is str:
        if not isinstance(value, str):
            raise ConfigError(f"{label} = {show(value)} ({type_name(value)}): expected a string")
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{label} = {show(value)} ({type_name(value)}): expected a number")
    section, key = label.split(".", 1)
    return dataclasses.replace(_axis_option(name), section=section, name=key).check(value)


def _check_distinct(kind: str, axes: Mapping[str, tuple[Value, ...]]) -> None:
    """Refuse a value repeated in one axis (product) or a repeated point (points)."""
    if kind == "points":
        names = list(axes)
        rows = zip(*axes.values(), strict=True)
        labelled = [
            (f"grid.points[{i}]", row, dict(zip(names, row, strict=True)))
            for i, row in enumerate(rows)
        ]
        _check_unique(labelled, "the points")
        return
    for name, values in axes.items():
        labelled = [(_label(kind, name, i), v, v) for i, v in enumerate(values)]
        _check_unique(labelled, f"the values of grid.{name}")


def _check_unique(labelled: Iterable[tuple[str, Any, Any]], what: str) -> None:
    """``(label, item, shown)`` triples: raise naming the first item seen twice."""
    seen: dict[Any, str] = {}
    for label, item, shown in labelled:
        if item in seen:
            raise ConfigError(f"{label} = {show(shown)}: repeats {seen[item]}; {what} must differ")
        seen[item] = label


def _check_axis_name(key: str, name: Any, value: Any) -> None:
    if name not in AXES:
        close = closest(name, AXES)
        hint = f"did you mean {close}? " if close is not None else ""
        raise ConfigError(f"unknown grid axis {key} = {show(value)}; {hint}axes: {', '.join(AXES)}")


def _axis_values(name: str, spec: Any) -> tuple[Any, ...]:
    """The values of one axis of a product grid: a list, or a range table expanded."""
    if isinstance(spec, Mapping) and _axis_option(name).type is not str:
        return _expand_range(name, spec)
    if isinstance(spec, list | tuple) and spec:
        return tuple(spec)
    raise _not_list_or_range(name, spec)


def _range_forms(name: str) -> str:
    if _axis_option(name).type is str:
        return "(no ranges)"
    forms = "{start, stop, num}"
    return forms + " or {start, stop, step}" if _is_integer_axis(name) else forms


def _not_list_or_range(name: str, spec: Any) -> ConfigError:
    hint = ""
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        hint = f" (write [{show(spec)}] for one value)"
    return ConfigError(
        f"grid.{name} = {show(spec)}: expected a non-empty list of "
        f"{'strings' if _axis_option(name).type is str else 'numbers or a range'} "
        f"{_range_forms(name)}{hint}"
    )


def _range_options(name: str) -> dict[str, Option]:
    """The keys of a range table of axis ``name``, as options (for their checks)."""
    label, number = f"grid.{name}", int if _is_integer_axis(name) else float
    options = [
        Option(label, "start", number, None, "first value"),
        Option(label, "stop", number, None, "last value (included)"),
        Option(label, "num", int, None, "number of values", ge=1),
        Option(label, "spacing", str, "linear", "spacing of the values", choices=SPACINGS),
    ]
    if number is int:
        options.append(Option(label, "step", int, None, "difference of successive values", gt=0))
    return {opt.name: opt for opt in options}


def _expand_range(name: str, spec: Mapping[str, Any]) -> tuple[Value, ...]:
    """A range table ``{start, stop, num[, spacing]}`` or ``{start, stop, step}`` -> values."""
    label, options = f"grid.{name}", _range_options(name)
    for key, value in spec.items():
        if key not in options:
            close = closest(key, options)
            hint = f"did you mean {label}.{close}? " if close is not None else ""
            raise ConfigError(
                f"unknown key {label}.{key} = {show(value)}; {hint}"
                f"keys of a range: {', '.join(options)}"
            )
    has_num, has_step = "num" in spec, "step" in spec
    if (
        "start" not in spec
        or "stop" not in spec
        or has_num == has_step
        or (has_step and "spacing" in spec)
    ):
        raise ConfigError(f"{label} = {show(spec)}: expected a range {_range_forms(name)}")
    r = {key: options[key].check(value) for key, value in spec.items()}
    start, stop = r["start"], r["stop"]
    if stop < start:
        raise ConfigError(
            f"{label}.stop = {show(stop)}: expected a number >= {label}.start = {show(start)}"
        )
    if has_step:
        count = (stop - start) // r["step"] + 1
        if count > MAX_POINTS:
            raise ConfigError(
                f"{label} = {show(spec)}: {count} values; expected at most {MAX_POINTS} "
                "values per axis"
            )
        return tuple(range(start, stop + 1, r["step"]))
    spacing = r.get("spacing", "linear")
    if spacing == "log" and start <= 0:
        raise ConfigError(f'{label}.start = {show(start)}: expected a number > 0 for "log" spacing')
    if r["num"] > MAX_POINTS:
        raise ConfigError(f"{label}.num = {show(r['num'])}: expected at most {MAX_POINTS} values")
    if r["num"] == 1 and stop != start:
        raise ConfigError(f"{label}.num = 1: expected num >= 2 for start != stop")
    values = _spaced(start, stop, r["num"], spacing)
    return _integers(label, spec, values) if _is_integer_axis(name) else values


def _spaced(start: float, stop: float, num: int, spacing: str) -> tuple[float, ...]:
    """``num`` values from ``start`` to ``stop`` (both exact), evenly or log-spaced."""
    if num == 1:
        return (float(start),)
    fractions = [i / (num - 1) for i in range(1, num - 1)]
    if spacing == "log":
        a, b = math.log(start), math.log(stop)
        inner = [math.exp(a + (b - a) * t) for t in fractions]
    else:
        inner = [start + (stop - start) * t for t in fractions]
    return (float(start), *(float(f"{x:.{SIGNIFICANT_DIGITS}g}") for x in inner), float(stop))


def _integers(label: str, spec: Mapping[str, Any], values: tuple[float, ...]) -> tuple[int, ...]:
    """The values of a num-range of an integer axis, which must land on integers."""
    for x in values:
        if not x.is_integer():
            raise ConfigError(
                f"{label} = {show(spec)}: expected integers, got {show(x)} (use step or a list)"
            )
    return tuple(int(x) for x in values)


def _points_grid(table: Mapping[str, Any]) -> Grid:
    """``{points = [{axis: value, ...}, ...]}`` -> a points Grid."""
    others = [key for key in table if key != "points"]
    if others:
        raise ConfigError(
            f"grid.{others[0]} = {show(table[others[0]])} next to grid.points: "
            "expected either axes or points, not both"
        )
    points = table["points"]
    example = "{lr = 0.1, K = 2}"
    if not isinstance(points, list | tuple) or not points:
        raise ConfigError(
            f"grid.points = {show(points)}: expected a non-empty list of tables like {example}"
        )
    for i, point in enumerate(points):
        if not isinstance(point, Mapping) or not point:
            raise ConfigError(
                f"grid.points[{i}] = {show(point)}: expected a table of axes like {example}"
            )
        for name, value in point.items():
            _check_axis_name(f"grid.points[{i}].{name}", name, value)
        if set(point) != set(points[0]):
            raise ConfigError(
                f"grid.points[{i}] = {show(point)}: expected the axes of grid.points[0] "
                f"({', '.join(points[0])}); every point names the same axes"
            )
    return Grid("points", tuple((name, tuple(p[name] for p in points)) for name in points[0]))
