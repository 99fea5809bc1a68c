"""Issue 15, "nothing lost, nothing unclear": each reproduction of the issue as a test
(seeds, huge t_max, the memory plan and its message, checkpoints validated before any
work, one validation path for ``hmmjax config`` and ``hmmjax run``), and the measured
memory plan against the measured peak of real runs (each in its own process)."""

import re
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import small_config

from hmmjax.cli import main
from hmmjax.config import ConfigError, load_config
from hmmjax.core.rng import seed_key
from hmmjax.experiments import driver
from hmmjax.experiments.driver import simulate
from hmmjax.sweep.lanes import build_lanes, point_configs
from hmmjax.sweep.memory import RUNTIME_BYTES, SAFETY, measure_footprint, plan_grid
from hmmjax.sweep.setup import run_keys

ROOT = Path(__file__).resolve().parents[1]
QUICK = str(ROOT / "configs" / "quickstart.toml")


def _error(capsys, argv) -> str:
    """Run the CLI, expect exit code 2 with one line "hmmjax: error: ..."; return it."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hmmjax: error: "), err
    return err[0]


# --- seeds ----------------------------------------------------------------------------


def test_seed_keys_are_jax_keys_below_2_32_and_distinct_above():
    for seed in (0, 5, 2**31, 2**32 - 1):
        np.testing.assert_array_equal(seed_key(seed), jax.random.PRNGKey(seed))
    with jax.enable_x64(True):  # where PRNGKey takes 64-bit seeds, it agrees there too
        for seed in (2**32, 2**40 + 7, 2**63 - 1):
            np.testing.assert_array_equal(seed_key(seed), jax.random.PRNGKey(seed))
    keys = {tuple(np.asarray(seed_key(s)).tolist()) for s in (0, 1, 2**32, 2**32 + 1, 2**64 - 1)}
    assert len(keys) == 5


def test_seed_2_32_is_not_seed_0():
    a, b = (run_keys(small_config(run={"seed": s})) for s in (0, 2**32))
    assert not np.array_equal(a.streams, b.streams) and not np.array_equal(a.data, b.data)


@pytest.mark.parametrize("seed", [-1, 2**64, 2**70])
def test_seeds_outside_the_range_are_refused(seed):
    with pytest.raises(
        ConfigError, match=r"^run.seed = -?\d+: expected an integer 0 <= seed < 2\^64$"
    ):
        small_config(run={"seed": seed})


def test_grid_of_seeds_0_and_2_32_has_two_different_points():
    cfg = small_config(run={"ensemble": 1, "t_max": 1.0}, grid={"seed": [0, 2**32]})
    ds = simulate(cfg, progress=False)
    eg = ds.eg_mc.values.reshape(2, -1)
    assert not np.allclose(eg[0], eg[1])


# --- huge values, one validation path ---------------------------------------------------


@pytest.mark.parametrize("t_max", ["1e300", "1e17"])
def test_huge_t_max_is_refused_before_any_work(capsys, t_max):
    line = _error(capsys, ["run", QUICK, "--set", f"run.t_max={t_max}"])
    assert "run.t_max = " in line and "expected run.t_max < 5.47827e+06" in line


@pytest.mark.parametrize(
    "axis", ["grid.alpha=[0.1, 1.0]", "grid.P=[10, 20]", 'grid.labels=["teacher"]']
)
def test_config_and_run_refuse_the_same_grid_axes(capsys, axis):
    name = axis.split("=")[0]
    checked = _error(capsys, ["config", QUICK, "--set", axis])
    ran = _error(capsys, ["run", QUICK, "--set", axis])
    assert checked == ran and f"{name}: not an axis of online runs" in ran


def test_mixing_invariant_and_other_models_is_a_config_error():
    with pytest.raises(ConfigError, match=r'grid.model = \["hmm", "stripe"\]: invariant'):
        load_config(QUICK, ['grid.model=["hmm", "stripe"]'])


# --- memory plan ----------------------------------------------------------------------

GRID = {"data": {"N": 60, "D": 12}, "run": {"test_size": 400, "block": 7},
        "grid": {"lr": [0.1, 0.2, 0.3]}}  # fmt: skip


def test_memory_refusal_names_a_need_above_what_is_available():
    with pytest.raises(ConfigError) as err:
        simulate(small_config(GRID, run={"memory_gib": 0.05, "block": 7}), progress=False)
    text = str(err.value)
    need = float(re.search(r"needs about ([\d.e+-]+) GiB", text).group(1))
    have = float(re.search(r"the ([\d.e+-]+) GiB available", text).group(1))
    assert need > have == 0.05 and text.startswith("run.memory_gib: ")
    assert "\n" not in text
    # what an online run can reduce includes the samples a block draws (B per step)
    assert text.endswith("reduce the grid, run.ensemble, run.n_times, run.test_size, "
                         "sgd.batch, run.block or raise run.memory_gib")  # fmt: skip


def test_the_run_reuses_the_compilation_of_the_plan(monkeypatch, caplog, no_disk_cache):
    """The chunk and the first measurement are compiled while planning, before the engine
    (and its progress bar) starts, and the engine reuses them: no compilation of either
    inside the engine, and one measurement program for all the lanes (two seeds: two
    lanes of three learning rates)."""
    real, marks = driver.run_points, []

    def engine(*args, **kwargs):
        marks.append(len(caplog.records))
        out = real(*args, **kwargs)
        marks.append(len(caplog.records))
        return out

    def compiles(records, name) -> int:
        return sum(f"XLA compilation of jit({name})" in r.getMessage() for r in records)

    monkeypatch.setattr(driver, "run_points", engine)
    with caplog.at_level("WARNING"), jax.log_compiles(True):
        cfg = small_config(GRID, run={"block": 5, "devices": 1},
                           grid={"lr": [0.1, 0.2, 0.3], "seed": [0, 1]})  # fmt: skip
        ds = simulate(cfg, progress=False)
    assert "in 1 batch(es) of 2 lanes on 1 device(s)" in ds.attrs["plan"]  # two lanes
    before, inside = caplog.records[: marks[0]], caplog.records[marks[0] : marks[1]]
    for name in ("_points_chunk", "measure_lane"):
        assert (compiles(before, name), compiles(inside, name)) == (1, 0), name
    assert ds.attrs["memory_need_gib"] > 0 and "needed (measured)" in ds.attrs["plan"]


def test_plan_batches_a_grid_that_does_not_fit_whole():
    # many members, small test set: the chunk's temporaries (blocks of data per member)
    # outweigh the lanes, so that smaller batches need less
    wide = {"data": {"N": 200, "D": 50}, "run": {"ensemble": 64, "test_size": 50, "block": 63}}
    cfgs = point_configs(small_config(wide, grid={"seed": [0, 1, 2, 3, 4]}))  # 5 lanes
    devices = jax.local_devices()[:1]
    shapes = jax.eval_shape(lambda: build_lanes(cfgs, {}))
    foot = measure_footprint(shapes, cfgs, "online")
    options = dict(n_records=9, keep_setups=False, chunk=3, shared=True, block=63,
                   same_steps=True, what="the grid")  # fmt: skip
    whole = plan_grid(shapes, foot, 2**40, devices, **options)
    assert whole.batch == 5 and whole.n_batches == 1
    tight = plan_grid(shapes, foot, whole.need_bytes - 1, devices, **options)
    assert tight.batch < 5 and tight.need_bytes <= whole.need_bytes - 1
    assert whole.need_bytes >= SAFETY * (RUNTIME_BYTES + foot.lanes)
    with pytest.raises(ConfigError, match="run.memory_gib: the grid needs about"):
        plan_grid(shapes, foot, int(SAFETY * RUNTIME_BYTES), devices, **options)


# --- checkpoints ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A config file and the checkpoint its run leaves (simulate keeps it)."""
    folder = tmp_path_factory.mktemp("ckpt")
    cfg = small_config({"sgd": {"lr": 0.5}, "run": {"devices": 1}},
                       output={"out": str(folder / "r.nc")})  # fmt: skip
    toml = folder / "c.toml"
    toml.write_text(cfg.to_toml())
    ckpt = folder / "r.nc.ckpt.npz"
    simulate(cfg, progress=False, checkpoint=ckpt)
    return toml, ckpt, ckpt.read_bytes()


