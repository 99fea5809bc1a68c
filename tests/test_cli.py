"""The hmmjax command: clean errors (exit 2, one line), config listing, run and plot."""

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from hmmjax import experiments
from hmmjax.cli import COMMANDS, main
from hmmjax.config.settings import Config
from hmmjax.data import real
from hmmjax.experiments import driver, theory
from hmmjax.io.results import read_dataset, write_dataset
from hmmjax.io.state import SHAPES

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def hmmjax(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run ``python -m hmmjax ARGS`` in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), *sys.path])}
    return subprocess.run(
        [sys.executable, "-m", "hmmjax", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def fake_results(cfg: Config) -> xr.Dataset:
    t = np.concatenate([[0.0], np.logspace(-2, 1, 10)])
    eg = 0.5 / (1 + t) * np.ones((cfg.run.ensemble, 1))
    return xr.Dataset(
        {"eg": (("member", "t"), eg), "eg_mc": (("member", "t"), eg)},
        coords={"t": t},
        attrs={"title": "stub", "config": cfg.to_dict()},
    )


def test_help_lists_every_command():
    r = hmmjax("--help")
    assert r.returncode == 0
    for name in COMMANDS:
        assert name in r.stdout


@pytest.mark.parametrize(
    ("toml", "args", "expected"),
    [
        ("[sgd]\nlr = -1\n", [], "sgd.lr = -1: expected a finite number > 0"),
        ("[sgd]\nrate = 1\n", [], "unknown key sgd.rate"),
        ("[sgd\nlr = 1\n", [], "is not valid TOML"),
        ("", ["--set", "student.g=gelu"], 'student.g = "gelu"'),
        ("", ["--set", "student.g"], "expected section.key=value"),
    ],
)
def test_bad_config_exits_2_with_one_line(tmp_path, toml, args, expected):
    path = write(tmp_path / "bad.toml", toml)
    r = hmmjax("run", str(path), *args, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("hmmjax: error: ")
    assert expected in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "results").exists()


def test_missing_files_exit_2(tmp_path):
    r = hmmjax("run", "nope.toml", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (2, "hmmjax: error: config file nope.toml not found\n")
    r = hmmjax("plot", "nope.nc", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (2, "hmmjax: error: results file nope.nc not found\n")


def test_config_errors_do_not_import_jax(tmp_path):
    path = write(tmp_path / "bad.toml", "[data]\nN = 0\n")
    code = (
        "import sys; from hmmjax.cli import main; "
        f"rc = main(['run', {str(path)!r}]); "
        "assert rc == 2 and 'jax' not in sys.modules"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), *sys.path])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)


def test_config_reference(capsys):
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| key | type | default | allowed | description |")
    assert "`sgd.lr`" in out and "`run.chunk`" in out


def test_config_check_prints_resolved_config(tmp_path, capsys):
    path = write(tmp_path / "exp.toml", "[sgd]\nlr = 0.5\n")
    assert main(["config", str(path), "--set", "run.seed=7"]) == 0
    out = capsys.readouterr().out
    assert "lr = 0.5" in out and "seed = 7" in out and 'out = "results/exp.nc"' in out


def test_run_writes_results_and_figure(tmp_path, monkeypatch, capsys):
    """The run command with the physics replaced by a stub module (no JAX)."""
    calls = []

    def simulate(cfg, progress=True, checkpoint=None):
        calls.append((cfg, progress))
        return fake_results(cfg)

    monkeypatch.setattr("hmmjax.experiments.driver.simulate", simulate)
    path = write(tmp_path / "exp.toml", "[run]\nensemble = 3\n")
    out = tmp_path / "o" / "r.nc"
    rc = main(["run", str(path), "--out", str(out), "--set", "sgd.lr=0.3", "--quiet"])
    assert rc == 0
    cfg, progress = calls[0]
    assert (cfg.sgd.lr, cfg.run.ensemble, progress) == (0.3, 3, False)
    ds = read_dataset(out)
    assert ds.attrs["config"]["sgd"]["lr"] == 0.3
    assert (tmp_path / "o" / "r.png").read_bytes()[:8] == PNG_MAGIC
    printed = capsys.readouterr().out
    assert str(out) in printed and str(tmp_path / "o" / "r.png") in printed


def test_run_says_which_students_diverged(tmp_path, monkeypatch, capsys):
    """Members that diverged stay in the results (NaN from then on); the run says so."""

    def simulate(cfg, progress=True, checkpoint=None):
        ds = fake_results(cfg)
        flag = np.array([False, True, True])
        return ds.assign(diverged=("member", flag),
                         t_diverged=("member", np.where(flag, [0, 2.0, 0.5], np.nan)))  # fmt: skip

    monkeypatch.setattr(driver, "simulate", simulate)
    path = write(tmp_path / "exp.toml", "[run]\nensemble = 3\n")
    out = tmp_path / "r.nc"
    assert main(["run", str(path), "--out", str(out), "-q", "--no-figure"]) == 0
    err = capsys.readouterr().err
    assert "hmmjax: warning: 2 of 3 students diverged (the first at t = 0.5)" in err
    assert read_dataset(out)["diverged"].values.tolist() == [False, True, True]


def test_run_figure_option_and_bad_figure_format(tmp_path, monkeypatch):
    monkeypatch.setattr(
        "hmmjax.experiments.driver.simulate",
        lambda cfg, progress=True, checkpoint=None: fake_results(cfg),
    )
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path / "exp.toml", "[run]\nensemble = 2\n")
    assert main(["run", str(path), "--figure", "f.pdf", "-q"]) == 0
    assert (tmp_path / "results" / "exp.nc").is_file()
    assert (tmp_path / "f.pdf").read_bytes()[:4] == b"%PDF"
    assert main(["run", str(path), "--figure", "f.xyz", "-q"]) == 2


