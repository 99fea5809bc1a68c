"""Parameter grids in configs: expansion, ranges, points, one-line errors, all without JAX."""

import pytest

from hmmjax.config.grid import AXES, Grid, parse_grid
from hmmjax.config.schema import ConfigError
from hmmjax.config.settings import Config, config_from_dict, config_reference_markdown, load_config


def grid_of(table):
    return config_from_dict({"grid": table}).grid


def test_no_grid():
    grid = Config().grid
    assert grid == Grid() == parse_grid({})
    assert (grid.kind, grid.names, grid.shape, grid.dims, grid.size) == ("none", (), (), (), 1)
    assert grid.points() == [{}] and grid.to_dict() == {}
    assert grid.configs(Config()) == [Config()]


def test_product_is_in_canonical_order_and_c_order():
    grid = grid_of({"seed": [0, 1], "K": [1, 2, 4], "lr": [0.1, 0.5]})
    assert grid.kind == "product"
    assert grid.names == grid.dims == ("lr", "K", "seed")
    assert grid.shape == (2, 3, 2) and grid.size == 12
    points = grid.points()
    assert points[:3] == [
        {"lr": 0.1, "K": 1, "seed": 0},
        {"lr": 0.1, "K": 1, "seed": 1},
        {"lr": 0.1, "K": 2, "seed": 0},
    ]
    assert points[-1] == {"lr": 0.5, "K": 4, "seed": 1}
    assert grid.to_dict() == {"lr": [0.1, 0.5], "K": [1, 2, 4], "seed": [0, 1]}
    assert list(AXES) == [
        "model", "features", "labels", "alpha", "lr", "kappa", "noise", "K", "M", "D", "N", "P",
        "seed",
    ]  # fmt: skip


def test_values_are_coerced_like_their_keys():
    grid = grid_of({"lr": [1, 2], "K": [3]})
    assert [type(v) for v in dict(grid.axes)["lr"]] == [float, float]
    assert dict(grid.axes)["K"] == (3,)


@pytest.mark.parametrize(
    ("spec", "values"),
    [
        ({"start": 0.0, "stop": 1.0, "num": 11}, [i / 10 for i in range(11)]),
        ({"start": 0.1, "stop": 0.1, "num": 1}, [0.1]),
        ({"start": 0.01, "stop": 100, "num": 5, "spacing": "log"}, [0.01, 0.1, 1.0, 10.0, 100.0]),
        ({"start": 1, "stop": 2, "num": 3, "spacing": "linear"}, [1.0, 1.5, 2.0]),
    ],
)
def test_float_ranges(spec, values):
    got = dict(grid_of({"kappa": spec}).axes)["kappa"]
    assert list(got) == values  # exactly: rounded to 12 significant digits


def test_log_range_keeps_both_ends_exact():
    got = dict(grid_of({"lr": {"start": 0.01, "stop": 2.0, "num": 8, "spacing": "log"}}).axes)
    lr = got["lr"]
    assert len(lr) == 8 and lr[0] == 0.01 and lr[-1] == 2.0
    assert all(b / a == pytest.approx((2.0 / 0.01) ** (1 / 7)) for a, b in zip(lr, lr[1:]))


@pytest.mark.parametrize(
    ("spec", "values"),
    [
        ({"start": 1, "stop": 8, "step": 1}, list(range(1, 9))),
        ({"start": 1, "stop": 8, "step": 3}, [1, 4, 7]),
        ({"start": 2, "stop": 8, "step": 3}, [2, 5, 8]),
        ({"start": 1, "stop": 9, "num": 5}, [1, 3, 5, 7, 9]),
        ({"start": 100, "stop": 10000, "num": 3, "spacing": "log"}, [100, 1000, 10000]),
    ],
)
def test_integer_ranges(spec, values):
    got = dict(grid_of({"N": spec, "K": [1]}).axes)["N"]
    assert list(got) == values and all(type(v) is int for v in got)


def test_points():
    points = [{"K": 2, "lr": 0.1}, {"lr": 0.5, "K": 4}, {"lr": 0.1, "K": 4}]
    grid = grid_of({"points": points})
    assert grid.kind == "points"
    assert grid.names == ("lr", "K") and grid.dims == ("point",)
    assert grid.shape == (3,) and grid.size == 3
    assert grid.points() == [{"lr": 0.1, "K": 2}, {"lr": 0.5, "K": 4}, {"lr": 0.1, "K": 4}]
    assert grid.to_dict() == {"points": grid.points()}


