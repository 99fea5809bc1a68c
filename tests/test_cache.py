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
    args = ["run", str(cfg), "--quiet", "--set", f"output.out={out}", "--set",
            f"output.figure={out.with_suffix('.png')}"]  # fmt: skip
    return subprocess.run([sys.executable, "-m", "hmmjax", *args], capture_output=True,
                          text=True, env=env)  # fmt: skip


def test_second_run_loads_its_programs_from_the_cache(tmp_path):
    """The first run writes its compiled programs, the second finds every one of them
    (it writes nothing new) and gives the same numbers."""
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        '[data]\nmodel = "hmm"\nN = 40\nD = 6\n[run]\nt_max = 3.0\nn_times = 10\n'
        "ensemble = 2\ntest_size = 300\n"
    )
    cache = tmp_path / "cache"
    first = _run(cfg, tmp_path / "a.nc", cache)
    assert first.returncode == 0, first.stderr
    entries = sorted(p.name for p in cache.iterdir())
    assert entries, "nothing was written to the cache"
    second = _run(cfg, tmp_path / "b.nc", cache)
    assert second.returncode == 0, second.stderr
    assert sorted(p.name for p in cache.iterdir()) == entries  # every program found
    a, b = xr.open_dataset(tmp_path / "a.nc"), xr.open_dataset(tmp_path / "b.nc")
    np.testing.assert_array_equal(a["eg_sim"].values, b["eg_sim"].values)


def test_on_by_default_in_the_user_cache_and_off_on_request(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text('[data]\nmodel = "iid"\nN = 20\n[run]\nt_max = 1.0\nn_times = 5\n')
    off = _run(cfg, tmp_path / "c.nc", Path("off"), XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert off.returncode == 0, off.stderr
    assert not (tmp_path / "xdg" / "hmmjax").exists()
    on = _run(cfg, tmp_path / "d.nc", None, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert on.returncode == 0, on.stderr
    assert any((tmp_path / "xdg" / "hmmjax" / "jax").iterdir())
