"""The hmmjax command: clean errors (exit 2, one line), config listing, run and plot."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from hmmjax.cli import COMMANDS, main
from hmmjax.config.settings import Config
from hmmjax.experiments import driver
from hmmjax.io.results import read_dataset, write_dataset

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
