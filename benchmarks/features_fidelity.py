"""Fidelity of the one-point ODE for structured feature matrices: simulation against theory.

For each N of ``--sizes``, manifold f of ``--f`` and feature kind of ``--features``:
HMM data (teacher on c), D = N / 2, K = M = 2, g = erf, lr ``--lr``, an ensemble of
``--ensemble`` members from the same initial weights (``run.same_init``), online SGD to
t = ``--t-max``, and the ODE on the single spectral point of F F^T / N = I (``hmmjax
simulate``, run.mode = "both"). Reported at late times (the mean over the record times in
the last quarter of the run, t >= 0.75 t_max):

- ``sim (order params) / ODE - 1``: eg from each member's order parameters Q, R, T
  (the Gaussian formula), averaged over members, against the ODE; its standard error over
  members;
- ``sim (test set) / ODE - 1``: the Monte Carlo test error on ``--test-size`` fresh samples
  (no Gaussian assumption; its sampling error is shared by the members, so only the
  member-to-member part is in the standard error).

    python benchmarks/features_fidelity.py [--sizes 14] [--write] [--checkpoint-dir DIR]

With ``--checkpoint-dir`` (for N = 2^17: hours on a CPU) every run checkpoints after each
recording interval into DIR and resumes from it when the same command runs again; a
finished run leaves its row there, so a later call reports it without running it again.
The time and rate of a run that was resumed cover only its last process (marked).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import sys
import time
from pathlib import Path

import jax
import numpy as np

from hmmjax.config import config_from_dict
from hmmjax.experiments.driver import simulate

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine, write_section  # noqa: E402


def run(n: int, f: str, kind: str, args) -> str:
    """The table row of one run (from DIR when ``--checkpoint-dir`` already holds it)."""
    N = 1 << n
    ckpt = done = None
    if args.checkpoint_dir is not None:
        folder = Path(args.checkpoint_dir)
        folder.mkdir(parents=True, exist_ok=True)
        tag = (f"2^{n}-{f}-{kind}-lr{args.lr:g}-t{args.t_max:g}-n{args.n_times}"
               f"-E{args.ensemble}-test{args.test_size}-block{args.block}")  # fmt: skip
        ckpt, done = folder / f"{tag}.ckpt.npz", folder / f"{tag}.row"
        if done.exists():
            return done.read_text().strip()
    resumed = ckpt is not None and ckpt.exists()
    # one recording interval per compiled call when checkpointing: a checkpoint each
    chunk = {} if ckpt is None else {"chunk": 1}
    cfg = config_from_dict(
        {
            "data": {"model": "hmm", "N": N, "D": N // 2, "f": f, "features": kind},
            "teacher": {"M": 2},
            "student": {"K": 2, "g": "erf"},
            "sgd": {"lr": args.lr},
            "run": {"mode": "both", "same_init": True, "t_max": args.t_max,
                    "n_times": args.n_times, "ensemble": args.ensemble,
                    "test_size": args.test_size, "block": args.block, "devices": 1, **chunk},
        }
    )  # fmt: skip
    t0 = time.perf_counter()
    ds = simulate(cfg, progress=args.progress, checkpoint=ckpt)
    elapsed = time.perf_counter() - t0
    t = ds.t.values
    late = t >= 0.75 * args.t_max
    ode = float(np.mean(ds.eg_ode.values[late]))
    cells = []
    for name in ("eg", "eg_mc"):
        per_member = np.mean(ds[name].values[:, late], axis=1) / ode - 1  # (E,)
        mean = float(np.mean(per_member))
        se = float(np.std(per_member, ddof=1) / math.sqrt(len(per_member)))
        cells.append(f"{100 * mean:+.2f}% ({100 * se:.2f}%)")
    rate = "resumed" if resumed else f"{args.ensemble * args.t_max * N / elapsed:,.0f}"
    time_cell = f"{elapsed:.0f} s" + (" (last process)" if resumed else "")
    row = f"| 2^{n} | {f} | {kind} | {ode:.5f} | {cells[0]} | {cells[1]} | {rate} | {time_cell} |"
    if done is not None:
        done.write_text(row + "\n")
        ckpt.unlink(missing_ok=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[14], help="log2 N")
    ap.add_argument("--f", nargs="+", default=["sign", "erf"], help="manifold non-linearities")
    ap.add_argument("--features", nargs="+", default=["hadamard", "dct"])
    ap.add_argument("--lr", type=float, default=0.3)
    ap.add_argument("--t-max", type=float, default=20.0)
    ap.add_argument("--n-times", type=int, default=40)
    ap.add_argument("--ensemble", type=int, default=8)
    ap.add_argument("--test-size", type=int, default=4000)
    ap.add_argument("--block", type=int, default=16)
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--checkpoint-dir", help="checkpoint each run here and resume (see above)")
    ap.add_argument("--write", action="store_true", help="write the table to RESULTS.md")
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        for f in args.f:
            for kind in args.features:
                row = run(n, f, kind, args)
                rows.append(row)
                print(row, flush=True)
    argv = " ".join(sys.argv[1:])
    table = "\n".join(
        [
            "Structured features: simulation against the one-point ODE, D = N / 2, K = M = 2, "
            f"g = erf, lr = {args.lr}, E = {args.ensemble} from the same initial weights, "
            f"t = {args.t_max:g}; late times t >= {0.75 * args.t_max:g}; test set "
            f"{args.test_size} samples. Relative differences (standard error over members).",
            "",
            f"Command: `python benchmarks/features_fidelity.py {argv}`; machine: {machine()}; "
            f"jax {jax.__version__}; {datetime.date.today().isoformat()}.",
            "",
            "| N | f | features | ODE eg (late) | sim (order params) / ODE - 1 | "
            "sim (test set) / ODE - 1 | student-steps/s | time |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print(table)
    if args.write:
        write_section("features-fidelity-" + "-".join(map(str, args.sizes)), table)


if __name__ == "__main__":
    main()
