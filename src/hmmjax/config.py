"""TOML configs -> validated, typed, frozen settings, with errors that name the key.

The schema is the section dataclasses below: each field's annotation is its type, and
``option(default, doc, choices=..., gt=..., ge=...)`` states its default, what is
allowed and a one-line description. Validation (in each section's ``__post_init__``, so
no settings object can hold a bad value), defaults, ``Config.to_dict``, ``to_toml`` and
the README table (``config_reference_markdown``) are all read from that one place.

This module imports only the standard library: a config is checked before JAX is
imported, any array is allocated or anything is compiled.

    cfg = load_config("configs/quickstart.toml", ["sgd.lr=0.5", "run.seed=3"])
    cfg.sgd.lr, cfg.data.N
    cfg.replace(sgd={"lr": 0.1})  # a new, re-validated Config

The optional ``[grid]`` table (parameter sweeps) is read by ``hmmjax.grid``, which
imports this module; so this module imports it only where it is used.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from hmmjax.grid import Grid

__all__ = [
    "ACTIVATIONS",
    "Config",
    "ConfigError",
    "DataConfig",
    "FiniteConfig",
    "InvariantConfig",
    "Option",
    "ODEConfig",
    "OutputConfig",
    "RunConfig",
    "SGDConfig",
    "SCHEMA",
    "StudentConfig",
    "TeacherConfig",
    "config_from_dict",
    "config_reference_markdown",
    "load_config",
    "parse_override",
]

# Kept here (not imported from activations.py) so that this module never imports JAX;
# tests check that the lists agree with the physics modules.
ACTIVATIONS = ("erf", "linear", "relu", "tanh", "sign")
DATA_MODELS = ("iid", "hmm", "hmm_x", "get", "digits", "mnist", "stripe", "cylinder")
REAL_DATA = ("digits", "mnist")  # finite data sets shipped or on disk (hmmjax.datasets)
INVARIANT_DATA = ("stripe", "cylinder")  # invariant manifolds (hmmjax.invariant)
INVARIANT_G = ("relu", "tanh", "erf")
OPTIMIZERS = ("sgd", "momentum", "adam")
SCALINGS = ("none", "normalise", "meanfield")
DEFAULT_STEM = "hmmjax"  # output.out is results/<stem>.nc; load_config uses the file's stem


class ConfigError(ValueError):
    """A config is invalid. The message is one line naming the key, the value and what
    is allowed."""


def option(
    default: Any,
    doc: str,
    *,
    choices: tuple[Any, ...] | None = None,
    gt: float | None = None,
    ge: float | None = None,
    validate: Callable[[Any], bool] | None = None,
    allowed: str | None = None,
) -> Any:
    """A schema entry: a dataclass field carrying its constraints and documentation.

    ``validate``: an extra test of the value (True = fine), described by ``allowed``."""
    meta = {"doc": doc, "choices": choices, "gt": gt, "ge": ge, "validate": validate,
            "allowed_text": allowed}  # fmt: skip
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Option:
    """One key of the schema, as read from a section dataclass."""

    section: str
    name: str
    type: type
    default: Any
    doc: str
    choices: tuple[Any, ...] | None = None
    gt: float | None = None
    ge: float | None = None
    validate: Callable[[Any], bool] | None = None
    allowed_text: str | None = None

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"

    def allowed(self) -> str:
        """What is allowed, in words: "an integer > 0", "one of "log", "linear"", ..."""
        if self.allowed_text is not None:
            return self.allowed_text
        if self.choices is not None:
            return "one of " + ", ".join(_show(c) for c in self.choices)
        words = {bool: "true or false", int: "an integer", float: "a finite number"}
        text = words.get(self.type, "a string")
        if self.gt is not None:
            text += f" > {_num(self.gt)}"
        if self.ge is not None:
            text += f" >= {_num(self.ge)}"
        return text

    def check(self, value: Any) -> Any:
        """Return ``value`` coerced to this option's type, or raise ``ConfigError``."""
        given = f"{self.key} = {_show(value)}"
        expected = f"expected {self.allowed()}"
        if not _is_type(value, self.type):
            raise ConfigError(f"{given} ({_kind(value)}): {expected}{_int_hint(self, value)}")
        if _takes_float(self.type) and not isinstance(value, str):
            value = float(value)
            if not math.isfinite(value):
                raise ConfigError(f"{given}: {expected}")
        if self.choices is not None and value not in self.choices:
            close = _closest(value, self.choices)
            hint = f" (did you mean {_show(close)}?)" if close is not None else ""
            raise ConfigError(f"{given}: {expected}{hint}")
        if (self.gt is not None and not value > self.gt) or (
            self.ge is not None and not value >= self.ge
        ):
            raise ConfigError(f"{given}: {expected}")
        if self.validate is not None and not self.validate(value):
            raise ConfigError(f"{given}: {expected}")
        return value


