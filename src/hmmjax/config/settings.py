"""The validated config of a run: ``Config`` (one frozen section per TOML table, plus the
grid), loading TOML files, ``--set`` overrides and the checks that involve several keys.

    cfg = load_config("configs/quickstart.toml", ["sgd.lr=0.5", "run.seed=3"])
    cfg.sgd.lr, cfg.data.N
    cfg.replace(sgd={"lr": 0.1})  # a new, re-validated Config
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import tomllib
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hmmjax.config.grid import (
    AXES,
    Grid,
    grid_reference_markdown,
    in_part_of_grid,
    parse_grid,
)
from hmmjax.config.schema import (
    ALL_SECTIONS,
    DEFAULT_STEM,
    FEATURE_MODELS,
    IMAGE_DATA,
    INVARIANT_AXES,
    INVARIANT_DATA,
    INVARIANT_G,
    NUMBERS,
    ODE_DATA_MODELS,
    ODE_F,
    ODE_G,
    REAL_DATA,
    SCHEMA,
    SECTIONS,
    SEED_LIMIT,
    SEED_STRIDE,
    ConfigError,
    DataConfig,
    FiniteConfig,
    InvariantConfig,
    ODEConfig,
    OptimiseConfig,
    OutputConfig,
    RunConfig,
    SGDConfig,
    StudentConfig,
    TeacherConfig,
    show,
    unknown_key,
    unknown_section,
)
from hmmjax.core.tables import check_table, read_table

__all__ = [
    "STEP_LIMIT",
    "euler_steps_problem",
    "Config",
    "config_from_dict",
    "load_config",
    "parse_override",
    "config_reference_markdown",
    "SCHEDULE_KEYS",
    "CNN_AXES",
    "is_invariant",
]


CNN_AXES = ("alpha", "P", "seed")
"""What a grid of the convolutional network (invariant.network = "cnn") may sweep."""


def is_invariant(cfg: Config) -> bool:
    """Whether ``cfg`` is an invariant-manifold experiment (the alpha-trick hinge-loss
    trainer): stripe / cylinder data, or the convolutional network on images."""
    return cfg.data.model in INVARIANT_DATA or cfg.invariant.network == "cnn"


@dataclass(frozen=True)
class Config:
    """A whole, validated experiment config: ``cfg.<section>.<key>``."""

    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    sgd: SGDConfig = field(default_factory=SGDConfig)
    finite: FiniteConfig = field(default_factory=FiniteConfig)
    invariant: InvariantConfig = field(default_factory=InvariantConfig)
    run: RunConfig = field(default_factory=RunConfig)
    ode: ODEConfig = field(default_factory=ODEConfig)
    optimise: OptimiseConfig = field(default_factory=OptimiseConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    grid: Grid = field(default_factory=lambda: Grid())

    def __post_init__(self) -> None:
        for name, cls in SECTIONS.items():
            if not isinstance(getattr(self, name), cls):
                raise ConfigError(f"Config({name}=...) must be a {cls.__name__}")
        if not isinstance(self.grid, Grid):
            raise ConfigError("Config(grid=...) must be a Grid")
        if not self.output.out:
            object.__setattr__(self, "output", _default_out(self.output, DEFAULT_STEM))
        whole = not in_part_of_grid()  # a point or part of a grid: checked with the grid
        if self.grid.kind == "none":
            _check_cross_keys(self)
            if whole:
                _check_unread(self, [self])
        else:  # the swept keys of the base are placeholders: check every point instead
            _check_grid_axes(self)
            points = self.grid.configs(self)
            if whole:
                _check_unread(self, points)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict ``{section: {key: value}}`` (JSON- and TOML-serialisable),
        the grid last as its ``[grid]`` table."""
        d = {name: _fields(getattr(self, name)) for name in SECTIONS}
        return {**d, "grid": self.grid.to_dict()}

    def to_toml(self) -> str:
        """The config as a TOML document that ``load_config`` reads back to an equal one."""
        lines = []
        for section, values in self.to_dict().items():
            lines.append(f"[{section}]")
            lines += [f"{key} = {show(value, None)}" for key, value in values.items()]
            lines.append("")
        return "\n".join(lines)

    def replace(self, **sections: Mapping[str, Any] | Grid) -> Config:
        """A new, re-validated Config: ``cfg.replace(sgd={"lr": 0.1}, run={"seed": 2})``.

        ``grid=`` replaces the whole grid: a Grid or a ``[grid]`` table (``{}``: none)."""
        d = self.to_dict()
        for section, updates in sections.items():
            if section == "grid":
                d["grid"] = updates
                continue
            if section not in SCHEMA:
                unknown_section(section)
            if not isinstance(updates, Mapping):
                raise ConfigError(
                    f"replace({section}=...): expected a dict of keys of [{section}], "
                    f"got {show(updates)}"
                )
            d[section].update(updates)
        return config_from_dict(d)

    def with_overrides(self, overrides: Iterable[str]) -> Config:
        """A new Config with ``"section.key=value"`` strings applied (see ``parse_override``)."""
        d = self.to_dict()
        for text in overrides:
            section, key, value = parse_override(text)
            d.setdefault(section, {})[key] = value
        return config_from_dict(d)


