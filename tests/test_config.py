"""Config: defaults, round trips, overrides and one-line errors, all without JAX."""

import dataclasses
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pytest

from hmmjax.config.schema import (
    DATA_MODELS,
    MAX_NODES,
    SCHEMA,
    TRAINERS,
    ConfigError,
    DataConfig,
)
from hmmjax.config.settings import (
    Config,
    config_from_dict,
    config_reference_markdown,
    load_config,
    parse_override,
)

REPO = Path(__file__).resolve().parents[1]

# The defaults as the spec states them, written out independently of the schema.
DEFAULTS = {
    "data": dict(
        model="hmm", N=784, D=10, f="sign", features="gaussian", noise=0.0, shared=True, path=""
    ),
    "teacher": dict(M=2, g="", scaling="none"),
    "student": dict(
        K=2, g="erf", init="large", second_layer="ones", scaling="none", train_second=False
    ),
    "sgd": dict(
        lr=0.2,
        kappa=0.0,
        batch=1,
        trainer="sgd",
        schedule="constant",
        tau=1.0,
        power=1.0,
        schedule_times=(),
        schedule_values=(),
        schedule_file="",
    ),
    "finite": dict(P=0, optimizer="sgd", momentum=0.9, labels="sign", shuffle=True),
    "invariant": dict(
        network="mlp",
        depth=3,
        kernel_size=3,
        alpha=1.0,
        threshold=1.3862943611198906,
        adaptive=True,
        max_dF=0.5,
        max_dw=0.1,
        max_steps=100_000,
        ntk=False,
        ntk_top=20,
        ntk_max_p=4096,
        kernel_ridge=1e-4,
        by_p=True,
    ),
    "run": dict(
        t_max=100.0,
        n_times=200,
        spacing="log",
        ensemble=8,
        seed=0,
        test_size=5000,
        block=64,
        precision="float32",
        chunk=20,
        mode="sim",
        same_init=False,
        diverge_eg=1000.0,
        memory_gib="auto",
        checkpoint=True,
        devices="all",
    ),
    "ode": dict(
        solver="euler",
        dt=0.01,
        rtol=1e-8,
        atol=1e-10,
        teacher_term="auto",
        nodes="auto",
        node_rtol=1e-8,
        source="sample",
    ),
    "optimise": dict(
        objective="final",
        form="piecewise",
        pieces=8,
        roughness=0.0,
        steps=200,
        rate=0.05,
        lr_min=0.01,
        lr_max=10.0,
        n_lr=32,
        simulate=True,
    ),
    "output": dict(out="results/hmmjax.nc", figure=""),
    "grid": {},
}


def test_defaults():
    cfg = config_from_dict({})
    assert cfg.to_dict() == DEFAULTS
    assert Config() == cfg
    for section, values in DEFAULTS.items():
        for key, value in values.items():
            got = getattr(getattr(cfg, section), key)
            assert got == value and type(got) is type(value), f"{section}.{key}"


def test_schema_types_match_defaults():
    for options in SCHEMA.values():
        for opt in options.values():
            kinds = typing.get_args(opt.type) or (opt.type,)
            if typing.get_origin(opt.type) is tuple:  # a list of numbers: a tuple of floats
                kinds = (tuple,)
                assert all(type(x) is float for x in opt.default), opt.key
            assert type(opt.default) in kinds, opt.key
            assert opt.doc and "\n" not in opt.doc, opt.key


def test_round_trips(tmp_path):
    cfg = config_from_dict({"sgd": {"lr": 0.5}, "data": {"model": "iid", "shared": False}})
    assert config_from_dict(cfg.to_dict()) == cfg
    path = tmp_path / "again.toml"
    path.write_text(cfg.to_toml())
    assert load_config(path) == cfg


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_to_dict_is_asdict_and_points_are_built_once(path):
    """``to_dict`` copies each section shallowly: equal to ``dataclasses.asdict`` as long
    as a section holds no mutable or nested values (a config is hashable); a grid's point
    configs are kept, so loading, checking and running a config build them once."""
    cfg = load_config(path)
    hash(cfg)
    d = cfg.to_dict()
    for name in d.keys() - {"grid"}:
        assert d[name] == dataclasses.asdict(getattr(cfg, name)), name
    d["sgd"]["lr"] = -1.0  # the caller's dict: the config is untouched
    assert cfg.sgd.lr != -1.0
    if cfg.grid.kind != "none":
        first, again = cfg.grid.configs(cfg), cfg.grid.configs(cfg)
        assert first == again and all(a is b for a, b in zip(first, again, strict=True))
        first.clear()  # a copy of the kept list
        assert len(cfg.grid.configs(cfg)) == len(again)


