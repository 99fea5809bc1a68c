"""The accelerator benchmark runs end to end at tiny sizes (on the CPU here)."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


ALL_CASES = ["ensemble", "grid", "ode-fixed", "ode-auto", "large-ensemble", "large-grid"]


@pytest.mark.parametrize(
    "cases",
    [["ensemble", "ode-auto"], pytest.param(ALL_CASES, marks=pytest.mark.slow)],
)
def test_gpu_benchmark_runs_at_tiny_sizes(monkeypatch, cases):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    sys.modules.pop("gpu", None)
    import gpu  # benchmarks/gpu.py

    only = [] if cases == ALL_CASES else ["--only", *cases]
    lines = gpu.main(["--tiny", *only])
    rows = [ln for ln in lines if ln.startswith("| ") and not ln.startswith(("| case", "| ---"))]
    assert [r.split("|")[1].strip() for r in rows] == cases
    for row in rows:
        cells = [c.strip() for c in row.split("|")[2:-1]]
        assert float(cells[0]) > 0 and float(cells[1]) > 0  # first and second call (s)
        if row.startswith("| ode"):
            assert cells[5].startswith("p = ")
        else:  # student-steps/s, GFLOP/s and share of peak are numbers
            assert float(cells[2].replace(",", "")) > 0 and float(cells[3].replace(",", "")) > 0
            assert float(cells[4].rstrip("%")) > 0


def test_features_benchmark_runs_at_tiny_sizes(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    sys.modules.pop("features", None)
    import features  # benchmarks/features.py

    rows = features.main(["--tiny"])
    assert [r.split("|")[2].strip() for r in rows] == ["gaussian", "dct", "hadamard"]
    for row in rows:  # student-steps/s > 0; MFLOP per step and share of peak are numbers
        cells = [c.strip() for c in row.split("|")[3:-1]]  # (rounded: 0.00 at N = 2^6)
        assert float(cells[0].replace(",", "")) > 0
        assert float(cells[1]) >= 0 and float(cells[2].rstrip("%")) >= 0


def test_testset_noise_benchmark_runs_at_tiny_sizes(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    sys.modules.pop("testset_noise", None)
    import testset_noise  # benchmarks/testset_noise.py

    line = testset_noise.main(["--config", str(ROOT / "configs" / "large_n.toml"),
                               "--log2n", "6", "--sets", "3", "--size", "20"])  # fmt: skip
    cells = [c.strip() for c in line.split("|")[1:-1]]
    assert cells[1:5] == ["64", "32", "3", "20"]
    assert float(cells[5].split("%")[0]) != 0 and float(cells[6].rstrip("%")) > 0


def test_sweep_profile_runs_at_tiny_sizes(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    sys.modules.pop("profile_sweep", None)
    import profile_sweep  # benchmarks/profile_sweep.py

    lines = profile_sweep.main(["--tiny", "--case", "ensemble", "--t", "2", "--top", "3"])
    heads = [ln for ln in lines if ln.startswith("## t = 2.0: first call")]
    assert len(heads) == 1 and float(heads[0].split("second ")[1].split()[0]) > 0
    assert any("driver.py" in ln and "(simulate)" in ln for ln in lines)  # cProfile's table
    totals = [float(ln.split(": ")[1].split()[0]) for ln in lines if " operation names" in ln]
    assert totals and max(totals) > 0  # the trace's operations, per process


def test_concurrency_benchmark_runs_at_tiny_sizes(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    # its import (through benchmarks/online.py) adds host devices to XLA_FLAGS: restored
    # after the test, so that later tests' subprocesses do not inherit them
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    sys.modules.pop("concurrency", None)
    import concurrency  # benchmarks/concurrency.py

    text = concurrency.main(["--tiny"])
    heads = ("| case", "| layout", "| ---")
    rows = [ln.split("|")[1:-1] for ln in text.splitlines()
            if ln.startswith("| ") and not ln.startswith(heads)]  # fmt: skip
    loops = [r for r in rows if len(r) == 4]
    assert [r[0].strip() for r in loops][:3] == [
        "one loop",
        "two independent loops, one program, one device",
        "two programs dispatched together, one device",
    ]
    assert float(loops[0][2]) == 1.0 and all(float(r[1]) > 0 and float(r[3]) > 0 for r in loops)
    engine = [r for r in rows if len(r) == 3]
    names = [r[0].strip() for r in engine]
    assert names[:3] == ["one device, 1 group", "one device, 2 groups",
                         "one device, the engine's 2 member parts"]  # fmt: skip
    assert names[-1] == "one device" and engine[-1][1].strip() == "1"
    assert all(float(r[2].replace(",", "")) > 0 for r in engine)  # student-steps/s