@pytest.fixture
def no_work(monkeypatch):
    """Any planning (compilation) fails the test: errors must come before it."""

    def planned(*args, **kwargs):
        raise AssertionError("the run went on to plan (compile) before refusing")

    monkeypatch.setattr(driver, "_plan", planned)


@pytest.mark.parametrize(
    "how, words",
    [
        (lambda b: b[: len(b) // 2], "cannot be read (a damaged or truncated zip archive"),
        (lambda b: b"", "cannot be read (the file is empty)"),
        (lambda b: b"hello, world\n", "cannot be read (it starts with 68 65 6c 6c, not with"),
    ],
    ids=["truncated", "empty", "text"],
)
def test_a_damaged_checkpoint_is_refused_before_any_work(capsys, written, no_work, how, words):
    toml, ckpt, good = written
    ckpt.write_bytes(how(good))
    line = _error(capsys, ["run", str(toml), "-q"])
    assert f"checkpoint {ckpt} {words}" in line and line.endswith(
        "run with --fresh to discard it and start afresh"
    )


def test_a_checkpoint_of_another_config_names_the_keys_that_differ(capsys, written, no_work):
    toml, ckpt, good = written
    ckpt.write_bytes(good)
    line = _error(capsys, ["run", str(toml), "-q", "--set", "sgd.lr=0.2", "--set", "run.seed=3"])
    assert (
        "belongs to a different config: run.seed (0 there, 3 here), sgd.lr (0.5 there, 0.2 here)"
        in line
    )
    assert "--fresh" in line


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda s: s.pop("net_0"), "is incomplete"),
        (lambda s: s.update(format=np.asarray(1)), "was written by another version of hmmjax"),
        (lambda s: s.clear() or s.update(a=np.arange(3)), "is not a checkpoint of hmmjax"),
    ],
    ids=["incomplete", "old-format", "foreign"],
)
def test_an_incomplete_or_foreign_checkpoint_is_refused(capsys, written, no_work, change, words):
    toml, ckpt, good = written
    _changed(ckpt, good, change)
    line = _error(capsys, ["run", str(toml), "-q"])
    assert f"checkpoint {ckpt} {words}" in line and "--fresh" in line