def test_frozen():
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.sgd.lr = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.sgd = None


def test_int_accepted_for_float():
    cfg = config_from_dict({"sgd": {"lr": 1}, "run": {"t_max": 10}})
    assert cfg.sgd.lr == 1.0 and type(cfg.sgd.lr) is float
    assert type(cfg.run.t_max) is float


def test_output_default_from_file_stem(tmp_path):
    path = tmp_path / "my_run.toml"
    path.write_text("[sgd]\nlr = 0.1\n")
    cfg = load_config(path)
    assert cfg.output.out == "results/my_run.nc"
    assert cfg.output.figure_path() == Path("results/my_run.png")
    path.write_text('[output]\nout = "a/b.nc"\nfigure = "c.pdf"\n')
    cfg = load_config(path)
    assert cfg.output.out_path() == Path("a/b.nc")
    assert cfg.output.figure_path() == Path("c.pdf")


def test_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[sgd]\nlr = 0.1\n[student]\ng = 'erf'\n")
    cfg = load_config(
        path,
        [
            "sgd.lr=0.5",
            "student.g=relu",  # bare string
            'teacher.g=""',
            "data.shared=false",
            "run.t_max=10",
            "run.seed = 3",
            "output.figure=fig.svg",
        ],
    )
    assert cfg.sgd.lr == 0.5
    assert cfg.student.g == "relu"
    assert cfg.teacher.g == ""
    assert cfg.data.shared is False
    assert cfg.run.t_max == 10.0 and type(cfg.run.t_max) is float
    assert cfg.run.seed == 3
    assert cfg.output.figure == "fig.svg"
    assert cfg.with_overrides(["sgd.lr=0.25"]).sgd.lr == 0.25


def test_parse_override():
    assert parse_override("sgd.lr=0.5") == ("sgd", "lr", 0.5)
    assert parse_override("data.model=hmm_x") == ("data", "model", "hmm_x")
    assert parse_override("run.spacing='linear'") == ("run", "spacing", "linear")
    assert parse_override("data.shared=true") == ("data", "shared", True)
    for bad in ["sgd.lr", "lr=0.5", "sgd.=1", ".lr=1", "a.b.c=1"]:
        with pytest.raises(ConfigError, match="section.key=value"):
            parse_override(bad)


def test_replace():
    cfg = Config()
    new = cfg.replace(sgd={"lr": 0.1}, run={"seed": 2})
    assert (new.sgd.lr, new.run.seed, cfg.sgd.lr) == (0.1, 2, 0.2)
    with pytest.raises(ConfigError, match="sgd.lr = -1"):
        cfg.replace(sgd={"lr": -1})
    with pytest.raises(ConfigError, match="unknown section"):
        cfg.replace(sgdd={"lr": 1.0})


def test_sections_validate_themselves():
    with pytest.raises(ConfigError, match="data.N = -3"):
        DataConfig(N=-3)