def test_run_without_a_figure(tmp_path, monkeypatch, capsys):
    """``--no-figure`` writes the results file only, and does not go with ``--figure``."""
    monkeypatch.setattr(
        "hmmjax.experiments.driver.simulate",
        lambda cfg, progress=True, checkpoint=None: fake_results(cfg),
    )
    path = write(tmp_path / "exp.toml", "[run]\nensemble = 2\n")
    out = tmp_path / "r.nc"
    assert main(["run", str(path), "--out", str(out), "-q", "--no-figure"]) == 0
    assert read_dataset(out).sizes["member"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.toml", "r.nc"]
    assert "r.png" not in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["run", str(path), "--figure", "f.png", "--no-figure"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_run_with_simulate_stubbed(tmp_path, monkeypatch):
    """End to end through the real ``hmmjax.experiments.driver`` module, its simulate()
    stubbed."""
    monkeypatch.setattr(
        driver, "simulate", lambda cfg, progress=True, checkpoint=None: fake_results(cfg)
    )
    path = write(tmp_path / "exp.toml", "[run]\nensemble = 2\n")
    out = tmp_path / "r.nc"
    assert main(["run", str(path), "--out", str(out), "-q"]) == 0
    assert read_dataset(out).sizes["member"] == 2
    assert (tmp_path / "r.png").is_file()


def test_plot_command(tmp_path):
    nc = write_dataset(fake_results(Config()), tmp_path / "r.nc")
    r = hmmjax("plot", str(nc))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "r.png").read_bytes()[:8] == PNG_MAGIC
    r = hmmjax("plot", str(nc), "--out", str(tmp_path / "other.svg"))
    assert r.returncode == 0 and (tmp_path / "other.svg").is_file()


def test_run_starts_no_jax_before_the_host_devices_are_set():
    """``hmmjax run`` checks the figure path (plots) and reads configs before it asks XLA
    for one host device per core: none of that may import JAX, or a CPU sweep would run on
    one device instead of being sharded over the cores."""
    code = (
        "import sys, hmmjax.cli, hmmjax.plots, hmmjax.io.results, hmmjax.core.files; "
        "assert 'jax' not in sys.modules, 'jax was imported'"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), *sys.path])}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=env)


# --------------------------------------------------------------------------- bad input files


def one_line_error(capsys, rc: int, *expected: str) -> str:
    """The stderr of a ``main`` call that must have failed with exit 2 in one line."""
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("hmmjax: error: ") and err.count("\n") == 1, err
    for text in expected:
        assert text in err, err
    return err