STEP_LIMIT = 2**32  # SGD steps index the counter-based data streams (hmmjax.core.rng)


def _fields(section: Any) -> dict[str, Any]:
    """A section's keys and values: a shallow ``dataclasses.asdict``, for a section's
    values are scalars, strings and tuples (immutable; a config is hashable) and this is
    called for every point of a grid (``asdict`` copies each value deeply, 10x slower)."""
    return {name: getattr(section, name) for name in _names(type(section))}


@functools.cache
def _names(cls: type) -> tuple[str, ...]:
    """The field names of a section's class (``dataclasses.fields`` builds its tuple
    anew at every call: half of ``_fields``'s time)."""
    return tuple(f.name for f in dataclasses.fields(cls))


def euler_steps_problem(t_max: float, dt: float, t_name: str, dt_name: str) -> str | None:
    """What is wrong with Euler steps of ``dt`` up to ``t_max`` (named ``t_name``,
    ``dt_name`` in the message), or None: at least one step (else the ODE stays at its
    start), and fewer than 2^32."""
    if not dt <= t_max:
        return (f"{dt_name} = {show(dt)}: the Euler step is longer than {t_name} = "
                f"{show(t_max)}; expected {dt_name} <= {t_name}")  # fmt: skip
    if not t_max / dt < STEP_LIMIT:
        return (f"{t_name} = {show(t_max)}: with {dt_name} = {show(dt)} that is "
                f"{t_max / dt:.3g} Euler steps; expected {t_name} / {dt_name} < 2^32")  # fmt: skip
    return None


def _check_cross_keys(cfg: Config) -> None:
    """Checks of one run that involve several keys: one line naming the key."""
    if cfg.sgd.trainer != "sgd" and (cfg.finite.P > 0 or is_invariant(cfg)):
        raise ConfigError(
            f"sgd.trainer = {show(cfg.sgd.trainer)}: only online runs (finite.P = 0, not "
            'stripe or cylinder) take another trainer; use "sgd"'
        )
    if cfg.data.features != "gaussian":
        _check_features(cfg)
    if cfg.run.precision == "float32":
        _check_float32(cfg)
    _check_schedule(cfg)
    _check_optimise(cfg)
    _check_owned(cfg, "invariant", "network", {"depth": "cnn", "kernel_size": "cnn"})
    if is_invariant(cfg):
        which = ('invariant.network = "cnn"' if cfg.invariant.network == "cnn"
                 else f"data.model = {show(cfg.data.model)}")  # fmt: skip
        _check_unused(cfg, _INVARIANT_UNUSED, f"invariant-manifold runs ({which})")
        _check_invariant(cfg)
        return
    online = cfg.finite.P == 0
    runs = f"{'online' if online else 'finite-set'} runs (finite.P = {cfg.finite.P})"
    _check_unused(cfg, _ONLINE_UNUSED if online else _FINITE_UNUSED, runs)
    _check_owned(cfg, "finite", "optimizer", {"momentum": "momentum"})
    steps = cfg.run.t_max * cfg.data.N
    if not steps < STEP_LIMIT:
        raise ConfigError(
            f"run.t_max = {show(cfg.run.t_max)}: at data.N = {cfg.data.N} that is {steps:.3g} "
            f"SGD steps, and data streams count steps below 2^32; expected run.t_max < "
            f"{STEP_LIMIT / cfg.data.N:.6g}"
        )
    if round(steps) < 1:  # the run would train one step beyond t_max (record_steps)
        raise ConfigError(
            f"run.t_max = {show(cfg.run.t_max)}: at data.N = {cfg.data.N} that is {steps:.3g} "
            f"SGD steps, less than one; expected run.t_max > 0.5 / data.N = "
            f"{0.5 / cfg.data.N:.6g}"
        )
    if cfg.run.mode != "sim" and cfg.ode.solver == "euler":
        problem = euler_steps_problem(cfg.run.t_max, cfg.ode.dt, "run.t_max", "ode.dt")
        if problem:
            raise ConfigError(problem)
    if cfg.student.K > cfg.data.N:
        raise ConfigError(
            f"student.K = {cfg.student.K}: expected an integer <= data.N = {cfg.data.N}"
        )
    if cfg.finite.P > 0:
        _check_finite(cfg)
    elif cfg.data.model in REAL_DATA:
        raise ConfigError(
            f"data.model = {show(cfg.data.model)}: a real data set is finite; set finite.P "
            "> 0 (the training set size)"
        )
    elif cfg.finite.optimizer != "sgd":
        raise ConfigError(
            f"finite.optimizer = {show(cfg.finite.optimizer)}: online runs (finite.P = 0) "
            'use "sgd"; set finite.P > 0 for a finite training set'
        )
    if cfg.run.mode != "sim":
        _check_ode_applies(cfg)