# (config, key as named, value as shown, words of what is allowed)
ERRORS = [
    ({"data": {"N": 0}}, "data.N", "= 0", "an integer > 0"),
    ({"data": {"N": -5}}, "data.N", "= -5", "an integer > 0"),
    ({"data": {"N": 7.5}}, "data.N", "= 7.5", "an integer > 0"),
    ({"data": {"N": 784.0}}, "data.N", "= 784.0", "write 784"),
    ({"data": {"N": True}}, "data.N", "= true", "an integer > 0"),
    ({"data": {"N": "784"}}, "data.N", '= "784"', "an integer > 0"),
    ({"data": {"noise": -0.1}}, "data.noise", "= -0.1", "a finite number >= 0"),
    ({"data": {"shared": 1}}, "data.shared", "= 1", "true or false"),
    ({"data": {"model": "hmmx"}}, "data.model", '= "hmmx"', '"iid", "hmm", "hmm_x", "get"'),
    ({"data": {"f": "Sign"}}, "data.f", '= "Sign"', '"erf", "linear", "relu", "tanh", "sign"'),
    ({"teacher": {"g": "gelu"}}, "teacher.g", '= "gelu"', '"", "erf"'),
    ({"teacher": {"M": 0}}, "teacher.M", "= 0", "an integer > 0"),
    ({"student": {"init": "tiny"}}, "student.init", '= "tiny"', '"large", "small"'),
    ({"student": {"scaling": "normalize"}}, "student.scaling", "normalize", '"normalise"'),
    ({"student": {"train_second": "yes"}}, "student.train_second", '"yes"', "true or false"),
    ({"sgd": {"lr": 0.0}}, "sgd.lr", "= 0.0", "a finite number > 0"),
    ({"sgd": {"lr": float("nan")}}, "sgd.lr", "= nan", "a finite number > 0"),
    ({"sgd": {"kappa": float("inf")}}, "sgd.kappa", "= inf", "a finite number >= 0"),
    ({"sgd": {"lr": True}}, "sgd.lr", "= true", "a finite number > 0"),
    ({"run": {"spacing": "lin"}}, "run.spacing", '= "lin"', '"log", "linear"'),
    ({"run": {"precision": 64}}, "run.precision", "= 64", '"float32", "float64"'),
    ({"run": {"seed": -1}}, "run.seed", "= -1", "an integer 0 <= seed < 2^64"),
    ({"run": {"t_max": [1, 2]}}, "run.t_max", "= [1, 2]", "a finite number > 0"),
    ({"output": {"out": 3}}, "output.out", "= 3", "a string"),
    ({"data": {"NN": 3}}, "data.NN", "= 3", "model, N, D, f, features, noise, shared"),
    ({"data": 3}, "data", "= 3", "model, N, D, f, features, noise, shared"),
    ({"dat": {}}, "[dat]", "[dat]", "sgd, finite, invariant, run, ode, optimise, output"),
]


@pytest.mark.parametrize(("d", "key", "value", "allowed"), ERRORS)
def test_errors_name_key_value_and_allowed(d, key, value, allowed):
    with pytest.raises(ConfigError) as info:
        config_from_dict(d)
    message = str(info.value)
    assert "\n" not in message
    assert key in message and value in message and allowed in message, message


def test_suggestions():
    with pytest.raises(ConfigError, match=r"did you mean data\.N\?"):
        config_from_dict({"data": {"n": 3}})
    with pytest.raises(ConfigError, match=r"did you mean \[student\]\?"):
        config_from_dict({"students": {}})
    with pytest.raises(ConfigError, match='did you mean "normalise"'):
        config_from_dict({"teacher": {"scaling": "normalize"}})


def test_override_errors_use_the_same_messages(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("")
    with pytest.raises(ConfigError, match=r"sgd\.lr = -0\.5: expected a finite number > 0"):
        load_config(path, ["sgd.lr=-0.5"])
    with pytest.raises(ConfigError, match=r"unknown key sgd\.eta"):
        load_config(path, ["sgd.eta=0.5"])


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[sgd]\nlr = = 0.1\n")
    with pytest.raises(ConfigError, match=r"bad\.toml is not valid TOML.*line 2") as info:
        load_config(bad)
    assert "\n" not in str(info.value)


def test_reference_table_lists_every_key():
    table = config_reference_markdown()
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) == sum(len(options) for options in SCHEMA.values())
    for options in SCHEMA.values():
        for opt in options.values():
            assert f"| `{opt.key}` |" in table
    assert all(row.count(" | ") == 4 for row in rows)


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    cfg = load_config(path)
    assert cfg.output.out


def test_config_and_cli_do_not_import_jax():
    code = (
        "import sys, hmmjax.config, hmmjax.cli; "
        "hmmjax.config.config_from_dict({'sgd': {'lr': 0.5}}); "
        "assert 'jax' not in sys.modules, 'jax was imported'"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), *sys.path])}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=env)


