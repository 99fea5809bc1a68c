"""TOML configs -> validated, typed, frozen settings, with errors that name the key.

The schema is the section dataclasses below: each field's annotation is its type, and
``option(default, doc, choices=..., gt=..., ge=...)`` states its default, what is
allowed and a one-line description. Validation (in each section's ``__post_init__``, so
no settings object can hold a bad value), defaults, ``Config.to_dict``, ``to_toml`` and
the reference table (``config_reference_markdown``: ``hmmjax config`` and
docs/reference/config.md) are all read from that one place.

This module imports only the standard library: a config is checked before JAX is
imported, any array is allocated or anything is compiled.

    cfg = load_config("configs/quickstart.toml", ["sgd.lr=0.5", "run.seed=3"])
    cfg.sgd.lr, cfg.data.N
    cfg.replace(sgd={"lr": 0.1})  # a new, re-validated Config

The optional ``[grid]`` table (parameter sweeps) is read by ``hmmjax.config.grid``; the
whole ``Config`` is put together in ``hmmjax.config.settings``. Data models and trainers
registered by users join the allowed values of ``data.model`` and ``sgd.trainer``
(``register_choice``).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

__all__ = [
    "ACTIVATIONS",
    "DATA_MODELS",
    "REAL_DATA",
    "FEATURES",
    "FEATURE_MODELS",
    "INVARIANT_AXES",
    "MAX_NODES",
    "SEED_LIMIT",
    "SEED_STRIDE",
    "INVARIANT_DATA",
    "INVARIANT_G",
    "NETWORKS",
    "IMAGE_DATA",
    "OPTIMIZERS",
    "TRAINERS",
    "SCHEDULES",
    "NUMBERS",
    "SCALINGS",
    "DEFAULT_STEM",
    "ConfigError",
    "one_line",
    "option",
    "Option",
    "register_choice",
    "DataConfig",
    "TeacherConfig",
    "StudentConfig",
    "SGDConfig",
    "FiniteConfig",
    "InvariantConfig",
    "RunConfig",
    "ODEConfig",
    "OptimiseConfig",
    "OBJECTIVES",
    "SCHEDULE_FORMS",
    "OutputConfig",
    "SECTIONS",
    "SCHEMA",
    "ALL_SECTIONS",
    "ODE_DATA_MODELS",
    "ODE_G",
    "ODE_F",
    "closest",
    "unknown_section",
    "unknown_key",
    "type_name",
    "show",
]


# Kept here (not imported from activations.py) so that this module never imports JAX;
# tests check that the lists agree with the physics modules.
ACTIVATIONS = ("erf", "linear", "relu", "tanh", "sign", "softplus")


DATA_MODELS = ("iid", "hmm", "hmm_x", "get", "digits", "mnist", "stripe", "cylinder")


FEATURES = ("gaussian", "dct", "hadamard")  # feature matrices F (hmmjax.data.features)
FEATURE_MODELS = ("hmm", "hmm_x", "get")  # the data models with a feature matrix


REAL_DATA = ("digits", "mnist")  # finite data sets shipped or on disk (hmmjax.data.real)


INVARIANT_DATA = ("stripe", "cylinder")  # invariant manifolds (hmmjax.data.invariant)


SEED_LIMIT = 2**64  # run.seed: the two 32-bit words of a threefry key (hmmjax.core.rng)


SEED_STRIDE = 10**6  # invariant runs: member m of run.seed s draws with seed s SEED_STRIDE + m


INVARIANT_AXES = ("alpha", "K", "P", "seed")  # what a grid of an invariant run may sweep


INVARIANT_G = ("relu", "tanh", "erf", "softplus")
NETWORKS = ("mlp", "cnn")  # invariant.network: the alpha-trick network
IMAGE_DATA = ("digits", "mnist")  # the data of invariant.network = "cnn"


OPTIMIZERS = ("sgd", "momentum", "adam")


SCHEDULES = ("constant", "power", "piecewise", "file")  # sgd.schedule (hmmjax.core.schedules)
NUMBERS = tuple[float, ...]  # the type of a key whose value is a list of numbers
TRAINERS = ("sgd",)  # online trainers; more are registered by hmmjax.train.register_trainer


SCALINGS = ("none", "normalise", "meanfield")


OBJECTIVES = ("final", "average")  # optimise.objective (hmmjax.ode.optimal)
SCHEDULE_FORMS = ("piecewise", "power")  # optimise.form (hmmjax.ode.optimal)


DEFAULT_STEM = "hmmjax"  # output.out is results/<stem>.nc; load_config uses the file's stem


class ConfigError(ValueError):
    """A config is invalid. The message is one line naming the key, the value and what
    is allowed (line breaks and other control characters in it, say from a key name,
    are shown escaped)."""

    def __init__(self, message: str):
        super().__init__(one_line(message))


def one_line(text: str) -> str:
    """``text`` with its control characters escaped (``\\n``, ``\\x7f``): one line."""
    return "".join(
        c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii")
        for c in str(text)
    )


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
            return "one of " + ", ".join(show(c) for c in self.choices)
        words = {bool: "true or false", int: "an integer", float: "a finite number",
                 NUMBERS: "a list of finite numbers"}  # fmt: skip
        text = words.get(self.type, "a string")
        if self.gt is not None:
            text += f" > {_num(self.gt)}"
        if self.ge is not None:
            text += f" >= {_num(self.ge)}"
        return text

    def check(self, value: Any) -> Any:
        """Return ``value`` coerced to this option's type, or raise ``ConfigError``."""
        given = f"{self.key} = {show(value)}"
        expected = f"expected {self.allowed()}"
        if not _is_type(value, self.type):
            raise ConfigError(f"{given} ({type_name(value)}): {expected}{_int_hint(self, value)}")
        if self.type == NUMBERS:  # a list: its numbers as floats, each finite
            value = tuple(float(x) for x in value)
            if not all(math.isfinite(x) for x in value):
                raise ConfigError(f"{given}: {expected}")
            if self.validate is not None and not self.validate(value):
                raise ConfigError(f"{given}: {expected}")
            return value
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**64:
            size = "" if self.validate is not None else " (and below 2^64 in size)"
            raise ConfigError(f"{given}: {expected}{size}")
        if _takes_float(self.type) and not isinstance(value, str):
            value = float(value)
            if not math.isfinite(value):
                raise ConfigError(f"{given}: {expected}")
        if self.choices is not None and value not in self.choices:
            close = closest(value, self.choices)
            hint = f" (did you mean {show(close)}?)" if close is not None else ""
            raise ConfigError(f"{given}: {expected}{hint}")
        if (self.gt is not None and not value > self.gt) or (
            self.ge is not None and not value >= self.ge
        ):
            raise ConfigError(f"{given}: {expected}")
        if self.validate is not None and not self.validate(value):
            raise ConfigError(f"{given}: {expected}")
        return value