def write_state(path: Path, **change) -> Path:
    """A state file of consistent shapes (K = 2, M = 3, D = 5, N = 8), changed by
    ``change``; NumPy only."""
    rng = np.random.default_rng(0)
    sizes = {"K": 2, "M": 3, "D": 5, "N": 8}
    state = {k: rng.normal(size=tuple(sizes[d] for d in dims)) for k, dims in SHAPES.items()}
    state.update(rho=rng.uniform(0.1, 2.0, 5), N=np.int64(8), D=np.int64(5))
    np.savez(path, **{**state, **change})
    return path


@pytest.fixture
def no_solving(monkeypatch):
    """The ODE must not be solved (nor compiled): a bad input is refused before."""

    def solve(*args, **kwargs):
        raise AssertionError("the ODE was solved")

    monkeypatch.setattr(theory, "solve_hmm", solve)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"N": np.int64(30)}, "F has shape (5, 8), expected (D, N) = (5, 30)"),
        ({"W": np.array([[np.nan, 0.0], [0.0, 1.0]])}, "W has non-finite values"),
        ({"W": np.eye(2, dtype=np.int64)}, "W has dtype int64, expected floating-point"),
        ({"v": np.zeros(0)}, "v has shape (0,), expected (K,) with K >= 1"),
        ({"N": np.int64(0), "F": np.zeros((5, 0)), "w": np.zeros((2, 0))}, "N = 0, expected"),
    ],
    ids=["N-vs-F", "nan", "int", "K0", "N0"],
)
def test_ode_refuses_bad_state_arrays(tmp_path, capsys, no_solving, change, expected):
    state = write_state(tmp_path / "s.npz", **change)
    rc = main(["ode", str(state), "--lr", "0.5", "--t-max", "1", "--out", str(tmp_path / "o.nc")])
    one_line_error(capsys, rc, f"hmmjax: error: state file {state}: ", expected)
    assert not (tmp_path / "o.nc").exists()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p: p.write_bytes(b""), "(the file is empty)"),
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "truncated zip"),
        (lambda p: p.write_text("rho = 1\n"), "not with the zip signature 50 4b of an .npz"),
    ],
    ids=["empty", "truncated", "text"],
)
def test_ode_refuses_files_that_are_not_state_files(tmp_path, capsys, no_solving, damage, reason):
    state = write_state(tmp_path / "s.npz")
    damage(state)
    rc = main(["ode", str(state), "--lr", "0.5", "--t-max", "1", "--out", str(tmp_path / "o.nc")])
    head = f"hmmjax: error: state file {state} is not a readable .npz state file ("
    err = one_line_error(capsys, rc, head, reason)
    assert err.endswith("; write it with hmmjax.io.save_state\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, ": not found"),
        ("", ": holds no times; expected finite numbers >= 0, increasing"),
        ("0 0.5 x 1", ": entry 3 is 'x', not a number"),
        ("0, nan, 1", ": entry 2 is nan; expected finite numbers >= 0"),
        ("0\n-1\n", ": entry 2 is -1; expected finite numbers >= 0"),
        ("0 2 1", ": entry 3 = 1 is not above entry 2 = 2"),
        ("0 1 1", ": entry 3 = 1 is not above entry 2 = 1"),
        (b"\xff\xfe\x00", ": not a text file (not UTF-8)"),
        ("0 0.5 1 3", ": the largest save time 3.0 is beyond --t-max = 1.0; expected save times"),
    ],
    ids=[
        "missing",
        "empty",
        "word",
        "nan",
        "negative",
        "decreasing",
        "repeated",
        "binary",
        "beyond-t-max",
    ],  # fmt: skip
)
def test_ode_refuses_bad_save_times(tmp_path, capsys, monkeypatch, text, expected):
    monkeypatch.setattr(experiments, "ode_from_state", no_ode)
    times = tmp_path / "times.txt"
    if isinstance(text, bytes):
        times.write_bytes(text)
    elif text is not None:
        times.write_text(text)
    state = str(write_state(tmp_path / "s.npz"))
    args = [state, "--lr", "0.5", "--t-max", "1", "--save-times", str(times)]
    rc = main(["ode", *args, "--out", str(tmp_path / "o.nc")])
    one_line_error(capsys, rc, f"hmmjax: error: --save-times {times}{expected}")


