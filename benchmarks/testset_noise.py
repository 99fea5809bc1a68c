"""The sampling error of the Monte Carlo test error, against the closed-form eg.

A run's ``eg_mc`` is the error on one test set of ``run.test_size`` samples, drawn once and
shared by the members of an ensemble, so its sampling error is the same at every recording
time and is not in the spread over members. This script measures that error where it is
known exactly: at t = 0, for the students of a config (member 0, its seed), it draws
``--sets`` fresh test sets of ``--size`` samples (independent keys, not the run's) and
compares their errors with the students' closed-form eg (``eg_analytic``, the Gaussian
formula of the order parameters). It reports the mean relative difference with its standard
error (a bias of the test error or of the formula) and the standard deviation of one set's
error (the noise of one run's test-set column; a set of n samples has about that of size
``--size`` times sqrt(size / n)).

    python benchmarks/testset_noise.py [--config configs/large_n.toml] [--log2n 14]
        [--sets 32] [--size 500]

``--log2n``: N = 2^n and D = N / 2 (as in ``benchmarks/features_fidelity.py``); without it
the config's own N and D.
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import numpy as np

from hmmjax.config import load_config
from hmmjax.observables.metrics import analytic_available, eg_analytic, eg_mc
from hmmjax.sweep.setup import build, numerics

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine  # noqa: E402

HEADER = ("| config | N | D | test sets | samples each | mean / eg - 1 (s.e.) | one set's sd |\n"
          "|---|---|---|---|---|---|---|")  # fmt: skip


def measure(config: str, log2n: int | None, sets: int, size: int, seed: int = 12345) -> dict:
    """The relative errors of ``sets`` fresh test sets of ``size`` samples at t = 0."""
    overrides = [] if log2n is None else [f"data.N={2**log2n}", f"data.D={2 ** (log2n - 1)}"]
    cfg = load_config(config, overrides)
    with numerics(cfg):
        setup = build(cfg, test=False)  # the run's model and students, no test set
        student = jax.tree.map(lambda a: a[0], setup.students)
        model = setup.model if cfg.data.shared else jax.tree.map(lambda a: a[0], setup.model)
        if not analytic_available(student, model):
            raise SystemExit(f"testset_noise: {config}: no closed-form eg for this data model "
                             "and activation (erf or linear students, mu0 = 0 manifolds)")
        exact = float(eg_analytic(student, model))
        one_set = jax.jit(lambda key: eg_mc(student, model.sample(key, size, noise=False)))
        errors = np.array([float(one_set(k)) for k in jax.random.split(jax.random.key(seed), sets)])
    rel = errors / exact - 1
    return {"config": config, "N": cfg.data.N, "D": cfg.data.D, "sets": sets, "size": size,
            "eg": exact, "mean": rel.mean(), "se": rel.std(ddof=1) / np.sqrt(sets),
            "sd": rel.std(ddof=1)}  # fmt: skip


def row(m: dict) -> str:
    return (f"| {m['config']} | {m['N']} | {m['D']} | {m['sets']} | {m['size']} | "
            f"{100 * m['mean']:+.2f}% ({100 * m['se']:.2f}%) | {100 * m['sd']:.2f}% |")  # fmt: skip


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/large_n.toml")
    ap.add_argument("--log2n", type=int, help="N = 2^n, D = N / 2 (default: the config's)")
    ap.add_argument("--sets", type=int, default=32, help="fresh test sets")
    ap.add_argument("--size", type=int, default=500, help="samples in each")
    args = ap.parse_args(argv)
    if args.sets < 2 or args.size < 1:
        ap.error(f"--sets must be at least 2 and --size at least 1 (got {args.sets}, {args.size})")
    line = row(measure(args.config, args.log2n, args.sets, args.size))
    print(f"{machine()}; jax {jax.__version__}\n{HEADER}\n{line}")
    return line


if __name__ == "__main__":
    main()