def _check_features(cfg: Config) -> None:
    """Cross-key checks of a structured feature matrix (data.features = dct | hadamard)."""
    d = cfg.data
    key = f"data.features = {show(d.features)}"
    if d.model not in FEATURE_MODELS:
        raise ConfigError(
            f"{key}: data.model = {show(d.model)} has no feature matrix; structured F needs "
            f"one of {', '.join(show(m) for m in FEATURE_MODELS)}"
        )
    if d.D > d.N:
        raise ConfigError(
            f"data.D = {d.D}: {key} takes D rows of an N x N transform; expected D <= "
            f"data.N = {d.N}"
        )
    if d.features == "hadamard" and d.N & (d.N - 1):
        lo = 1 << (d.N.bit_length() - 1)
        raise ConfigError(
            f"data.N = {d.N}: {key} needs a power of 2 (nearest {lo} or {2 * lo}); "
            'or use data.features = "dct"'
        )


def _check_grid_axes(cfg: Config) -> None:
    """Refuse grid axes that mean nothing for this kind of run (one line naming the axis):
    the same check for ``hmmjax config FILE`` and ``hmmjax run``."""
    g = cfg.grid
    models = [cfg.data.model]
    if "model" in g.names:
        models = [p["model"] for p in g.points()]
    if len({m in INVARIANT_DATA for m in models}) > 1:
        raise ConfigError(
            f"grid.model = {show(list(dict.fromkeys(models)))}: invariant manifolds "
            "(stripe, cylinder) and the other data models are different experiments; sweep "
            "them separately"
        )
    if cfg.invariant.network == "cnn":
        if g.kind == "points":
            raise ConfigError(
                "grid.points: the convolutional network takes a product grid over "
                + ", ".join(CNN_AXES)
            )
        allowed, kind = CNN_AXES, 'invariant.network = "cnn"'
    elif models[0] in INVARIANT_DATA:
        if g.kind == "points":
            raise ConfigError(
                "grid.points: invariant experiments take a product grid over "
                + ", ".join(INVARIANT_AXES)
            )
        allowed, kind = (*INVARIANT_AXES, "model"), f"data.model = {show(models[0])}"
    else:
        finite = cfg.finite.P > 0
        if finite and g.kind == "points":
            raise ConfigError(
                "grid.points: finite-set runs (finite.P > 0) take a product grid (their "
                "figures and analyses are laid out over its axes); sweep the axes as a product"
            )
        refused = ("P", "alpha") if finite else ("P", "alpha", "labels")
        allowed = tuple(n for n in AXES if n not in refused)
        kind = f"{'finite-set' if finite else 'online'} runs of data.model = {show(cfg.data.model)}"
    features = {p.get("features", cfg.data.features) for p in g.points()}
    shaped = [n for n in ("D", "N") if n in g.names]
    if features - {"gaussian"} and shaped:
        raise ConfigError(
            f"grid.{shaped[0]}: data.features = {show(sorted(features - {'gaussian'})[0])} is "
            "not padded to a grid's largest D and N; sweep D and N with gaussian features, "
            "or run one config per shape"
        )
    for name in g.names:
        if name not in allowed:
            hint = " (the training set size is fixed by finite.P)" if name == "P" else ""
            raise ConfigError(
                f"grid.{name}: not an axis of {kind}{hint}; it sweeps {', '.join(allowed)}"
            )


