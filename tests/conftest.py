"""Shared fixtures and helpers. JAX compilation dominates small tests: build models once per
session, and keep configs tiny (``small_config``)."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from hmmjax.config import Config, config_from_dict
from hmmjax.core.cache import CACHE_VARIABLE, enable_compile_cache

_OWN_CACHE = "HMMJAX_TEST_OWN_CACHE"

# Compilation dominates the suite. Two XLA:CPU options make it cheaper:
# - LLVM at optimisation level 0: about a quarter faster (tests/test_compressed.py with
#   -n 2: 104 s at the default level, 80 s at 0);
# - XLA's elemental emitter for fusions instead of its fusion emitters (FAST_EMITTER): a
#   small config's first `simulate` (mode "both") 8.0/6.0 s -> 5.5/4.0 s, a second shape
#   4.8/3.6 s -> 2.8/2.0 s (two pairs, cache off); the suite with -n 2 about 600 s ->
#   370 s (AMD EPYC 2 cores, 2026-12-04).
# The programs compute the same operations; only the rounding of a reordered sum can
# differ, which every tolerance here allows. What the elemental emitter does not always
# keep is the bit-identity of two programs of different structure (a run in member groups
# and whole, the engine and one call): the tests of such claims that it broke (and their
# kin) carry the ``default_codegen`` marker and run in a child pytest with XLA's fusion
# emitters, at level 0 (``pytest_pyfunc_call`` below). Other bit-identity tests pass under
# it (checked with this machine's AVX-512 and with XLA_FLAGS=--xla_cpu_max_isa=AVX2); one
# that fails under it on another machine gets the marker. Set before JAX starts, so the
# xdist workers and every subprocess a test starts inherit them; an option the caller set
# in XLA_FLAGS is kept as set. HMMJAX_TEST_FULL_OPT=1 runs the suite with XLA's
# defaults, as users' runs are compiled.
FAST_OPT = "--xla_backend_optimization_level=0"
FAST_EMITTER = "--xla_cpu_use_fusion_emitters=false"
_DEFAULT_CODEGEN = "HMMJAX_TEST_DEFAULT_CODEGEN"  # set in the child of a default_codegen test
_FULL_OPT = os.environ.get("HMMJAX_TEST_FULL_OPT", "").strip().lower()
if _FULL_OPT in ("", "0", "false", "no", "off"):
    _given = os.environ.get("XLA_FLAGS", "").split()
    _named = {f.split("=")[0] for f in _given}
    _fast = [FAST_OPT] + ([] if os.environ.get(_DEFAULT_CODEGEN) else [FAST_EMITTER])
    os.environ["XLA_FLAGS"] = " ".join(_given + [f for f in _fast
                                                 if f.split("=")[0] not in _named])  # fmt: skip


# XLA_FLAGS as JAX will read them in this process (a module a test imports may change the
# variable later, e.g. a benchmark script's device count)
_XLA_FLAGS = os.environ.get("XLA_FLAGS", "").split()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """A ``default_codegen`` test, in a process that compiles with the elemental emitter,
    runs in a child pytest (one test, this test's node id) whose XLA_FLAGS leave it out;
    its failure is this test's failure, with the child's output."""
    if pyfuncitem.get_closest_marker("default_codegen") is None or FAST_EMITTER not in _XLA_FLAGS:
        return None
    flags = [f for f in _XLA_FLAGS if f != FAST_EMITTER]
    env = {**os.environ, "XLA_FLAGS": " ".join(flags), _DEFAULT_CODEGEN: "1"}
    env.pop(_OWN_CACHE, None)  # the session's cache is this session's to remove, not the child's
    env.pop("PYTEST_ADDOPTS", None)  # the node id alone selects: no -n, no -m
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-p",
           "no:xdist", "-o", "addopts=--strict-markers", pyfuncitem.nodeid]  # fmt: skip
    where = f"{pyfuncitem.nodeid} under XLA's fusion emitters, in a child pytest"
    try:
        run = subprocess.run(cmd, cwd=pyfuncitem.config.rootpath, env=env, capture_output=True,
                             text=True, timeout=900)  # fmt: skip
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"{where}: over {err.timeout} s\n{err.stdout or ''}", pytrace=False)
    if run.returncode != 0:  # 5 (the test was not collected) too
        pytest.fail(f"{where} (exit {run.returncode}):\n{run.stdout[-6000:]}\n"
                    f"{run.stderr[-3000:]}", pytrace=False)  # fmt: skip
    if re.search(r"\b\d+ skipped\b", run.stdout):
        pytest.skip(f"{where}: {run.stdout.strip().splitlines()[-1]}")
    return True


def pytest_configure(config):
    """One compilation cache for the whole session, in a temporary folder, never the
    user's: the main process makes it, the xdist workers and every ``hmmjax`` subprocess
    a test starts inherit it through ``HMMJAX_COMPILE_CACHE``. Many tests compile the same
    programs (the same shapes through fresh closures, or in fresh processes: CLI runs,
    two processes, a resume after a kill); the second compilation is a load. A cache the
    caller names (``HMMJAX_COMPILE_CACHE=path|off``) is kept. Numbers do not depend on it:
    a loaded program is the program that was compiled. Tests that count compilations turn
    it off for themselves (``no_disk_cache``)."""
    if os.environ.get(CACHE_VARIABLE) is None and not hasattr(config, "workerinput"):
        os.environ[CACHE_VARIABLE] = tempfile.mkdtemp(prefix="hmmjax-test-cache-")
        os.environ[_OWN_CACHE] = os.environ[CACHE_VARIABLE]
    enable_compile_cache()


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput") and os.environ.get(_OWN_CACHE):
        shutil.rmtree(os.environ.pop(_OWN_CACHE), ignore_errors=True)


# Modules whose tests run for a minute each (processes of their own, simulation at N =
# 2000): collected first, so that with ``-n 2`` they start at once on both workers rather
# than leave one worker alone with them at the end of the session.
LONG_FIRST = ("test_sweep_processes.py", "test_theory.py", "test_cache.py")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.path.name not in LONG_FIRST)  # stable: order kept


@pytest.fixture
def no_disk_cache():
    """The persistent compilation cache off for one test (it counts compilations)."""
    import jax

    before = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    yield
    jax.config.update("jax_enable_compilation_cache", before)


DATA = Path(__file__).resolve().parent / "data"

# The base of every ``small_config``: a tiny model and a short run (N = 30, t_max = 2:
# 60 SGD steps). Each test module puts its own sections on top, only the keys it needs.
SMALL = {
    "data": {"model": "hmm", "N": 30, "D": 10},
    "run": {"t_max": 2.0, "n_times": 8, "ensemble": 2, "test_size": 200, "chunk": 3},
}


def small_config(*layers: Mapping[str, Any], **sections: Any) -> Config:
    """A validated Config: ``SMALL``, then each of ``layers``, then ``sections``, merged
    section by section (a later key wins; ``grid`` is replaced as a whole, not merged).

    ``small_config(BASE, run={"seed": 1})`` is ``BASE`` on top of ``SMALL`` with another
    seed. Import it in a test module with ``from conftest import small_config``.
    """
    d: dict[str, Any] = {}
    for layer in (SMALL, *layers, sections):
        for name, values in layer.items():
            old = d.get(name)
            if name != "grid" and isinstance(values, Mapping) and isinstance(old, Mapping):
                d[name] = {**old, **values}
            else:  # a new section, the grid, or a wrong value for config_from_dict to report
                d[name] = dict(values) if isinstance(values, Mapping) else values
    return config_from_dict(d)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``tests/data``: the published HMM ODE integrator's reference case (its README.md
    says what the files are)."""
    return DATA


@pytest.fixture
def saved_checkpoints(monkeypatch) -> list[dict]:
    """Every state ``hmmjax.sweep.checkpoint.save_checkpoint`` writes during the test, in order (the
    file is still written), so a test can put back an earlier one, as if killed there."""
    from hmmjax.sweep import engine

    saved: list[dict] = []
    real = engine.save_checkpoint

    def keep(path, state):
        saved.append(dict(state))
        real(path, state)

    monkeypatch.setattr(engine, "save_checkpoint", keep)
    return saved


@pytest.fixture
def realised_steps(monkeypatch) -> list[tuple[int, ...]]:
    """The step axes (all but the last two) of the normals of every
    ``AbstractDataModel.realise`` call during the test, at trace time: () for one step's
    samples made on their own (SGD's per-step inputs), (block,) for a whole block."""
    from hmmjax.data.base import AbstractDataModel

    seen: list[tuple[int, ...]] = []
    real = AbstractDataModel.realise

    def spy(self, normals):
        seen.append(normals[0].shape[:-2])
        return real(self, normals)

    monkeypatch.setattr(AbstractDataModel, "realise", spy)
    return seen