def _word_or(words: tuple[str, ...], test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """A ``validate`` for a ``str | number`` option: one of ``words`` or a number passing
    ``test``."""
    return lambda x: x in words if isinstance(x, str) else test(x)


class _Section:
    """Base of the section dataclasses: validates and coerces every field on creation."""

    section: ClassVar[str]

    def __post_init__(self) -> None:
        for opt in SCHEMA[self.section].values():
            object.__setattr__(self, opt.name, opt.check(getattr(self, opt.name)))


@dataclass(frozen=True)
class DataConfig(_Section):
    """[data]: the data model that draws the inputs x and labels y."""

    section: ClassVar[str] = "data"
    model: str = option(
        "hmm",
        "iid: Gaussian inputs; hmm: hidden manifold, teacher on c; hmm_x: teacher on x; "
        "get: Gaussian equivalent of hmm; digits: scikit-learn's 8x8 digits, even vs odd "
        "(N = 64); mnist: an MNIST IDX file (data.path), even vs odd (finite.P > 0 only); "
        "stripe, cylinder: invariant manifolds in N = d dimensions ([invariant])",
        choices=DATA_MODELS,
    )
    N: int = option(784, "input dimension", gt=0)
    D: int = option(10, "latent (manifold) dimension; ignored for iid", gt=0)
    f: str = option(
        "sign", "non-linearity of the manifold, x = f(F^T c / sqrt D)", choices=ACTIVATIONS
    )
    noise: float = option(0.0, "standard deviation of the label noise", ge=0)
    shared: bool = option(True, "one F and teacher for the whole ensemble (else one per member)")
    path: str = option(
        "", "mnist: the images IDX file (the labels file is found beside it by its MNIST name)"
    )


@dataclass(frozen=True)
class TeacherConfig(_Section):
    """[teacher]: the two-layer network that labels the data."""

    section: ClassVar[str] = "teacher"
    M: int = option(2, "number of hidden units of the teacher", gt=0)
    g: str = option(
        "", 'activation of the teacher; "" means the same as student.g', choices=("", *ACTIVATIONS)
    )
    scaling: str = option(
        "none",
        "second layer: none (v = 1), normalise (v / M), meanfield (v / sqrt M)",
        choices=SCALINGS,
    )


@dataclass(frozen=True)
class StudentConfig(_Section):
    """[student]: the two-layer network trained by online SGD."""

    section: ClassVar[str] = "student"
    K: int = option(2, "number of hidden units of the student", gt=0)
    g: str = option("erf", "activation of the student", choices=ACTIVATIONS)
    init: str = option(
        "large",
        "first layer: large (w ~ N(0, 1)) or small (1e-3 N(0, 1))",
        choices=("large", "small"),
    )
    second_layer: str = option(
        "ones", "initial second layer: ones or gaussian (N(0, 1))", choices=("ones", "gaussian")
    )
    scaling: str = option(
        "none", "second layer: none, normalise (v / K), meanfield (v / sqrt K)", choices=SCALINGS
    )
    train_second: bool = option(False, "also train the second layer v")


@dataclass(frozen=True)
class SGDConfig(_Section):
    """[sgd]: online stochastic gradient descent."""

    section: ClassVar[str] = "sgd"
    lr: float = option(0.2, "learning rate eta", gt=0)
    kappa: float = option(0.0, "weight decay (L2 penalty) kappa", ge=0)
    batch: int = option(1, "samples per SGD step", gt=0)


@dataclass(frozen=True)
class FiniteConfig(_Section):
    """[finite]: training on a fixed set of P samples (P = 0: online, fresh samples)."""

    section: ClassVar[str] = "finite"
    P: int = option(
        0,
        "training samples, drawn once and shared by the members; 0 = online SGD. Mini-batches "
        "of sgd.batch samples, reshuffled every epoch; sgd.batch = P is full-batch GD",
        ge=0,
    )
    optimizer: str = option(
        "sgd",
        "optax optimiser of the finite-set runs, at learning rate sgd.lr (sgd: the online "
        "update of THEORY 1)",
        choices=OPTIMIZERS,
    )
    momentum: float = option(0.9, "optimizer = momentum: the momentum", ge=0)
    labels: str = option(
        "sign",
        "training labels: teacher (the teacher's output, plus data.noise), sign (its sign: "
        "a binary task) or random (the sign labels shuffled across the training samples: "
        "memorisation); real data sets are +-1 (even/odd), shuffled for random",
        choices=("teacher", "sign", "random"),
    )
    shuffle: bool = option(
        True,
        "reshuffle the sample order every epoch (each member its own order); false: "
        "the order in which the samples were drawn",
    )


@dataclass(frozen=True)
class InvariantConfig(_Section):
    """[invariant]: the alpha-trick network on stripe / cylinder data (THEORY 7). data.N is
    d, student.K is h, finite.P is p, sgd.lr scales the step, run.ensemble counts seeds,
    run.n_times the records, run.test_size the test set."""

    section: ClassVar[str] = "invariant"
    alpha: float = option(
        1.0, "output scale alpha of F = alpha (f(w) - f(w0)): large lazy, small feature", gt=0
    )
    threshold: float = option(
        1.3862943611198906,
        "cylinder: y = +1 if x_1^2 + x_2^2 > threshold; default 2 ln 2, the median of chi2_2 "
        "(balanced; THEORY's 4/3 gives P(y = +1) = 0.513)",
        gt=0,
    )
    adaptive: bool = option(True, "adaptive gradient-flow step (else fixed GD steps)")
    max_dF: float = option(0.5, "adaptive step: largest change of an output per step", gt=0)
    max_dw: float = option(0.1, "adaptive step: largest relative change of the weights", gt=0)
    max_steps: int = option(100_000, "iterations at most (training stops at zero loss)", gt=0)
    ntk: bool = option(
        False,
        "measure the empirical NTK at initialisation and at the end, with kernel "
        "regression / SVM and label alignment",
    )
    ntk_top: int = option(20, "eigenvectors of the NTK for the label alignment", gt=0)
    kernel_ridge: float = option(1e-4, "kernel regression ridge, relative to tr(K) / p", ge=0)


@dataclass(frozen=True)
class RunConfig(_Section):
    """[run]: length, recording, ensemble and numerics of a run."""

    section: ClassVar[str] = "run"
    t_max: float = option(100.0, "training time in units of N steps", gt=0)
    n_times: int = option(200, "number of recording times", gt=0)
    spacing: str = option("log", "spacing of the recording times", choices=("log", "linear"))
    ensemble: int = option(8, "number of students trained side by side (members)", gt=0)
    seed: int = option(0, "seed of every random draw", ge=0)
    test_size: int = option(5000, "test samples for the Monte-Carlo generalisation error", gt=0)
    block: int = option(64, "SGD steps drawn and run per inner loop iteration", gt=0)
    precision: str = option("float32", "floating point precision", choices=("float32", "float64"))
    chunk: int = option(20, "recording intervals per compiled call (one progress tick each)", gt=0)
    mode: str = option(
        "sim",
        "sim: online SGD; ode: the ODE of THEORY 5; both: both from the same initial state",
        choices=("sim", "ode", "both"),
    )
    same_init: bool = option(
        False, "all members start from the same weights (own data streams): sim vs ODE"
    )
    diverge_eg: float = option(
        1e3,
        "a grid point whose eg exceeds this (or turns non-finite) is flagged as diverged "
        "and frozen",
        gt=0,
    )
    memory_gib: str | float = option(
        "auto",
        "device memory the sweep may use, in GiB; auto = 80% of what the device reports "
        "(CPU: available RAM)",
        validate=_word_or(("auto",), lambda x: x > 0),
        allowed='"auto" or a number > 0',
    )
    checkpoint: bool = option(
        True,
        "write the sweep's state after each chunk next to output.out (.ckpt) and resume from it",
    )
    devices: str | int = option(
        "all",
        "local devices the grid axis is sharded over: all or a number >= 1",
        validate=_word_or(("all",), lambda n: n >= 1),
        allowed='"all" or an integer >= 1',
    )


@dataclass(frozen=True)
class ODEConfig(_Section):
    """[ode]: the ODE integrator (run.mode = "ode" or "both")."""

    section: ClassVar[str] = "ode"
    solver: str = option(
        "euler",
        "euler (fixed dt, as the published integrator) or an adaptive solver",
        choices=("euler", "tsit5", "dopri5", "dopri8"),
    )
    dt: float = option(0.01, "Euler step", gt=0)
    rtol: float = option(1e-8, "relative tolerance of the adaptive solvers", gt=0)
    atol: float = option(1e-10, "absolute tolerance of the adaptive solvers", gt=0)
    teacher_term: str = option(
        "auto",
        "HMM teacher term: exact (per eigenvalue), averaged (published) or auto (exact)",
        choices=("auto", "exact", "averaged"),
    )
    nodes: str | int = option(
        "auto",
        "HMM ODE spectral points (THEORY 5.3): auto (fewest nodes to node_rtol), full "
        "(every eigenvalue) or a number p of nodes",
        validate=_word_or(("auto", "full"), lambda p: p >= 2),
        allowed='"auto", "full" or an integer >= 2',
    )
    node_rtol: float = option(
        1e-8, "nodes = auto: relative change of eg that stops adding nodes", gt=0
    )
    source: str = option(
        "sample",
        "HMM initial state: sample (the simulation's F, teacher and member-0 weights) or "
        "limit (N -> infinity at delta = D / N on the Marchenko-Pastur law, no F sampled)",
        choices=("sample", "limit"),
    )


@dataclass(frozen=True)
class OutputConfig(_Section):
    """[output]: where results go."""

    section: ClassVar[str] = "output"
    out: str = option(
        "", 'netCDF results file; "" means results/STEM.nc, STEM the config file name'
    )
    figure: str = option("", 'learning-curve figure; "" means next to out, with .png')

    def out_path(self) -> Path:
        return Path(self.out)

    def figure_path(self) -> Path:
        """The figure's path: ``figure``, or ``out`` with the suffix .png."""
        return Path(self.figure) if self.figure else Path(self.out).with_suffix(".png")


SECTIONS: dict[str, type[_Section]] = {
    cls.section: cls
    for cls in (
        DataConfig,
        TeacherConfig,
        StudentConfig,
        SGDConfig,
        FiniteConfig,
        InvariantConfig,
        RunConfig,
        ODEConfig,
        OutputConfig,
    )
}


def _schema_of(cls: type[_Section]) -> dict[str, Option]:
    hints = typing.get_type_hints(cls)
    return {
        f.name: Option(cls.section, f.name, hints[f.name], f.default, **f.metadata)
        for f in dataclasses.fields(cls)
    }


SCHEMA: dict[str, dict[str, Option]] = {name: _schema_of(cls) for name, cls in SECTIONS.items()}
_ALL_SECTIONS = (*SECTIONS, "grid")  # [grid] is a table of sweeps, not a _Section


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
    output: OutputConfig = field(default_factory=OutputConfig)
    grid: Grid = field(default_factory=lambda: _grid_module().Grid())

    def __post_init__(self) -> None:
        for name, cls in SECTIONS.items():
            if not isinstance(getattr(self, name), cls):
                raise ConfigError(f"Config({name}=...) must be a {cls.__name__}")
        if not isinstance(self.grid, _grid_module().Grid):
            raise ConfigError("Config(grid=...) must be a Grid")
        if not self.output.out:
            object.__setattr__(self, "output", _default_out(self.output, DEFAULT_STEM))
        if self.grid.kind == "none":
            _check_cross_keys(self)
        else:  # the swept keys of the base are placeholders: check every point instead
            self.grid.configs(self)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict ``{section: {key: value}}`` (JSON- and TOML-serialisable),
        the grid last as its ``[grid]`` table."""
        d = {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}
        return {**d, "grid": self.grid.to_dict()}

    def to_toml(self) -> str:
        """The config as a TOML document that ``load_config`` reads back to an equal one."""
        lines = []
        for section, values in self.to_dict().items():
            lines.append(f"[{section}]")
            lines += [f"{key} = {_show(value, None)}" for key, value in values.items()]
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
                _unknown_section(section)
            if not isinstance(updates, Mapping):
                raise ConfigError(
                    f"replace({section}=...): expected a dict of keys of [{section}], "
                    f"got {_show(updates)}"
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


# What the ODEs of THEORY.md section 5 cover; anything else is refused before any work.
ODE_DATA_MODELS = ("iid", "hmm", "get")
ODE_G = ("erf", "linear")


def _grid_module() -> types.ModuleType:
    """hmmjax.grid, imported on use (it imports this module)."""
    import hmmjax.grid

    return hmmjax.grid


def _check_cross_keys(cfg: Config) -> None:
    """Checks of one run that involve several keys: one line naming the key."""
    if cfg.data.model in INVARIANT_DATA:
        _check_invariant(cfg)
        return
    if cfg.student.K > cfg.data.N:
        raise ConfigError(
            f"student.K = {cfg.student.K}: expected an integer <= data.N = {cfg.data.N}"
        )
    if cfg.finite.P > 0:
        _check_finite(cfg)
    elif cfg.data.model in REAL_DATA:
        raise ConfigError(
            f"data.model = {_show(cfg.data.model)}: a real data set is finite; set finite.P "
            "> 0 (the training set size)"
        )
    elif cfg.finite.optimizer != "sgd":
        raise ConfigError(
            f"finite.optimizer = {_show(cfg.finite.optimizer)}: online runs (finite.P = 0) "
            'use "sgd"; set finite.P > 0 for a finite training set'
        )
    if cfg.run.mode != "sim":
        _check_ode_applies(cfg)


def _check_invariant(cfg: Config) -> None:
    """Cross-key checks of a stripe / cylinder run."""
    model, d_par = cfg.data.model, INVARIANT_DATA.index(cfg.data.model) + 1
    checks = [
        ("finite.P", cfg.finite.P, cfg.finite.P > 0, "an integer > 0 (the training set size p)"),
        ("run.mode", cfg.run.mode, cfg.run.mode == "sim", '"sim"'),
        ("student.g", cfg.student.g, cfg.student.g in INVARIANT_G,
         "one of " + ", ".join(_show(g) for g in INVARIANT_G)),
        ("data.N", cfg.data.N, cfg.data.N > d_par, f"an integer > {d_par} (d > d_par)"),
    ]  # fmt: skip
    for key, value, ok, allowed in checks:
        if not ok:
            raise ConfigError(
                f"{key} = {_show(value)}: data.model = {_show(model)} needs {allowed}"
            )


def _check_finite(cfg: Config) -> None:
    """Cross-key checks of a finite-training-set run (finite.P > 0)."""
    P, B = cfg.finite.P, cfg.sgd.batch
    if cfg.run.mode != "sim":
        raise ConfigError(
            f"run.mode = {_show(cfg.run.mode)}: finite.P = {P} (a finite training set) has no "
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
    if cfg.data.model in REAL_DATA:
        from hmmjax.datasets import shape  # NumPy only, no JAX

        try:
            n, N = shape(cfg.data.model, cfg.data.path)
        except (OSError, ValueError) as err:
            raise ConfigError(f"data.path = {_show(cfg.data.path)}: {err}") from None
        if cfg.data.N != N:
            raise ConfigError(
                f"data.N = {cfg.data.N}: data.model = {_show(cfg.data.model)} has {N} inputs; "
                f"set data.N = {N}"
            )
        if P + cfg.run.test_size > n:
            raise ConfigError(
                f"finite.P = {P}: with run.test_size = {cfg.run.test_size}, more than the {n} "
                f"samples of {cfg.data.model}; expected finite.P + run.test_size <= {n}"
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
    ]
    if cfg.data.model != "iid":
        # the manifold ODE (THEORY 5.2) needs mu0 = 0 and has no weight decay or noise
        checks += [
            (
                "data.f",
                cfg.data.f,
                cfg.data.f != "relu",
                tuple(a for a in ACTIVATIONS if a != "relu"),
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
                f"{key} = {_show(value)}: {mode} (the ODE) needs one of "
                f"{', '.join(_show(a) for a in allowed)}"
            )


def config_from_dict(d: Mapping[str, Any], *, stem: str = DEFAULT_STEM) -> Config:
    """Validate a nested dict ``{section: {key: value}}``; missing keys take defaults.

    An empty ``output.out`` becomes ``results/<stem>.nc``; ``d["grid"]`` (optional) is
    the ``[grid]`` table or a Grid (see ``hmmjax.grid``).
    """
    if not isinstance(d, Mapping):
        raise ConfigError(f"a config is a table of sections; got {_show(d)}")
    for section in d:
        if section not in _ALL_SECTIONS:
            _unknown_section(section)
    grid = _grid_module().parse_grid(d.get("grid", {}))
    sections = {}
    for section, cls in SECTIONS.items():
        values = d.get(section, {})
        if not isinstance(values, Mapping):
            raise ConfigError(
                f"{section} = {_show(values)}: expected a table [{section}] of keys "
                f"{', '.join(SCHEMA[section])}"
            )
        for key in values:
            if key not in SCHEMA[section]:
                _unknown_key(section, key, values[key])
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
    except tomllib.TOMLDecodeError as err:
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
    return section, key, value


def config_reference_markdown() -> str:
    """A markdown table of every key (type, default, what is allowed, description), then
    a paragraph on the ``[grid]`` table."""
    names = {bool: "bool", int: "int", float: "float", str: "str"}
    rows = [
        "| key | type | default | allowed | description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for options in SCHEMA.values():
        for opt in options.values():
            allowed, doc = (_md(text) for text in (opt.allowed(), opt.doc))
            kinds = typing.get_args(opt.type) or (opt.type,)
            kind = " or ".join(names[k] for k in kinds)
            rows.append(f"| `{opt.key}` | {kind} | `{_show(opt.default)}` | {allowed} | {doc} |")
    return "\n".join(rows) + "\n" + _grid_module().grid_reference_markdown()


def _md(text: str) -> str:
    """Escape text for a markdown table cell."""
    return text.replace("|", "\\|").replace("<", "&lt;")


def _closest(word: Any, options: Iterable[Any]) -> Any:
    """The option most like ``word`` (ignoring case), or None if none is close."""
    by_lower = {str(o).lower(): o for o in options}
    close = difflib.get_close_matches(str(word).lower(), list(by_lower), 1)
    return by_lower[close[0]] if close else None


def _unknown_section(section: Any) -> typing.NoReturn:
    close = _closest(section, _ALL_SECTIONS)
    hint = f"did you mean [{close}]? " if close is not None else ""
    raise ConfigError(
        f"unknown section [{section}]; {hint}allowed sections: {', '.join(_ALL_SECTIONS)}"
    )


def _unknown_key(section: str, key: Any, value: Any) -> typing.NoReturn:
    close = _closest(key, SCHEMA[section])
    hint = f"did you mean {section}.{close}? " if close is not None else ""
    raise ConfigError(
        f"unknown key {section}.{key} = {_show(value)}; {hint}"
        f"keys of [{section}]: {', '.join(SCHEMA[section])}"
    )


def _is_type(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(kind, types.UnionType):
        return any(_is_type(value, k) for k in typing.get_args(kind))
    return isinstance(value, kind)


def _takes_float(kind: Any) -> bool:
    """Whether an option of type ``kind`` (float, or a union with float) stores floats."""
    return kind is float or float in typing.get_args(kind)


def _int_hint(opt: Option, value: Any) -> str:
    if opt.type is int and isinstance(value, float) and value.is_integer():
        return f" (write {int(value)}, without a decimal point or exponent)"
    return ""


def _kind(value: Any) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    return kinds.get(type(value), "a table" if isinstance(value, Mapping) else type(value).__name__)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def _show(value: Any, limit: int | None = 80) -> str:
    """A value as it would be written in TOML, on one line (cut to ``limit`` characters)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(f"{_key(k)} = {_show(v, None)}" for k, v in value.items()) + "}"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(_show(v, None) for v in value) + "]"
    else:
        text = repr(value).replace("\n", " ")
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


def _key(key: Any) -> str:
    """A TOML key: bare if it can be, else quoted."""
    text = str(key)
    return text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else json.dumps(text, ensure_ascii=False)