def _check_invariant(cfg: Config) -> None:
    """Cross-key checks of a stripe / cylinder run, or of the convolutional network."""
    model, N = cfg.data.model, cfg.data.N
    if cfg.invariant.network == "cnn":
        d_par, what = 0, 'invariant.network = "cnn"'
        data_ok = model in IMAGE_DATA
        data_allowed = "one of " + ", ".join(show(m) for m in IMAGE_DATA) + " (images)"
        dim_ok, dim_allowed = math.isqrt(N) ** 2 == N, "a square number of pixels"
        side, k = math.isqrt(N), cfg.invariant.kernel_size
        if dim_ok and k > 2 * side - 1:
            raise ConfigError(
                f"invariant.kernel_size = {k}: images of {side}x{side} pixels take kernels of "
                f"side <= {2 * side - 1} (a larger kernel has entries that never see a pixel)"
            )
    else:
        d_par, what = INVARIANT_DATA.index(model) + 1, f"data.model = {show(model)}"
        data_ok, data_allowed = True, ""
        dim_ok, dim_allowed = N > d_par, f"an integer > {d_par} (d > d_par)"
    checks = [
        ("data.model", model, data_ok, data_allowed),
        ("data.N", N, dim_ok, dim_allowed),
        ("finite.P", cfg.finite.P, cfg.finite.P > 0, "an integer > 0 (the training set size p)"),
        ("run.mode", cfg.run.mode, cfg.run.mode == "sim", '"sim"'),
        ("student.g", cfg.student.g, cfg.student.g in INVARIANT_G,
         "one of " + ", ".join(show(g) for g in INVARIANT_G)),
        ("run.ensemble", cfg.run.ensemble, cfg.run.ensemble <= SEED_STRIDE,
         f"at most {SEED_STRIDE} members (member m of seed s draws with seed s 10^6 + m)"),
        ("run.seed", cfg.run.seed, (cfg.run.seed + 1) * SEED_STRIDE <= SEED_LIMIT,
         f"run.seed < 2^64 / 10^6 = {SEED_LIMIT // SEED_STRIDE} (member m draws with seed "
         "s 10^6 + m < 2^64)"),
    ]  # fmt: skip
    for key, value, ok, allowed in checks:
        if not ok:
            raise ConfigError(f"{key} = {show(value)}: {what} needs {allowed}")


SCHEDULE_KEYS: dict[str, str] = {
    "tau": "power",
    "power": "power",
    "schedule_times": "piecewise",
    "schedule_values": "piecewise",
    "schedule_file": "file",
}
"""The keys of [sgd] that a schedule uses, and the ``sgd.schedule`` that uses each."""


def _check_schedule(cfg: Config) -> None:
    """The learning-rate schedule's keys: used by the schedule they belong to, on online
    runs, and a readable table for ``sgd.schedule = "file"``."""
    s = cfg.sgd
    kind = s.schedule
    _check_owned(cfg, "sgd", "schedule", SCHEDULE_KEYS)
    if kind == "constant":
        return
    if cfg.finite.P > 0 or is_invariant(cfg):
        raise ConfigError(
            f"sgd.schedule = {show(kind)}: schedules are for online runs (finite.P = 0, not "
            'stripe or cylinder); use "constant"'
        )
    if kind == "piecewise":
        try:
            check_table(s.schedule_times, s.schedule_values, "the table")
        except ValueError as e:
            raise ConfigError(
                f"sgd.schedule_times = {show(s.schedule_times)}, sgd.schedule_values = "
                f"{show(s.schedule_values)}: {e}"
            ) from None
    if kind == "file":
        if not s.schedule_file:
            raise ConfigError(
                'sgd.schedule = "file": set sgd.schedule_file (a table of t and the factor '
                "of the learning rate)"
            )
        try:
            read_table(s.schedule_file)
        except ValueError as e:
            raise ConfigError(f"sgd.schedule_file = {show(s.schedule_file)}: {e}") from None