def _changed(ckpt, good: bytes, change) -> None:
    """Write the checkpoint ``good`` (its bytes) to ``ckpt`` with ``change`` applied to
    its arrays (a dict, changed in place)."""
    ckpt.write_bytes(good)
    with np.load(ckpt) as z:
        state = {k: z[k] for k in z.files}
    change(state)
    with open(ckpt, "wb") as fh:
        np.savez(fh, **state)


def test_fresh_replaces_a_damaged_checkpoint(capsys, written, tmp_path):
    toml, ckpt, good = written
    ckpt.write_bytes(b"junk")
    out = tmp_path / "fresh.nc"
    own = out.with_name("fresh.nc.ckpt.npz")
    own.write_bytes(b"junk")
    assert main(["run", str(toml), "-q", "--fresh", "--out", str(out)]) == 0
    assert out.exists() and not own.exists()


# --- the measured plan against real runs ------------------------------------------------------


def _measure(name: str) -> dict:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import memory  # benchmarks/memory.py: one grid in a fresh process
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    config, overrides = memory.GRIDS[name] if name in memory.GRIDS else SMALL_GRID
    return memory.measure(config, overrides)


SMALL_GRID = ("configs/quickstart.toml",
              ["data.N=1000", "data.D=500", "run.test_size=10000", "run.ensemble=4",
               "data.shared=false", "run.t_max=0.2", "grid.lr=[0.1, 0.2]"])  # fmt: skip


def _check(result: dict) -> None:
    """The measured peak is within the estimate, and the estimate is not idle (the
    measured bytes drive it: the peak is at least half of it)."""
    assert result["peak"] <= result["estimate"], result
    assert result["peak"] >= 0.5 * result["estimate"], result