def no_ode(*args, **kwargs):
    raise AssertionError("the ODE was set up")


def test_ode_refuses_a_figure_format_before_the_ode(tmp_path, monkeypatch, capsys):
    """As ``run`` does: a figure matplotlib cannot write is refused before any work."""
    monkeypatch.setattr(experiments, "ode_from_state", no_ode)
    state = str(write_state(tmp_path / "s.npz"))
    args = [state, "--lr", "0.5", "--t-max", "1", "--out", str(tmp_path / "o.nc")]
    rc = main(["ode", *args, "--figure", str(tmp_path / "f.xyz")])
    one_line_error(capsys, rc, "cannot write format 'xyz'")
    assert not (tmp_path / "o.nc").exists()


def test_ode_save_times_up_to_t_max_are_accepted(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(experiments, "ode_from_state", lambda *a, **kw: calls.append(kw) or 1)
    monkeypatch.setattr(experiments, "ode_divergence", lambda ds: None)
    monkeypatch.setattr("hmmjax.cli._save", lambda ds, out, figure: None)
    times = write(tmp_path / "times.txt", "0, 0.5\n1\n")
    state = str(write_state(tmp_path / "s.npz"))
    args = [state, "--lr", "0.5", "--t-max", "1", "--save-times", str(times)]
    assert main(["ode", *args, "--out", str(tmp_path / "o.nc")]) == 0
    np.testing.assert_array_equal(calls[0]["times"], [0, 0.5, 1])


def _tiny_mnist(folder: Path, n_images: int = 30, n_labels: int = 30) -> Path:
    folder.mkdir()
    images = folder / "train-images-idx3-ubyte"
    pixels = np.random.default_rng(0).integers(0, 256, (n_images, 4, 5)).astype(np.uint8)
    real.write_idx(images, pixels)
    real.write_idx(folder / "train-labels-idx1-ubyte", np.arange(n_labels, dtype=np.uint8) % 10)
    return images


def _truncate(path: Path, keep: float = 0.5) -> None:
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda img: _truncate(img), "train-images-idx3-ubyte has 292 data bytes, expected 600"),
        (
            lambda img: _truncate(img.with_name("train-labels-idx1-ubyte"), 0.9),
            "train-labels-idx1-ubyte has 26 data bytes, expected 30 for shape (30,) of uint8 "
            "(the file is truncated)",
        ),
        (
            lambda img: img.write_bytes(b"\x08\x03" + img.read_bytes()[2:]),
            "train-images-idx3-ubyte is not an IDX file: it starts with 08 03 08 03",
        ),
        (
            lambda img: real.write_idx(
                img.with_name("train-labels-idx1-ubyte"), np.zeros(25, np.uint8)
            ),
            "MNIST count mismatch: 30 images but 25 labels",
        ),
    ],
    ids=["images-truncated", "labels-truncated", "magic", "counts"],
)
@pytest.mark.parametrize("command", ["run", "config"])
def test_broken_mnist_files_are_refused_before_any_work(
    tmp_path, capsys, monkeypatch, command, damage, expected
):
    monkeypatch.chdir(tmp_path)  # a short data.path: the message shows it in full
    damage(_tiny_mnist(tmp_path / "mnist"))
    path = "mnist/train-images-idx3-ubyte"
    config = write(
        tmp_path / "exp.toml",
        f'[data]\nmodel = "mnist"\nN = 20\npath = "{path}"\n[finite]\nP = 10\n'
        '[run]\ntest_size = 10\nensemble = 1\n[output]\nout = "r.nc"\n',
    )
    rc = main([command, str(config)])
    one_line_error(capsys, rc, f'hmmjax: error: data.path = "{path}": ', expected)
    assert not (tmp_path / "r.nc").exists()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p: p.write_bytes(b""), "(the file is empty)"),
        (
            lambda p: p.write_text("eg = 1\n"),
            "(it does not start with the netCDF-4/HDF5 signature)",
        ),
        (lambda p: _truncate(p), "(a damaged or truncated netCDF-4 file: "),
        (
            lambda p: xr.Dataset({"eg": ("t", [1.0, 0.5])}).to_netcdf(p, engine="scipy"),
            "(it is a netCDF-3 file; hmmjax writes netCDF-4)",
        ),
    ],
    ids=["empty", "text", "truncated", "netcdf3"],
)
def test_plot_refuses_files_that_are_not_netcdf4(tmp_path, capsys, damage, reason):
    nc = write_dataset(fake_results(Config()), tmp_path / "r.nc")
    damage(nc)
    rc = main(["plot", str(nc)])
    head = f"hmmjax: error: {nc} is not a netCDF results file written by hmmjax "
    err = one_line_error(capsys, rc, head, reason)
    assert "HDF5 signature" in err or "signature" not in err  # no bare HDF5 jargon
    assert not (tmp_path / "r.png").exists()