def _check_optimise(cfg: Config) -> None:
    """[optimise]: a range of constant rates, and the keys of the piecewise form only
    with it (what only ``hmmjax optimise`` needs is checked there: ``check_optimise``)."""
    o = cfg.optimise
    if not o.lr_min < o.lr_max:
        raise ConfigError(
            f"optimise.lr_max = {show(o.lr_max)}: expected a number > optimise.lr_min = "
            f"{show(o.lr_min)}"
        )
    _check_owned(cfg, "optimise", "form", {"pieces": "piecewise", "roughness": "piecewise"})


_FLOAT32_KEYS = ("sgd.lr", "sgd.kappa", "data.noise", "invariant.alpha", "invariant.threshold")
"""Keys whose values the runs hold in the run's precision (``run.precision``)."""
_FLOAT32_MAX = 3.4028234663852886e38


def _check_float32(cfg: Config) -> None:
    """Values that float32 turns into infinity are refused (they would end in overflow
    warnings and a run that diverges at its first step)."""
    for key in _FLOAT32_KEYS:
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if not abs(value) <= _FLOAT32_MAX:
            raise ConfigError(
                f'{key} = {show(value)}: beyond float32 (run.precision = "float32"); '
                f'expected at most {_FLOAT32_MAX:.4g}, or run.precision = "float64"'
            )


# Keys a kind of run does not read: they keep their defaults, since any other value would
# be ignored without a word (each found by a run with the key changed giving the same
# numbers, and by the code of that kind of run not reading it).
_INVARIANT_UNUSED = (
    "data.noise", "data.shared", "teacher.M", "teacher.g", "teacher.scaling", "student.init",
    "student.second_layer", "student.train_second", "sgd.kappa", "sgd.batch",
    "finite.optimizer", "finite.momentum", "finite.labels", "finite.shuffle", "run.t_max",
    "run.spacing",
)  # fmt: skip
_FINITE_UNUSED = tuple(f"invariant.{key}" for key in SCHEMA["invariant"] if key != "network")
_ONLINE_UNUSED = ("finite.momentum", "finite.labels", "finite.shuffle",
                 *_FINITE_UNUSED)  # fmt: skip


def _check_unused(cfg: Config, keys: Iterable[str], runs: str) -> None:
    """``keys`` ("section.key") keep their defaults: ``runs`` do not use them."""
    for key in keys:
        section, name = key.split(".")
        value, default = getattr(getattr(cfg, section), name), SCHEMA[section][name].default
        if value != default:
            raise ConfigError(
                f"{key} = {show(value)}: {runs} do not use it; leave it at its default "
                f"{show(default)}"
            )


_LATENT_KEYS = ("data.D", "data.f")
_TEACHER_KEYS = ("data.noise", "teacher.M", "teacher.g", "teacher.scaling")
_MODEL_UNREAD: dict[str, tuple[tuple[str, ...], str]] = {
    "iid": (_LATENT_KEYS, "Gaussian inputs, no manifold"),
    "digits": ((*_LATENT_KEYS, *_TEACHER_KEYS), "a data set, labelled even / odd"),
    "mnist": ((*_LATENT_KEYS, *_TEACHER_KEYS), "a data set, labelled even / odd"),
}
"""Keys that runs of a built-in data model do not read (each found as for
``_INVARIANT_UNUSED``), and what the model is. data.path is read by mnist only, for every
other model (a data model registered by a user, ``hmmjax.data.register_data_model``, is
never given a path); a registered model's other keys are not checked."""


def _unread(cfg: Config) -> tuple[str, ...]:
    """The keys that the run of ``cfg`` (no grid) does not read, of those checked."""
    if is_invariant(cfg):  # _check_cross_keys checks these
        return ()
    keys = _MODEL_UNREAD.get(cfg.data.model, ((), ""))[0]
    return keys if cfg.data.model == "mnist" else (*keys, "data.path")