_HLO = """\
%fused_computation.1 (param_0: f32[4,8], param_1: f32[8,16]) -> f32[4] {
  %param_0 = f32[4,8]{1,0} parameter(0)
  %param_1 = f32[8,16]{1,0} parameter(1)
  %dot.1 = f32[4,16]{1,0} dot(%param_0, %param_1), lhs_contracting_dims={1}, DIMS
  %constant = f32[] constant(0)
  ROOT %reduce.1 = f32[4]{0} reduce(%dot.1, %constant), dimensions={1}, to_apply=%add
}

%fused_computation.2 (param_0.1: f32[4,8], param_1.1: f32[8,16]) -> f32[4,16] {
  %param_0.1 = f32[4,8]{1,0} parameter(0)
  %param_1.1 = f32[8,16]{1,0} parameter(1)
  ROOT %dot.2 = f32[4,16]{1,0} dot(%param_0.1, %param_1.1), lhs_contracting_dims={1}, DIMS
}

ENTRY %main.3 (a: f32[4,8], b: f32[8,16]) -> (f32[4], f32[4,16], f32[4]) {
  %a = f32[4,8]{1,0} parameter(0)
  %b = f32[8,16]{1,0} parameter(1)
  %ynn_fusion = f32[4]{0} fusion(%a, %b), kind=kCustom, calls=%fused_computation.1, YNN
  %ynn_fusion.1 = f32[4,16]{1,0} fusion(%a, %b), kind=kCustom, calls=%fused_computation.2, YNN
  %fusion = f32[4]{0} fusion(%a, %b), kind=kLoop, calls=%fused_computation.1
  ROOT %tuple = (f32[4]{0}, f32[4,16]{1,0}, f32[4]{0}) tuple(%ynn_fusion, %ynn_fusion.1, %fusion)
}
""".replace("DIMS", "rhs_contracting_dims={0}").replace(
    "YNN", 'backend_config={"fusion_config":{"kind":"__ynn_fusion"}}'
)  # XLA:CPU's HLO text, shortened


def test_products_inside_library_fusions_are_counted():
    """A YNNPACK fusion that reduces a product it computes holds the product in memory
    XLA does not account for: counted (4 x 16 float32); a product that is the fusion's
    result (XLA's buffer) and a fusion of XLA's own are not."""
    from hmmjax.sweep.memory import fused_product_bytes

    assert fused_product_bytes(_HLO) == 4 * 16 * 4
    assert fused_product_bytes(_HLO.replace("__ynn_fusion", "__other")) == 0


@pytest.mark.default_codegen  # the plan of users' programs
def test_measured_peak_is_within_the_estimate():
    _check(_measure("small unshared grid"))


@pytest.mark.default_codegen
@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    ["online, shared data, 3 lr", "unshared data, 2 lr", "finite set, 2 K", "large N",
     "ODE and simulation", "several shapes: N x K", "invariant stripe"],
)  # fmt: skip
def test_measured_peak_is_within_the_estimate_for_every_kind_of_grid(name):
    _check(_measure(name))


def test_the_issues_grid_that_was_killed_is_refused_before_any_work():
    """Issue 15's example (N = 4000, D = 2000, 20000 test samples, 8 unshared members),
    over 2 seeds: once approved at 7.68 GiB a point and killed by the kernel after
    minutes; now refused from shapes and compiled programs alone, nothing drawn. (Over 2
    learning rates, as in issue 15, the points now share one data stream and fit.)"""
    cfg = load_config(QUICK, ["data.N=4000", "data.D=2000", "run.test_size=20000",
                              "run.ensemble=8", "data.shared=false", "grid.seed=[0, 1]",
                              "run.t_max=0.2", "run.memory_gib=16"])  # fmt: skip
    with pytest.raises(ConfigError, match=r"needs about \d\d\.\d GiB \(measured: the 2 lanes "):
        simulate(cfg, progress=False)


def test_histories_that_cannot_fit_are_refused_before_compiling(monkeypatch):
    """The histories of every point stay on the host whatever the batch: when they alone
    break the budget the plan says so at once (no chunk compiled per smaller batch)."""
    from hmmjax.sweep import memory

    def compiled(*args, **kwargs):
        raise AssertionError("a chunk was compiled")

    monkeypatch.setattr(memory, "chunk_bytes", compiled)
    cfg = small_config({"data": {"N": 60, "D": 10}, "student": {"K": 30}, "teacher": {"M": 30}},
                       run={"ensemble": 64, "n_times": 100, "t_max": 10.0, "memory_gib": 0.33},
                       grid={"seed": [0, 1, 2, 3]})  # fmt: skip
    with pytest.raises(ConfigError, match=r"histories of \d+ records \(run.n_times\) 0\.\d+ GiB"):
        simulate(cfg, progress=False)