def test_plot_refuses_netcdf_files_hmmjax_did_not_write(tmp_path, capsys):
    nc = tmp_path / "other.nc"
    xr.Dataset({"a": ("x", [1, 2])}).to_netcdf(nc, engine="h5netcdf")
    rc = main(["plot", str(nc)])
    one_line_error(
        capsys,
        rc,
        f"hmmjax: error: results file {nc}: not a results file of hmmjax (expected one of "
        "the variables eg, eg_mc, eg_ode over t, or the attribute experiment = 'finite' or "
        "'invariant', or swept; found the variables ['a'] and the attributes [])",
    )
    assert not (tmp_path / "other.png").exists()
    xr.Dataset({"eg": ("t", [1.0])}, attrs={"experiment": "finite"}).to_netcdf(nc)
    rc = main(["plot", str(nc)])
    one_line_error(capsys, rc, f"results file {nc}: finite-training-set dataset lacks 'err_test'")


def test_folders_given_for_files(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("s.npz", "r.nc", "mnist/train-images-idx3-ubyte"):
        (tmp_path / name).mkdir(parents=True)
    rc = main(["ode", "s.npz", "--lr", "0.5", "--t-max", "1", "--out", "o.nc"])
    one_line_error(capsys, rc, "hmmjax: error: state file s.npz is a folder\n")
    rc = main(["plot", "r.nc"])
    one_line_error(capsys, rc, "hmmjax: error: results file r.nc is a folder\n")
    config = write(
        tmp_path / "exp.toml",
        '[data]\nmodel = "mnist"\nN = 20\npath = "mnist/train-images-idx3-ubyte"\n'
        "[finite]\nP = 10\n[run]\ntest_size = 10\n",
    )
    rc = main(["config", str(config)])
    one_line_error(capsys, rc, "images file mnist/train-images-idx3-ubyte is a folder")


def test_ode_that_diverges_says_so(tmp_path, capsys):
    """A diverging ODE (Euler steps far too large for the learning rate) keeps its values
    in the results, exits 0, and says from when eg_ode is not finite."""
    state = write_state(tmp_path / "s.npz")
    out = tmp_path / "o.nc"
    rc = main(["ode", str(state), "--lr", "1000", "--t-max", "50", "--dt", "1", "--n-times", "5",
               "--nodes", "full", "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0 and out.exists(), err
    assert "hmmjax: warning: eg_ode is not finite from t = " in err and "--dt 1" in err


def test_outputs_that_would_overwrite_a_file_of_the_run_are_refused(tmp_path, capsys, monkeypatch):
    """The results file, the figure, the config, the schedule file, the results file a
    plot reads: no one of them may be written over another, nor a file that is not a
    plain file (a FIFO here, /dev/null as root), before any work."""
    calls = []
    monkeypatch.setattr(driver, "simulate", lambda cfg, **kw: calls.append(cfg))
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path / "exp.toml", "[run]\nensemble = 2\n")
    table = write(tmp_path / "s.txt", "0 1\n1 0.5\n")
    os.mkfifo(tmp_path / "fifo")
    table_out = ["--out", "s.txt", "--set", 'sgd.schedule="file"']
    table_out += ["--set", 'sgd.schedule_file="s.txt"']
    cases = [
        (["--out", "r.png"], "the figure r.png would overwrite the results file (r.png)"),
        (["--out", "r.pdf", "--figure", "r.pdf"], "the figure r.pdf would overwrite the results"),
        (["--out", "exp.toml", "--no-figure"], f"exp.toml would overwrite the config ({path})"),
        (["--out", "r.nc", "--figure", str(path)], f"the figure {path} would overwrite the con"),
        ([*table_out, "--no-figure"], "would overwrite sgd.schedule_file (s.txt)"),
        (["--out", "fifo", "--no-figure"], "the results file fifo: it is not a regular file"),
    ]
    for args, expected in cases:
        rc = main(["run", str(path), "-q", *args])
        one_line_error(capsys, rc, expected)
    assert not calls and path.read_text() == "[run]\nensemble = 2\n"
    assert table.read_text() == "0 1\n1 0.5\n"
    nc = write_dataset(fake_results(Config()), tmp_path / "r.nc")
    before = nc.read_bytes()
    one_line_error(capsys, main(["plot", str(nc), "--out", str(nc)]), "would overwrite")
    assert nc.read_bytes() == before
    state = write_state(tmp_path / "s.npz")
    ode = ["ode", str(state), "--lr", "0.3", "--t-max", "1"]
    one_line_error(capsys, main([*ode, "--out", "o.png"]), "the figure o.png would overwrite")
    one_line_error(capsys, main([*ode, "--out", str(state)]), "would overwrite the state file")
    times = write(tmp_path / "t.txt", "0.5\n1\n")
    rc = main([*ode, "--save-times", str(times), "--out", str(times)])
    one_line_error(capsys, rc, "would overwrite --save-times")
    (tmp_path / "la").symlink_to(tmp_path / "lb")
    (tmp_path / "lb").symlink_to(tmp_path / "la")
    rc = main(["run", str(path), "-q", "--out", "la", "--no-figure"])
    one_line_error(capsys, rc, "cannot write the results file la: ")


def test_an_output_folder_that_takes_no_files_is_refused_before_any_work(tmp_path, capsys,
                                                                         monkeypatch):  # fmt: skip
    """Permissions can say yes where the file system says no (root on /proc, a read-only
    mount, a squashed share): the folder is probed with a file of its own, before the
    run; a folder that takes files keeps nothing of the probe."""
    ran = []
    monkeypatch.setattr(driver, "simulate", lambda cfg, **kw: ran.append(1) or fake_results(cfg))
    path = write(tmp_path / "exp.toml", "[run]\nensemble = 3\n")
    real_open = os.open

    def refusing(name, *args, **kw):  # a folder whose file system refuses new files
        if Path(name).parent == tmp_path / "ro":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(name))
        return real_open(name, *args, **kw)

    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(os, "open", refusing)
    rc = main(["run", str(path), "-q", "--out", str(tmp_path / "ro" / "r.nc"), "--no-figure"])
    one_line_error(capsys, rc, f"cannot write the results file {tmp_path / 'ro' / 'r.nc'}: ",
                   "does not take new files (Read-only file system)")  # fmt: skip
    assert not ran and not list((tmp_path / "ro").iterdir())
    monkeypatch.setattr(os, "open", real_open)
    out = tmp_path / "new" / "deeper" / "r.nc"  # folders made by the run, probed above
    assert main(["run", str(path), "-q", "--out", str(out), "--no-figure"]) == 0
    assert ran and [p.name for p in tmp_path.rglob("*hmmjax-write-test*")] == []


def test_an_output_that_is_a_link_is_written_through(tmp_path, monkeypatch):
    """--out naming a symbolic link replaces its target, and the link stays."""
    monkeypatch.setattr(driver, "simulate", lambda cfg, **kw: fake_results(cfg))
    path = write(tmp_path / "exp.toml", "[run]\nensemble = 3\n")
    target = write(tmp_path / "old.nc", "stale")
    link = tmp_path / "latest.nc"
    link.symlink_to(target)
    assert main(["run", str(path), "--out", str(link), "--no-figure", "-q"]) == 0
    assert link.is_symlink() and read_dataset(target).sizes["member"] == 3


def test_a_finished_run_removes_its_own_checkpoints_only(tmp_path, monkeypatch):
    """After writing its results, and with --fresh before running, a run removes its
    checkpoint and its parts' (a grid over models), not another run's beside it whose
    name starts the same (``OUT.seed2.ckpt.npz`` next to ``OUT``'s)."""
    seen = []

    def simulate(cfg, progress=True, checkpoint=None):
        seen.append(sorted(p.name for p in tmp_path.glob("*.ckpt.npz")))
        return fake_results(cfg)

    monkeypatch.setattr(driver, "simulate", simulate)
    path = write(tmp_path / "exp.toml", '[grid]\nmodel = ["iid", "hmm"]\n')
    mine = ["run.ckpt.npz", "run.hmm.ckpt.npz", "run.iid.ckpt.npz"]
    others = ["run.seed2.ckpt.npz", "run.seed2.hmm.ckpt.npz", "runner.ckpt.npz"]
    for fresh in ([], ["--fresh"]):
        for name in mine + others:
            (tmp_path / name).write_bytes(b"x")
        out = tmp_path / "run"
        assert main(["run", str(path), "--out", str(out), "--no-figure", "-q", *fresh]) == 0
        left = sorted(p.name for p in tmp_path.glob("*.ckpt.npz"))
        assert left == sorted(others), left
        assert seen[-1] == sorted(others if fresh else mine + others)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--t-max", "1", "--dt", "1000", "--n-times", "3"],
         "--dt = 1000.0: the Euler step is longer than --t-max = 1.0; expected --dt <= --t-max"),
        (["--t-max", "100", "--dt", "1e-12"],
         "--t-max = 100.0: with --dt = 1e-12 that is 1e+14 Euler steps; expected --t-max / "
         "--dt < 2^32"),
        (["--t-max", "1", "--nodes", "100000000"],
         "--nodes = 100000000: expected auto, full or an integer 2 <= p <= 321 (the most auto "
         "may run: more add cost, not accuracy)"),
        (["--t-max", "1", "--n-times", "0"], "--n-times = 0: expected an integer > 0"),
        (["--t-max", "0"], "--t-max = 0.0: expected a finite number > 0"),
    ],
    ids=["dt-beyond-t-max", "too-many-steps", "too-many-nodes", "no-times", "zero-t-max"],
)  # fmt: skip
def test_ode_refuses_steps_and_nodes_beyond_reason(tmp_path, capsys, monkeypatch, args, expected):
    """Before the state file is read or anything is compiled (these hung, ran out of
    memory or silently saved t = 0 only)."""
    monkeypatch.setattr(experiments, "ode_from_state", no_ode)
    state = str(write_state(tmp_path / "s.npz"))
    rc = main(["ode", state, "--lr", "0.3", *args, "--out", str(tmp_path / "o.nc")])
    err = one_line_error(capsys, rc)
    assert err == f"hmmjax: error: {expected}\n"


def test_ode_refusals_start_just_beyond_the_limits(tmp_path, capsys, monkeypatch):
    """322 nodes are refused, 321 taken; dt is the Euler step: an adaptive solver does
    not take it, so --dt beyond --t-max is not refused there."""
    calls = []
    monkeypatch.setattr(experiments, "ode_from_state", lambda *a, **kw: calls.append(kw) or 1)
    monkeypatch.setattr(experiments, "ode_divergence", lambda ds: None)
    monkeypatch.setattr("hmmjax.cli._save", lambda ds, out, figure: None)
    state = str(write_state(tmp_path / "s.npz"))
    args = ["ode", state, "--lr", "0.3", "--t-max", "1", "--out", str(tmp_path / "o.nc")]
    one_line_error(capsys, main([*args, "--nodes", "322"]), "--nodes = 322: ")
    assert main([*args, "--dt", "1000", "--solver", "tsit5", "--nodes", "321"]) == 0
    assert calls[0]["dt"] == 1000 and calls[0]["nodes"] == 321