def _check_unread(cfg: Config, points: list[Config]) -> None:
    """A key that no point of the run reads (``points``: the grid's configs, or the config
    itself) keeps its default, since any other value would change nothing. Over a grid a
    key is refused only if no point reads it: the base's data.D of a grid over data.model =
    ["hmm", "digits"] is read by its hmm points."""
    unread = set.intersection(*(set(_unread(p)) for p in points))
    axis_of = {f"{section}.{key}": name for name, (section, key) in AXES.items()}
    for key in sorted(unread):
        section, name = key.split(".")
        default = SCHEMA[section][name].default
        values = [getattr(getattr(p, section), name) for p in points]
        changed = [i for i, v in enumerate(values) if v != default]
        if not changed:
            continue
        models = list(dict.fromkeys(p.data.model for p in points))
        if key == "data.path":
            why = 'only data.model = "mnist" reads it'
        elif len(models) > 1:
            why = f"data.model = {show(models)}"
        else:
            why = f"data.model = {show(models[0])}: {_MODEL_UNREAD[models[0]][1]}"
        if axis_of.get(key) in cfg.grid.names:
            label, value = f"grid.{axis_of[key]}", list(dict.fromkeys(values))
            fix = "remove the axis"
        else:
            label, value = key, values[changed[0]]
            fix = f"leave it at its default {show(default)}"
        runs = ("the run does not read it" if cfg.grid.kind == "none"
                else "no point of the grid reads it")  # fmt: skip
        raise ConfigError(f"{label} = {show(value)}: {runs} ({why}); {fix}")


def _check_owned(cfg: Config, section: str, kind_key: str, owners: Mapping[str, str]) -> None:
    """Keys of ``section`` that only one value of its key ``kind_key`` uses (``owners``:
    key -> that value) keep their defaults under any other value."""
    values = getattr(cfg, section)
    kind = getattr(values, kind_key)
    for name, owner in owners.items():
        value = getattr(values, name)
        if value != SCHEMA[section][name].default and kind != owner:
            raise ConfigError(
                f"{section}.{name} = {show(value)}: used by {section}.{kind_key} = "
                f"{show(owner)} only; {section}.{kind_key} is {show(kind)}"
            )


def _check_finite(cfg: Config) -> None:
    """Cross-key checks of a finite-training-set run (finite.P > 0)."""
    P, B = cfg.finite.P, cfg.sgd.batch
    if cfg.run.mode != "sim":
        raise ConfigError(
            f"run.mode = {show(cfg.run.mode)}: finite.P = {P} (a finite training set) has no "
            'ODE; use "sim"'
        )
    if P % B:
        raise ConfigError(
            f"sgd.batch = {B}: expected a divisor of finite.P = {P} (every epoch is P / batch "
            "whole mini-batches)"
        )
    if not cfg.data.shared:
        raise ConfigError(
            "data.shared = false: finite.P > 0 trains every member on one training set; "
            "set data.shared = true"
        )


def _check_ode_applies(cfg: Config) -> None:
    """Cross-key checks for run.mode = "ode" | "both": one line naming the key."""
    mode = f'run.mode = "{cfg.run.mode}"'
    teacher_g = cfg.teacher.g or cfg.student.g
    checks = [
        ("data.model", cfg.data.model, cfg.data.model in ODE_DATA_MODELS, ODE_DATA_MODELS),
        ("student.g", cfg.student.g, cfg.student.g in ODE_G, ODE_G),
        ("teacher.g", teacher_g, teacher_g == cfg.student.g, (cfg.student.g,)),
        ("sgd.batch", cfg.sgd.batch, cfg.sgd.batch == 1, (1,)),
        ("data.shared", cfg.data.shared, cfg.data.shared, (True,)),
        ("sgd.trainer", cfg.sgd.trainer, cfg.sgd.trainer == "sgd", ("sgd",)),
    ]
    if cfg.data.model != "iid":
        # the manifold ODE (docs/theory.md 5.2) needs mu0 = 0 and has no weight decay or noise
        checks += [
            (
                "data.f",
                cfg.data.f,
                cfg.data.f in ODE_F,
                ODE_F,
            ),
            ("sgd.kappa", cfg.sgd.kappa, cfg.sgd.kappa == 0, (0.0,)),
            ("data.noise", cfg.data.noise, cfg.data.noise == 0, (0.0,)),
        ]
    if cfg.ode.source == "limit":
        hmm = tuple(m for m in ODE_DATA_MODELS if m != "iid")
        checks.append(("data.model", cfg.data.model, cfg.data.model in hmm, hmm))
    for key, value, ok, allowed in checks:
        if not ok:
            raise ConfigError(
                f"{key} = {show(value)}: {mode} (the ODE) needs one of "
                f"{', '.join(show(a) for a in allowed)}"
            )