# --- checkpoints that pass the fingerprint but do not fit the run ----------------------------


@pytest.fixture
def no_training(monkeypatch):
    """Any chunk of training fails the test: a refusal must come before it."""
    from hmmjax.sweep import engine

    def chunk(*args, **kwargs):
        raise AssertionError("the run went on to train before refusing")

    monkeypatch.setattr(engine, "compiled_chunk", lambda *args, **kwargs: chunk)


def _shorter_records(s):
    s["cur_eg"] = s["cur_eg"][:, :, :-1]


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda s: s.update(chunk=np.asarray(99)),
         "chunk 99, but a batch of this run has 3 chunk(s) (0 .. 3 done)"),
        (lambda s: s.update(batch=np.asarray(5)),
         "batch 5, but this run has 1 batch(es) (0 .. 0)"),
        (lambda s: s.update(net_0=s["net_0"][..., :-1]),
         "net_0 is (1, 1, 2, 2, 29) float32, this run needs (1, 1, 2, 2, 30) float32"),
        (_shorter_records,
         "cur_eg holds 9 record(s), but 3 chunk(s) done need 10 (one at the start, 3 per chunk)"),
        (lambda s: s.pop("net_1"),
         "1 state array(s) net_0 .., but the students of this run have 2"),
        (lambda s: s.update(chunk=np.asarray(-3)),
         "chunk = -3, expected an index (a whole number >= 0)"),
        (lambda s: s.update(net_dead=s["net_dead"].astype(np.float32)),
         "net_dead is (1, 1, 2) float32, this run needs (1, 1, 2) bool"),
        (lambda s: s.pop("cur_dead"), "no cur_dead in the history"),
        (lambda s: s.update(done_eg=s["cur_eg"]),
         "batch 0, but a history of finished batches (done_*)"),
        (lambda s: s.update(plan=np.asarray([0, 1])),
         "plan = [0, 1], expected [lanes per batch, devices]: whole numbers >= 1, the first "
         "a multiple of the second"),
    ],
    ids=["chunk-99", "batch-5", "net_0-shape", "cur_eg-short", "no-net_1", "chunk--3",
         "dead-float", "no-cur_dead", "done-at-batch-0", "plan-0"],
)  # fmt: skip
def test_a_checkpoint_that_does_not_fit_the_run_is_refused_before_any_work(
    capsys, written, no_work, no_training, change, words
):
    """Arrays changed behind the fingerprint's back: one line naming the file and what
    is wrong, with the way out; nothing compiled nor trained, the checkpoint left as it
    was."""
    toml, ckpt, good = written
    _changed(ckpt, good, change)
    bad = ckpt.read_bytes()
    line = _error(capsys, ["run", str(toml), "-q"])
    assert line == (f"hmmjax: error: checkpoint {ckpt} is inconsistent: {words}; "
                    "run with --fresh to discard it and start afresh")  # fmt: skip
    assert ckpt.read_bytes() == bad


# --- the multi-host options -------------------------------------------------------------


@pytest.fixture
def no_cluster(monkeypatch):
    """No cluster environment for jax.distributed to detect, and no distributed run:
    jax.distributed.initialize records its arguments and stops the command."""
    import os

    for var in list(os.environ):
        if var.startswith(("SLURM_", "OMPI_", "TPU_", "MEGASCALE_", "JAX_COORDINATOR")) or (
            var == "KUBERNETES_SERVICE_HOST"
        ):
            monkeypatch.delenv(var)
    calls = []

    class Started(Exception):
        pass

    def initialize(**kwargs):
        calls.append(kwargs)
        raise Started

    monkeypatch.setattr(jax.distributed, "initialize", initialize)
    return calls, Started


SLURM = {"SLURM_JOB_ID": "4321", "SLURM_STEP_NODELIST": "node1", "SLURM_NTASKS": "2",
         "SLURM_PROCID": "1", "SLURM_LOCALID": "0"}  # fmt: skip