def test_configs_are_validated_configs_with_the_points_values():
    base = config_from_dict({"data": {"N": 100}, "run": {"seed": 7}})
    grid = parse_grid({"lr": [0.1, 0.5], "K": [1, 2, 4], "noise": [0.0, 0.25]})
    configs = grid.configs(base)
    assert len(configs) == grid.size == 12
    for point, cfg in zip(grid.points(), configs):
        assert (cfg.sgd.lr, cfg.student.K, cfg.data.noise) == (
            point["lr"],
            point["K"],
            point["noise"],
        )
        assert cfg.run.seed == 7 and cfg.data.N == 100 and cfg.grid == Grid()
        updates = {"sgd": {"lr": point["lr"]}, "student": {"K": point["K"]}}
        assert cfg == base.replace(grid={}, data={"noise": point["noise"]}, **updates)


def test_round_trip_through_toml(tmp_path):
    for table in [
        {"lr": {"start": 0.01, "stop": 2.0, "num": 8, "spacing": "log"}, "K": [1, 2, 4]},
        {"kappa": [0, 0.001], "seed": {"start": 0, "stop": 3, "step": 1}},
        {"points": [{"lr": 0.1, "K": 2}, {"lr": 0.5, "K": 4}]},
        {},
    ]:
        cfg = config_from_dict({"grid": table, "sgd": {"lr": 0.3}})
        assert config_from_dict(cfg.to_dict()) == cfg
        path = tmp_path / "grid.toml"
        path.write_text(cfg.to_toml())
        assert load_config(path) == cfg
        assert "[grid]" in cfg.to_toml()