def register_choice(section: str, name: str, value: str) -> None:
    """Allow one more value for the choice key ``section.name`` (``data.model``,
    ``sgd.trainer``): how registered data models and trainers become valid in configs."""
    opt = SCHEMA[section][name]
    if opt.choices is None:
        raise ValueError(f"{opt.key} is not a choice of names")
    if value not in opt.choices:
        SCHEMA[section][name] = dataclasses.replace(opt, choices=(*opt.choices, value))


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
    D: int = option(10, "latent (manifold) dimension; iid, digits and mnist have none", gt=0)
    f: str = option(
        "sign", "non-linearity of the manifold, x = f(F^T c / sqrt D)", choices=ACTIVATIONS
    )
    features: str = option(
        "gaussian",
        "feature matrix F (D x N): gaussian (i.i.d. N(0, 1), stored); dct, hadamard (D random "
        "rows of the orthonormal DCT-II / Walsh-Hadamard matrix times random column signs "
        "and sqrt(N): never stored, applied by fast transforms; hadamard needs N a power "
        "of 2; both need D <= N, F F^T / N = I)",
        choices=FEATURES,
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
    trainer: str = option(
        "sgd",
        "the online trainer (sgd: docs/theory.md 1; others registered with "
        "hmmjax.train.register_trainer)",
        choices=TRAINERS,
    )
    schedule: str = option(
        "constant",
        "learning-rate schedule eta(t) = lr s(t), t = steps / N, in the simulation and the "
        "ODE: constant (s = 1), power (s = (1 + t / sgd.tau)^(-sgd.power)), piecewise (s "
        "linear between sgd.schedule_values at sgd.schedule_times, constant after the last) or "
        "file (the same from the table t, s(t) of sgd.schedule_file)",
        choices=SCHEDULES,
    )
    tau: float = option(
        1.0,
        "schedule = power: the time scale tau",
        validate=lambda x: 1e-30 <= x <= 1e30,
        allowed="a number in [1e-30, 1e30]",
    )
    power: float = option(
        1.0,
        "schedule = power: the exponent (1: eta ~ 1/t late)",
        validate=lambda x: 0 <= x <= 100,
        allowed="a number in [0, 100]",
    )
    schedule_times: tuple[float, ...] = option(
        (),
        "schedule = piecewise: the times of the table (from 0, increasing), e.g. [0, 10, 50]",
    )
    schedule_values: tuple[float, ...] = option(
        (),
        "schedule = piecewise: the factors s(t) at schedule_times (>= 0), e.g. [1, 0.5, 0.1]",
    )
    schedule_file: str = option(
        "",
        "schedule = file: a text file of two numbers a line, t and s(t) (times from 0, "
        "increasing; # comments)",
    )


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
        "update of docs/theory.md 1)",
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
    """[invariant]: the alpha-trick network on stripe / cylinder data, or a convolutional one on
    images (network = "cnn", docs/theory.md 7). data.N is d, student.K is h (the channels
    of the cnn), finite.P is p, sgd.lr scales the step, run.ensemble counts seeds,
    run.n_times the records, run.test_size the test set."""

    section: ClassVar[str] = "invariant"
    network: str = option(
        "mlp",
        "mlp: the two-layer net on stripe / cylinder data; cnn: a convolutional net on "
        "images, data.model = digits | mnist (docs/theory.md 7.1)",
        choices=NETWORKS,
    )
    depth: int = option(3, "cnn: convolutional layers", gt=0)
    kernel_size: int = option(3, "cnn: side of the square convolution kernels", gt=0)
    alpha: float = option(
        1.0, "output scale alpha of F = alpha (f(w) - f(w0)): large lazy, small feature", gt=0
    )
    threshold: float = option(
        1.3862943611198906,
        "cylinder: y = +1 if x_1^2 + x_2^2 > threshold; default 2 ln 2, the median of chi2_2 "
        "(balanced; the theory's 4/3 gives P(y = +1) = 0.513)",
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
    ntk_max_p: int = option(
        4096,
        "the NTK analyses only at P <= this (NaN above): the kernel is P x P, and its "
        "eigenvectors are found on the host in float64",
        gt=0,
    )
    kernel_ridge: float = option(1e-4, "kernel regression ridge, relative to tr(K) / p", ge=0)
    by_p: bool = option(
        True,
        "a [grid] over P runs one part per P, one after the other, each lane padded to its "
        "own P (the work of a lane grows with its P, not the grid's largest); false: every "
        "lane in one computation",
    )


@dataclass(frozen=True)
class RunConfig(_Section):
    """[run]: length, recording, ensemble and numerics of a run."""

    section: ClassVar[str] = "run"
    t_max: float = option(100.0, "training time in units of N steps", gt=0)
    n_times: int = option(200, "number of recording times", gt=0)
    spacing: str = option("log", "spacing of the recording times", choices=("log", "linear"))
    ensemble: int = option(8, "number of students trained side by side (members)", gt=0)
    seed: int = option(
        0,
        "seed of every random draw; distinct seeds give distinct draws",
        validate=lambda x: 0 <= x < SEED_LIMIT,
        allowed="an integer 0 <= seed < 2^64",
    )
    test_size: int = option(5000, "test samples for the Monte-Carlo generalisation error", gt=0)
    block: int = option(64, "SGD steps drawn and run per inner loop iteration", gt=0)
    precision: str = option("float32", "floating point precision", choices=("float32", "float64"))
    chunk: int = option(20, "recording intervals per compiled call (one progress tick each)", gt=0)
    mode: str = option(
        "sim",
        "sim: online SGD; ode: the ODE of docs/theory.md 5; both: both from the same initial state",
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


MAX_NODES = 321
"""The most spectral nodes (ode.nodes, ``hmmjax ode --nodes``) a run may fix: the largest
node set that nodes = "auto" runs (``hmmjax.ode.NODE_LADDER``'s last rung, 257, and its
probe, ``probe_size(257)`` = 321; a test checks that they agree). More nodes add cost (p x p
Lagrange and Chebyshev matrices, p products with F for a sample) but no accuracy that
matters: the node error falls spectrally with p, at a rate set by the smoothness of the
solution in rho, not by D, and was at float64 rounding from p = 64 on in the measured
cases (docs/theory.md 5.3); nodes = "full" is exact. (A cap p <= D would refuse grids over
D, which share one p.)"""


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
        "HMM ODE spectral points (docs/theory.md 5.3): auto (the first of 33, 65, 129, 257 "
        "nodes whose probed error is within node_rtol), full "
        f"(every eigenvalue) or a number p of nodes (at most the {MAX_NODES} auto may run: "
        "more add cost, not accuracy)",
        validate=_word_or(("auto", "full"), lambda p: 2 <= p <= MAX_NODES),
        allowed=f'"auto", "full" or an integer 2 <= p <= {MAX_NODES}',
    )
    node_rtol: float = option(
        1e-8, "nodes = auto: estimated relative node error of eg to reach", gt=0
    )
    source: str = option(
        "sample",
        "HMM initial state: sample (the simulation's F, teacher and member-0 weights) or "
        "limit (N -> infinity at delta = D / N on the Marchenko-Pastur law, no F sampled)",
        choices=("sample", "limit"),
    )


@dataclass(frozen=True)
class OptimiseConfig(_Section):
    """[optimise]: ``hmmjax optimise``: the learning-rate schedule that minimises an
    objective of the ODE's eg, by gradient descent through the ODE (docs/theory.md 8)."""

    section: ClassVar[str] = "optimise"
    objective: str = option(
        "final",
        "final: eg at the last recording time (run.t_max); average: the mean of eg over the "
        "recording times",
        choices=OBJECTIVES,
    )
    form: str = option(
        "piecewise",
        "piecewise: eta linear between its values at pieces + 1 equally spaced times of "
        "[0, run.t_max], each optimised (eta = lr exp(theta) > 0); power: eta = lr (1 + t / "
        "tau)^(-a) with lr, tau and a optimised (a kept in [0, 100])",
        choices=SCHEDULE_FORMS,
    )
    pieces: int = option(8, "form = piecewise: the number of linear pieces", gt=0)
    roughness: float = option(
        0.0,
        "form = piecewise: weight of the penalty mean_j (log eta_{j+1} - log eta_j)^2 added "
        "to the objective",
        ge=0,
    )
    steps: int = option(200, "Adam steps (optax) of the optimisation", gt=0)
    rate: float = option(
        0.05, "Adam's learning rate on the parameters (log-rates; power: log lr, log tau, a)", gt=0
    )
    lr_min: float = option(
        0.01,
        "smallest constant rate tried (the best constant rate is the optimisation's start "
        "and the comparison)",
        gt=0,
    )
    lr_max: float = option(10.0, "largest constant rate tried", gt=0)
    n_lr: int = option(
        32, "constant rates tried, log-spaced in [lr_min, lr_max], in one compiled call", gt=1
    )
    simulate: bool = option(
        True,
        "check in simulation: run.ensemble students trained with the optimised schedule and "
        "with the best constant rate, from the same initial weights and data streams",
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
        OptimiseConfig,
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


ALL_SECTIONS = (*SECTIONS, "grid")  # [grid] is a table of sweeps, not a _Section


# What the ODEs of docs/theory.md section 5 cover; anything else is refused before any work.
ODE_DATA_MODELS = ("iid", "hmm", "get")


ODE_G = ("erf", "linear")
# the manifold ODE (docs/theory.md 5.2) needs mu0 = E f(u) = 0: the odd non-linearities
ODE_F = ("erf", "linear", "tanh", "sign")


def closest(word: Any, options: Iterable[Any]) -> Any:
    """The option most like ``word`` (ignoring case), or None if none is close."""
    by_lower = {str(o).lower(): o for o in options}
    close = difflib.get_close_matches(str(word).lower(), list(by_lower), 1)
    return by_lower[close[0]] if close else None


def unknown_section(section: Any) -> typing.NoReturn:
    close = closest(section, ALL_SECTIONS)
    hint = f"did you mean [{close}]? " if close is not None else ""
    raise ConfigError(
        f"unknown section [{section}]; {hint}allowed sections: {', '.join(ALL_SECTIONS)}"
    )


def unknown_key(section: str, key: Any, value: Any) -> typing.NoReturn:
    close = closest(key, SCHEMA[section])
    hint = f"did you mean {section}.{close}? " if close is not None else ""
    raise ConfigError(
        f"unknown key {section}.{key} = {show(value)}; {hint}"
        f"keys of [{section}]: {', '.join(SCHEMA[section])}"
    )


def _is_type(value: Any, kind: type) -> bool:
    if kind == NUMBERS:
        return isinstance(value, list | tuple) and all(
            isinstance(x, int | float) and not isinstance(x, bool) and abs(x) < 2**64 for x in value
        )
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


def type_name(value: Any) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    return kinds.get(type(value), "a table" if isinstance(value, Mapping) else type(value).__name__)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def show(value: Any, limit: int | None = 80) -> str:
    """A value as it would be written in TOML, on one line (cut to ``limit`` characters)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value.bit_length() > 1000:  # str() refuses > 4300 digits
        return f"{'-' if value < 0 else ''}<an integer of {len(hex(abs(value))) - 2} hex digits>"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):  # TOML also wants DEL escaped, which JSON leaves
        text = json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(f"{_key(k)} = {show(v, None)}" for k, v in value.items()) + "}"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(show(v, None) for v in value) + "]"
    else:
        text = repr(value).replace("\n", " ")
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


def _key(key: Any) -> str:
    """A TOML key: bare if it can be, else quoted."""
    text = str(key)
    return text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else json.dumps(text, ensure_ascii=False)