def config_from_dict(d: Mapping[str, Any], *, stem: str = DEFAULT_STEM) -> Config:
    """Validate a nested dict ``{section: {key: value}}``; missing keys take defaults.

    An empty ``output.out`` becomes ``results/<stem>.nc``; ``d["grid"]`` (optional) is
    the ``[grid]`` table or a Grid (see ``hmmjax.config.grid``).
    """
    if not isinstance(d, Mapping):
        raise ConfigError(f"a config is a table of sections; got {show(d)}")
    for section in d:
        if section not in ALL_SECTIONS:
            unknown_section(section)
    grid = parse_grid(d.get("grid", {}))
    sections = {}
    for section, cls in SECTIONS.items():
        values = d.get(section, {})
        if not isinstance(values, Mapping):
            raise ConfigError(
                f"{section} = {show(values)}: expected a table [{section}] of keys "
                f"{', '.join(SCHEMA[section])}"
            )
        for key in values:
            if key not in SCHEMA[section]:
                unknown_key(section, key, values[key])
        sections[section] = cls(**values)
    if not sections["output"].out:
        sections["output"] = _default_out(sections["output"], stem)
    return Config(**sections, grid=grid)


def _default_out(output: OutputConfig, stem: str) -> OutputConfig:
    return dataclasses.replace(output, out=f"results/{stem}.nc")


def load_config(path: str | os.PathLike, overrides: Iterable[str] = ()) -> Config:
    """Read, override and validate a TOML config file.

    ``overrides`` are ``"section.key=value"`` strings; the value is read as a TOML value
    (``0.5``, ``true``, ``"erf"``) or, failing that, taken as a bare string (``erf``).
    ``output.out`` defaults to ``results/<file stem>.nc``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config file {path}: {err}") from None
    try:
        d = tomllib.loads(text)
    except ValueError as err:  # TOMLDecodeError, or an integer of over 4300 digits
        raise ConfigError(f"{path} is not valid TOML: {err}") from None
    for override in overrides:
        section, key, value = parse_override(override)
        table = d.setdefault(section, {})
        if isinstance(table, dict):
            table[key] = value
    return config_from_dict(d, stem=path.stem)


def parse_override(text: str) -> tuple[str, str, Any]:
    """``"sgd.lr=0.5"`` -> ``("sgd", "lr", 0.5)``; the value is TOML, else a bare string."""
    name, sep, raw = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not section or not key or "." in key:
        raise ConfigError(f"override {text!r}: expected section.key=value, e.g. sgd.lr=0.5")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    except ValueError as err:  # an integer of over 4300 digits
        raise ConfigError(f"override {name.strip()}=...: {err}") from None
    return section, key, value


def config_reference_markdown() -> str:
    """A markdown table of every key (type, default, what is allowed, description), then
    a paragraph on the ``[grid]`` table."""
    names = {bool: "bool", int: "int", float: "float", str: "str", NUMBERS: "list of float"}
    rows = [
        "| key | type | default | allowed | description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for options in SCHEMA.values():
        for opt in options.values():
            allowed, doc = (_md(text) for text in (opt.allowed(), opt.doc))
            kinds = (opt.type,) if opt.type == NUMBERS else typing.get_args(opt.type) or (opt.type,)
            kind = " or ".join(names[k] for k in kinds)
            rows.append(f"| `{opt.key}` | {kind} | `{show(opt.default)}` | {allowed} | {doc} |")
    return "\n".join(rows) + "\n" + grid_reference_markdown()


def _md(text: str) -> str:
    """Escape text for a markdown table cell."""
    return text.replace("|", "\\|").replace("<", "&lt;")
