"""Warm starts: the persistent compilation cache (``hmmjax.core.cache``)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import xarray as xr

from hmmjax.core.cache import CACHE_VARIABLE, cache_folder

REPO = Path(__file__).resolve().parents[1]


def test_cache_folder_from_the_environment(tmp_path):
    assert cache_folder({CACHE_VARIABLE: str(tmp_path)}) == tmp_path
    for off in ("off", "0", "False", "no", "none", " "):
        assert cache_folder({CACHE_VARIABLE: off}) is None
    assert cache_folder({"XDG_CACHE_HOME": "/x/cache"}) == Path("/x/cache/hmmjax/jax")
    assert cache_folder({}) == Path("~/.cache/hmmjax/jax").expanduser()


def _run(cfg: Path, out: Path, cache: Path | None, **extra: str) -> subprocess.CompletedProcess:
    """``hmmjax run`` in a fresh interpreter; ``cache``: HMMJAX_COMPILE_CACHE (None: unset)."""
    env = {**os.environ, **extra, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), *sys.path])}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env.pop(CACHE_VARIABLE, None)
    if cache is not None:
        env[CACHE_VARIABLE] = str(cache)
    args = ["run", str(cfg), "--quiet", "--no-figure", "--set", f"output.out={out}"]
    return subprocess.run([sys.executable, "-m", "hmmjax", *args], capture_output=True,
                          text=True, env=env)  # fmt: skip


def _program(entry: str) -> str:
    """The program's name of a cache entry (``jit_name-<key>-cache``)."""
    return entry.rsplit("-", 2)[0]


def test_on_by_default_off_on_request_and_the_second_run_loads_its_programs(tmp_path):
    """Off on request: nothing written. On by default (in $XDG_CACHE_HOME/hmmjax/jax): the
    first run writes its compiled programs (the simulation's and the ODE's), the second
    finds every one of them and gives the same numbers. Only programs that took
    ``MIN_COMPILE_SECONDS`` to compile are written, so a small program just under the
    threshold in the first run may be written by the second (a loaded CPU: CI once saw
    ``jit__threefry_split``); what must not happen is a program of the first run compiled
    again under a new key. (One test: each run is a fresh interpreter that compiles or
    loads every program.)"""
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        '[data]\nmodel = "hmm"\nN = 40\nD = 6\n[run]\nmode = "both"\nt_max = 3.0\n'
        "n_times = 10\nensemble = 2\ntest_size = 300\n[ode]\nnodes = 5\n"
    )
    xdg = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    off = _run(cfg, tmp_path / "off.nc", Path("off"), **xdg)
    assert off.returncode == 0, off.stderr
    assert not (tmp_path / "xdg" / "hmmjax").exists()
    cache = tmp_path / "xdg" / "hmmjax" / "jax"
    first = _run(cfg, tmp_path / "a.nc", None, **xdg)
    assert first.returncode == 0, first.stderr
    entries = sorted(p.name for p in cache.iterdir())
    assert entries, "nothing was written to the cache"
    # the ODE too: a program with a host callback (diffrax's run-time checks) is not
    # written, and compiled again by every run (hmmjax.ode.solve)
    assert "jit_ode_of_points" in {_program(name) for name in entries}, entries
    second = _run(cfg, tmp_path / "b.nc", None, **xdg)
    assert second.returncode == 0, second.stderr
    after = sorted(p.name for p in cache.iterdir())
    assert set(entries) <= set(after)
    programs = {_program(name) for name in entries}
    again = [name for name in after if name not in entries and _program(name) in programs]
    assert not again, f"compiled again under a new key: {again}"  # every program found
    runs = [xr.load_dataset(tmp_path / f"{name}.nc") for name in ("off", "a", "b")]
    for other in runs[1:]:
        for name in ("eg_sim", "eg_ode"):
            np.testing.assert_array_equal(other[name].values, runs[0][name].values)