def test_allowed_names_agree_with_physics_modules():
    """config.py keeps its own lists (so as not to import JAX): they must match."""
    from hmmjax.core import activations
    from hmmjax.data import data_model_entry, invariant
    from hmmjax.data import gaussian as data
    from hmmjax.data import real as datasets
    from hmmjax.models import two_layer as networks

    assert set(SCHEMA["student"]["g"].choices) == set(activations.NAMES)
    assert set(SCHEMA["data"]["f"].choices) == set(activations.NAMES)
    assert set(SCHEMA["teacher"]["g"].choices) == {"", *activations.NAMES}
    assert set(DATA_MODELS) == {*data.KINDS, *datasets.DATASETS, *invariant.D_PAR}
    # and the data models registered by users (tests/test_extending.py registers one)
    for name in set(SCHEMA["data"]["model"].choices) - set(DATA_MODELS):
        assert data_model_entry(name).create is not None
    assert set(TRAINERS) <= set(SCHEMA["sgd"]["trainer"].choices)
    assert set(SCHEMA["student"]["scaling"].choices) == set(networks.SCALINGS)
    assert set(SCHEMA["teacher"]["scaling"].choices) == set(networks.SCALINGS)
    assert set(SCHEMA["student"]["init"].choices) == set(networks.INITS)
    assert set(SCHEMA["student"]["second_layer"].choices) == set(networks.SECOND_LAYERS)


@pytest.mark.parametrize(
    ("changes", "key", "value"),
    [
        ({"data": {"model": "hmm_x"}}, "data.model", '"hmm_x"'),
        ({"data": {"f": "relu"}}, "data.f", '"relu"'),
        ({"student": {"g": "tanh"}}, "student.g", '"tanh"'),
        ({"teacher": {"g": "linear"}}, "teacher.g", '"linear"'),
        ({"sgd": {"batch": 4}}, "sgd.batch", "4"),
        ({"sgd": {"kappa": 0.1}}, "sgd.kappa", "0.1"),
        ({"data": {"noise": 0.5}}, "data.noise", "0.5"),
        ({"data": {"shared": False}}, "data.shared", "false"),
    ],
)
@pytest.mark.parametrize("mode", ["ode", "both"])
def test_ode_modes_refuse_what_the_ode_does_not_cover(mode, changes, key, value):
    d = {"run": {"mode": mode}, **changes}
    with pytest.raises(ConfigError) as info:
        config_from_dict(d)
    message = str(info.value)
    assert message.startswith(f'{key} = {value}: run.mode = "{mode}" (the ODE) needs'), message
    # the same settings are fine for the simulation alone
    config_from_dict({**d, "run": {"mode": "sim"}})


def test_ode_mode_allows_iid_weight_decay_and_noise():
    cfg = config_from_dict(
        {"run": {"mode": "both"}, "data": {"model": "iid", "noise": 0.1}, "sgd": {"kappa": 0.1}}
    )
    assert cfg.run.mode == "both"


@pytest.mark.parametrize(
    "value, message",
    [
        (1, 'ode.nodes = 1: expected "auto", "full" or an integer 2 <= p <= 321'),
        ("many", 'ode.nodes = "many": expected "auto", "full" or an integer 2 <= p <= 321'),
        (2.5, "ode.nodes = 2.5 (a number): expected"),
    ],
)
def test_ode_nodes_option(value, message):
    assert config_from_dict({"ode": {"nodes": 32}}).ode.nodes == 32
    assert config_from_dict({"ode": {"nodes": "full"}}).ode.nodes == "full"
    with pytest.raises(ConfigError) as err:
        config_from_dict({"ode": {"nodes": value}})
    assert str(err.value).startswith(message), str(err.value)


def test_limit_source_needs_manifold_data():
    d = {"data": {"model": "iid"}, "run": {"mode": "ode"}, "ode": {"source": "limit"}}
    with pytest.raises(ConfigError, match='data.model = "iid": run.mode = "ode"'):
        config_from_dict(d)