def test_grid_in_a_file_and_overrides(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text("[grid]\nlr = {start = 0.1, stop = 0.3, num = 3}\nK = [1, 2]\n")
    cfg = load_config(path)
    assert cfg.grid.to_dict() == {"lr": [0.1, 0.2, 0.3], "K": [1, 2]}
    cfg = load_config(path, ["grid.lr=[0.5, 1.0]", "grid.seed={start=0, stop=1, step=1}"])
    assert cfg.grid.to_dict() == {"lr": [0.5, 1.0], "K": [1, 2], "seed": [0, 1]}
    assert cfg.with_overrides(["grid.K=[4]"]).grid.to_dict()["K"] == [4]
    assert Config().with_overrides(["grid.lr=[0.1, 0.2]"]).grid.shape == (2,)
    with pytest.raises(ConfigError, match=r"grid\.lr\[1\] = -1\.0: expected a finite number > 0"):
        load_config(path, ["grid.lr=[0.5, -1.0]"])


def test_replace_grid():
    cfg = Config().replace(grid={"lr": [0.1, 0.2]})
    assert cfg.grid.shape == (2,)
    assert cfg.replace(grid=Grid()).grid == Grid()
    assert cfg.replace(sgd={"lr": 0.5}).grid == cfg.grid
    assert cfg.replace(grid=parse_grid({"K": [1, 2]})).grid.names == ("K",)


def test_k_at_most_n_for_a_single_config():
    with pytest.raises(ConfigError) as info:
        config_from_dict({"student": {"K": 1000}})
    assert str(info.value) == "student.K = 1000: expected an integer <= data.N = 784"
    config_from_dict({"student": {"K": 784}})


@pytest.mark.parametrize(
    ("d", "message"),
    [
        (
            {"grid": {"K": [1, 2, 4, 1000]}},
            "grid.K[3] = 1000: expected an integer <= data.N = 784",
        ),
        (
            {"grid": {"points": [{"K": 2}, {"K": 1000}]}},
            "grid.points[1].K = 1000: expected an integer <= data.N = 784",
        ),
        (
            {"grid": {"K": [2, 1000], "N": [100, 2000]}},
            "grid.K[1] = 1000: expected an integer <= data.N = 100",
        ),
        (
            {"grid": {"N": [5, 784]}, "student": {"K": 10}},
            "student.K = 10: expected an integer <= data.N = 5 (at grid point {N = 5})",
        ),
        (
            {"grid": {"noise": [0.0, 0.5]}, "run": {"mode": "ode"}},
            'grid.noise[1] = 0.5: run.mode = "ode" (the ODE) needs one of 0.0',
        ),
    ],
)
def test_every_grid_point_is_checked_as_a_config(d, message):
    with pytest.raises(ConfigError) as info:
        config_from_dict(d)
    assert str(info.value) == message


def test_swept_keys_of_the_base_are_not_checked_alone():
    """data.N = 1 < student.K, but every point of the grid over N is fine."""
    cfg = config_from_dict({"data": {"N": 1}, "grid": {"N": [100, 200]}})
    assert [c.data.N for c in cfg.grid.configs(cfg)] == [100, 200]
    assert config_from_dict({"grid": {"K": [2, 1000], "N": [1000, 2000]}}).grid.size == 4


# (grid table, the message starts with, and contains)
ERRORS = [
    (
        {"lr": []},
        "grid.lr = []: expected a non-empty list of numbers or a range {start, stop, num}",
        "",
    ),
    ({"K": []}, "grid.K = []: expected", "{start, stop, step}"),
    ({"lr": 0.1}, "grid.lr = 0.1: expected a non-empty list", "write [0.1]"),
    ({"lr": [0.1, 0.2, "a"]}, 'grid.lr[2] = "a" (a string): expected a number', ""),
    ({"lr": [True]}, "grid.lr[0] = true (a boolean): expected a number", ""),
    ({"K": [1, 2.0]}, "grid.K[1] = 2.0 (a number): expected an integer", "write 2, without a"),
    ({"K": [1, 2.5]}, "grid.K[1] = 2.5 (a number): expected an integer", ""),
    ({"lr": [0.1, 0.2, 0.1]}, "grid.lr[2] = 0.1: repeats grid.lr[0]", ""),
    ({"K": [1, 2, 2]}, "grid.K[2] = 2: repeats grid.K[1]", ""),
    ({"Lr": [0.1]}, "unknown grid axis grid.Lr = [0.1]; did you mean lr?", "lr, kappa, noise"),
    ({"eta": [0.1]}, "unknown grid axis grid.eta = [0.1]; axes: model, features, labels, alpha",
     "seed"),
    ({"lr": [0.1, 0.2, -0.1]}, "grid.lr[2] = -0.1: expected a finite number > 0", ""),
    ({"noise": [-1]}, "grid.noise[0] = -1: expected a finite number >= 0", ""),
    ({"K": [0, 1]}, "grid.K[0] = 0: expected an integer > 0", ""),
    ({"seed": [-1]}, "grid.seed[0] = -1: expected an integer 0 <= seed < 2^64", ""),
    ({"lr": {"start": 0.1, "stop": 1}}, "grid.lr = {start = 0.1, stop = 1}: expected a range", ""),
    ({"lr": {"stop": 1, "num": 2}}, "grid.lr = {stop = 1, num = 2}: expected a range", ""),
    ({"lr": {"start": 0.1, "stop": 1, "step": 1}}, "unknown key grid.lr.step = 1", "num, spacing"),
    ({"lr": {"start": 0.1, "stop": 1, "nm": 3}}, "unknown key grid.lr.nm = 3", "did you mean"),
    ({"K": {"start": 1, "stop": 4, "num": 2, "step": 1}}, "grid.K = {start = 1", "step}"),
    ({"K": {"start": 1, "stop": 4, "step": 1, "spacing": "log"}}, "grid.K = {start", "range"),
    ({"lr": {"start": 0.1, "stop": 1, "num": 0}}, "grid.lr.num = 0: expected an integer >= 1", ""),
    ({"lr": {"start": 0.1, "stop": 1, "num": 2.0}}, "grid.lr.num = 2.0 (a number)", "write 2"),
    (
        {"lr": {"start": 1, "stop": 0.1, "num": 3}},
        "grid.lr.stop = 0.1: expected a number >=",
        "1.0",
    ),
    ({"lr": {"start": 0, "stop": 1, "num": 3, "spacing": "log"}}, "grid.lr.start = 0.0", "> 0"),
    ({"lr": {"start": 0.1, "stop": 1, "num": 3, "spacing": "lin"}}, 'grid.lr.spacing = "lin"', ""),
    ({"lr": {"start": "a", "stop": 1, "num": 3}}, 'grid.lr.start = "a" (a string)', "number"),
    ({"lr": {"start": 0.1, "stop": 1, "num": 1}}, "grid.lr.num = 1: expected num >= 2", ""),
    ({"K": {"start": 1, "stop": 4, "num": 3}}, "grid.K = {start = 1, stop = 4, num = 3}", "2.5"),
    ({"K": {"start": 1.0, "stop": 4, "step": 1}}, "grid.K.start = 1.0 (a number)", "write 1"),
    ({"K": {"start": 1, "stop": 4, "step": 0}}, "grid.K.step = 0: expected an integer > 0", ""),
    ({"lr": [0.1], "points": [{"lr": 0.2}]}, "grid.lr = [0.1] next to grid.points", "not both"),
    ({"points": []}, "grid.points = []: expected a non-empty list of tables", ""),
    ({"points": [{"lr": 0.1}, 3]}, "grid.points[1] = 3: expected a table of axes", ""),
    ({"points": [{"lr": 0.1}, {"K": 2}]}, "grid.points[1] = {K = 2}: expected the axes", "(lr)"),
    ({"points": [{"lr": 0.1}, {"lr": 0.1}]}, "grid.points[1] = {lr = 0.1}: repeats grid.", ""),
    ({"points": [{"lr": 0.1, "kk": 2}]}, "unknown grid axis grid.points[0].kk = 2", "axes: model"),
    ({"points": [{"lr": -0.1}]}, "grid.points[0].lr = -0.1: expected a finite number > 0", ""),
    ({"points": [{"lr": [0.1]}]}, "grid.points[0].lr = [0.1] (list): expected a number", ""),
]


@pytest.mark.parametrize(("table", "start", "contains"), ERRORS)
def test_errors_name_the_key_and_the_value(table, start, contains):
    with pytest.raises(ConfigError) as info:
        config_from_dict({"grid": table})
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(start) and contains in message, message


def test_grid_that_is_not_a_table():
    for bad in (3, [0.1, 0.2], "lr"):
        with pytest.raises(ConfigError, match=r"^grid = .*: expected a table \[grid\]"):
            config_from_dict({"grid": bad})


def test_grid_is_an_allowed_section():
    with pytest.raises(ConfigError, match=r"did you mean \[grid\]\?.*output, grid$"):
        config_from_dict({"gird": {}})


def test_direct_grids_are_checked_too():
    grid = Grid("product", (("K", [2, 1]), ("lr", [1])))
    assert grid.axes == (("lr", (1.0,)), ("K", (2, 1)))
    with pytest.raises(ConfigError, match=r"grid\.lr\[0\] = 0\.0"):
        Grid("product", (("lr", (0.0,)),))
    with pytest.raises(ConfigError, match="kind"):
        Grid("cube", ())
    with pytest.raises(ConfigError, match="one value per axis per point"):
        Grid("points", (("lr", (0.1, 0.2)), ("K", (1,))))
    with pytest.raises(ConfigError, match="Config"):
        Config(grid={"lr": [0.1]})


@pytest.mark.parametrize(
    ("run", "message"),
    [
        ({"memory_gib": 0}, 'run.memory_gib = 0: expected "auto" or a number > 0'),
        ({"memory_gib": "lots"}, 'run.memory_gib = "lots": expected "auto" or a number > 0'),
        ({"devices": 0}, 'run.devices = 0: expected "all" or an integer >= 1'),
        ({"devices": 1.0}, "run.devices = 1.0 (a number): expected"),
        ({"diverge_eg": 0}, "run.diverge_eg = 0: expected a finite number > 0"),
        ({"checkpoint": "yes"}, 'run.checkpoint = "yes" (a string): expected true or false'),
    ],
)
def test_sweep_run_options(run, message):
    with pytest.raises(ConfigError) as info:
        config_from_dict({"run": run})
    assert str(info.value).startswith(message), str(info.value)


def test_sweep_run_option_values():
    run = config_from_dict({"run": {"memory_gib": 4, "devices": 2, "diverge_eg": 10}}).run
    assert run.memory_gib == 4.0 and type(run.memory_gib) is float
    assert (run.devices, run.diverge_eg, run.checkpoint) == (2, 10.0, True)
    assert (Config().run.memory_gib, Config().run.devices) == ("auto", "all")


def test_reference_documents_the_grid():
    text = config_reference_markdown()
    assert "| `run.memory_gib` |" in text and "| `run.devices` |" in text
    grid = text[text.index("[grid]") :]
    assert all(f"`{name}`" in grid for name in AXES)
    assert "points = [" in grid and "spacing" in grid and "step" in grid