@pytest.mark.parametrize(
    "flags, env, words",
    [
        (["--num-processes", "2", "--process-id", "5", "--coordinator", "127.0.0.1:12345"], {},
         "--process-id 5: expected 0 .. 1 for --num-processes 2"),
        ([], {}, "--distributed: --coordinator, --num-processes, --process-id not given, and "
                 "no cluster detected to supply them (SLURM, Open MPI, Cloud TPU, Kubernetes); "
                 "give --coordinator HOST:PORT --num-processes N --process-id I"),
        (["--coordinator", "nonsense", "--num-processes", "1", "--process-id", "0"], {},
         "--coordinator 'nonsense': expected HOST:PORT, the host of process 0 and a free "
         "port 1..65535 (e.g. host0:12345)"),
        (["--coordinator", "host0:0", "--num-processes", "1", "--process-id", "0"], {},
         "--coordinator 'host0:0': expected HOST:PORT"),
        (["--coordinator", "host0:1", "--num-processes", "0", "--process-id", "0"], {},
         "--num-processes 0: expected a number of processes >= 1"),
        (["--process-id", "-1"], {}, "--process-id -1: expected a process id 0 .. N-1"),
        (["--num-processes", "2"], {},
         "--distributed: --coordinator, --process-id not given, and no cluster detected"),
        ([], {"JAX_COORDINATOR_ADDRESS": "host0"},
         "JAX_COORDINATOR_ADDRESS 'host0': expected HOST:PORT"),
        (["--process-id", "5"], SLURM,
         "--process-id 5: expected 0 .. 1 for the number of processes 2 (from the cluster's "
         "environment)"),
    ],
    ids=["id-5-of-2", "nothing", "nonsense", "port-0", "no-process", "id--1", "no-coordinator",
         "env-address", "slurm-id-5"],
)  # fmt: skip
def test_wrong_or_missing_multi_host_options_are_one_line(
    capsys, monkeypatch, tmp_path, no_cluster, flags, env, words
):
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    out = ["--out", str(tmp_path / "r.nc")]
    line = _error(capsys, ["run", QUICK, "-q", *out, "--distributed", *flags])
    assert line.startswith(f"hmmjax: error: {words}")
    assert no_cluster[0] == []  # refused before jax.distributed.initialize


@pytest.mark.parametrize(
    "flags, env, called",
    [
        (["--coordinator", "127.0.0.1:12345", "--num-processes", "2", "--process-id", "1"], {},
         {"coordinator_address": "127.0.0.1:12345", "num_processes": 2, "process_id": 1}),
        ([], SLURM, {"coordinator_address": f"node1:{4321 % 4096 + 61440}",
                     "num_processes": 2, "process_id": 1}),
    ],
    ids=["named", "slurm"],
)  # fmt: skip
def test_right_multi_host_options_reach_jax_distributed(
    tmp_path, monkeypatch, no_cluster, flags, env, called
):
    """Given, or detected from the cluster's environment (SLURM here) as JAX does."""
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    calls, started = no_cluster
    with pytest.raises(started):
        main(["run", QUICK, "-q", "--out", str(tmp_path / "r.nc"), "--distributed", *flags])
    assert calls == [called]


def test_without_jaxs_cluster_detection_jax_checks_and_the_error_is_one_line(
    capsys, monkeypatch, tmp_path, no_cluster
):
    """Where JAX's detection (not public API) is missing, the options go to
    jax.distributed.initialize as given, and what it refuses is one line."""
    from jax._src import clusters

    monkeypatch.delattr(clusters.ClusterEnv, "auto_detect_unset_distributed_params")
    calls, _ = no_cluster

    def refuse(**kwargs):
        calls.append(kwargs)
        raise ValueError("coordinator_address should be defined.")

    monkeypatch.setattr(jax.distributed, "initialize", refuse)
    line = _error(capsys, ["run", QUICK, "-q", "--out", str(tmp_path / "r.nc"), "--distributed",
                           "--num-processes", "2"])  # fmt: skip
    assert line == "hmmjax: error: --distributed: coordinator_address should be defined."
    assert calls == [{"num_processes": 2}]