# a valid invariant-manifold run (stripe data, the alpha trick)
INVARIANT = {"data": {"model": "stripe", "N": 5}, "student": {"K": 8, "g": "relu"},
             "finite": {"P": 16}}  # fmt: skip


@pytest.mark.parametrize(
    ("base", "key", "value", "runs"),
    [
        (INVARIANT, "finite.labels", "random", 'invariant-manifold runs (data.model = "stripe")'),
        (INVARIANT, "data.noise", 0.5, "invariant-manifold runs"),
        (INVARIANT, "sgd.kappa", 0.1, "invariant-manifold runs"),
        (INVARIANT, "run.t_max", 5.0, "invariant-manifold runs"),
        (INVARIANT, "teacher.M", 5, "invariant-manifold runs"),
        ({}, "finite.labels", "random", "online runs (finite.P = 0)"),
        ({}, "invariant.alpha", 5.0, "online runs (finite.P = 0)"),
        ({"finite": {"P": 32}}, "invariant.max_steps", 10, "finite-set runs (finite.P = 32)"),
    ],
)
def test_keys_a_kind_of_run_does_not_use_keep_their_defaults(base, key, value, runs):
    """A key that a kind of run would ignore (its results were bit-identical with and
    without it) is refused in one line, on its own and at a grid point."""
    section, name = key.split(".")
    d = {s: dict(v) for s, v in base.items()}
    d.setdefault(section, {})[name] = value
    with pytest.raises(ConfigError, match=rf"^{key} = .*: {re.escape(runs)}.* do not use it; "
                                          "leave it at its default"):  # fmt: skip
        config_from_dict(d)
    config_from_dict(base)  # the base itself is fine
    with pytest.raises(ConfigError, match=rf"{key} = "):
        config_from_dict({**d, "grid": {"seed": [0, 1]}})


DIGITS = {"data": {"model": "digits", "N": 64}, "finite": {"P": 32}}


@pytest.mark.parametrize(
    ("base", "key", "value", "why"),
    [
        (DIGITS, "data.noise", 0.3, 'data.model = "digits": a data set'),
        (DIGITS, "data.D", 20, 'data.model = "digits": a data set'),
        (DIGITS, "data.f", "erf", 'data.model = "digits": a data set'),
        (DIGITS, "teacher.M", 3, 'data.model = "digits": a data set'),
        (DIGITS, "teacher.g", "relu", 'data.model = "digits": a data set'),
        (DIGITS, "data.path", "x.idx", 'only data.model = "mnist" reads it'),
        ({"data": {"model": "iid"}}, "data.D", 20, 'data.model = "iid": Gaussian inputs'),
        ({"data": {"model": "iid"}}, "data.f", "erf", 'data.model = "iid": Gaussian inputs'),
        ({}, "data.path", "x.idx", 'only data.model = "mnist" reads it'),
    ],
)
def test_keys_a_data_model_does_not_read_keep_their_defaults(base, key, value, why):
    """A key that the run's data model never reads is refused in one line naming it; in a
    grid only if no point reads it (a grid over data.model keeps the keys of its models)."""
    section, name = key.split(".")
    d = {s: dict(v) for s, v in base.items()}
    d.setdefault(section, {})[name] = value
    with pytest.raises(
        ConfigError,
        match=rf"^{re.escape(key)} = .*: the run does not read it "
        rf"\({re.escape(why)}.*\); leave it at its default",
    ):
        config_from_dict(d)
    config_from_dict(base)
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)} = .*: no point of the grid reads"):
        config_from_dict({**d, "grid": {"seed": [0, 1]}})


def test_a_grid_over_models_keeps_the_keys_one_of_its_models_reads():
    grid = {"model": ["hmm", "digits"]}
    # D, f, noise and the teacher are read by the hmm points: accepted
    config_from_dict({"data": {"N": 64, "D": 20, "f": "erf", "noise": 0.1},
                      "teacher": {"M": 3}, "finite": {"P": 32}, "grid": grid})  # fmt: skip
    d = {"data": {"N": 64, "D": 20}, "finite": {"P": 32}, "grid": {"model": ["iid", "digits"]}}
    with pytest.raises(
        ConfigError,
        match=r"^data.D = 20: no point of the grid reads it "
        r'\(data.model = \["iid", "digits"\]\)',
    ):
        config_from_dict(d)
    axis = {**d, "data": {"N": 64}, "grid": {"model": ["iid", "digits"], "D": [5, 10]}}
    with pytest.raises(ConfigError, match=r"^grid.D = \[5, 10\]: no point .*; remove the axis$"):
        config_from_dict(axis)


def test_the_keys_refused_as_unread_change_nothing(monkeypatch):
    """The evidence behind ``_MODEL_UNREAD``: with the check off, a digits run and an iid
    run give bit-identical results with those keys changed."""
    import hmmjax.config.settings as settings
    from hmmjax.experiments.driver import simulate

    monkeypatch.setattr(settings, "_check_unread", lambda cfg, points: None)
    run = {"t_max": 1.0, "n_times": 2, "ensemble": 2, "test_size": 50, "chunk": 1}
    for base, changed in [
        ({**DIGITS, "run": run}, {"data": {"noise": 0.3, "D": 20, "f": "erf", "path": "x"},
                                  "teacher": {"M": 3, "g": "relu", "scaling": "normalise"}}),
        ({"data": {"model": "iid", "N": 30}, "run": {**run, "mode": "both"}},
         {"data": {"D": 20, "f": "erf"}}),
    ]:  # fmt: skip
        other = {s: {**base.get(s, {}), **changed.get(s, {})} for s in {*base, *changed}}
        a, b = (simulate(config_from_dict(x), progress=False) for x in (base, other))
        assert set(a.data_vars) == set(b.data_vars)
        for name in a.data_vars:
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_momentum_is_a_key_of_the_momentum_optimizer():
    d = {"finite": {"P": 32, "momentum": 0.5}}
    used = r'finite.momentum = 0.5: used by finite.optimizer = "momentum" only; finite.opt'
    with pytest.raises(ConfigError, match=used):
        config_from_dict(d)
    config_from_dict({"finite": {"P": 32, "momentum": 0.5, "optimizer": "momentum"}})


def test_ode_nodes_at_most_what_auto_runs():
    """A fixed ode.nodes beyond the largest node set of "auto" (its last rung's probe) is
    refused in one line, before any work (10^8 nodes hung in the Chebyshev moments)."""
    assert MAX_NODES == 321  # the largest node set of "auto" (tests/test_compressed.py)
    assert config_from_dict({"ode": {"nodes": MAX_NODES}}).ode.nodes == MAX_NODES
    d = {"data": {"D": 4}, "run": {"mode": "ode"}, "ode": {"nodes": 100_000_000}}
    with pytest.raises(ConfigError) as err:
        config_from_dict(d)
    expected = 'ode.nodes = 100000000: expected "auto", "full" or an integer 2 <= p <= 321'
    assert str(err.value) == expected


@pytest.mark.parametrize("key", ["sgd.lr", "sgd.kappa", "data.noise"])
def test_values_beyond_float32_are_refused_in_float32_runs(key):
    section, name = key.split(".")
    beyond = rf'^{key} = 1e\+300: beyond float32 \(run.precision = "float32"\); expected at most'
    with pytest.raises(ConfigError, match=beyond + r" 3.403e\+38"):
        config_from_dict({section: {name: 1e300}})
    config_from_dict({section: {name: 1e300}, "run": {"precision": "float64"}})
    config_from_dict({section: {name: 1e38}})


def test_a_run_shorter_than_one_sgd_step_is_refused():
    """t_max N rounds to 0 steps: the run would have trained step 1 (t = 1 / N, beyond
    t_max) and recorded 2 times whatever run.n_times."""
    short = r"^run.t_max = 1e-30: at data.N = 784 that is 7.84e-28 SGD steps, less than one"
    with pytest.raises(ConfigError, match=short):
        config_from_dict({"run": {"t_max": 1e-30}})
    config_from_dict({"run": {"t_max": 1 / 784}})
    with pytest.raises(ConfigError, match=r"run.t_max = 0.01: at data.N = 40 "):  # a point
        config_from_dict({"run": {"t_max": 0.01}, "grid": {"N": [40, 784]}})
