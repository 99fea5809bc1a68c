"""ODEs for the learning curves of online SGD (THEORY.md section 5), solved with diffrax.

- ``iid``: Saad & Solla / Goldt et al. ODE for i.i.d. Gaussian inputs (5.1).
- ``hmm``: the hidden-manifold ODE over the spectral densities r(tau), sigma(tau) (5.2).
- ``solve``: fixed-step Euler with step-exact saves, adaptive Tsit5/Dopri; float64 by
  default in the ``solve_iid`` / ``solve_hmm`` entry points.
"""

from hmmjax.ode.hmm import (
    HMMArgs,
    HMMState,
    hmm_observables,
    hmm_overlaps,
    hmm_problem,
    hmm_rhs,
    hmm_state_from_npz,
)
from hmmjax.ode.iid import IIDArgs, IIDState, Observables, iid_observables, iid_rhs
from hmmjax.ode.solve import SOLVERS, Solution, euler_steps, solve, solve_hmm, solve_iid

__all__ = [
    "SOLVERS",
    "HMMArgs",
    "HMMState",
    "IIDArgs",
    "IIDState",
    "Observables",
    "Solution",
    "euler_steps",
    "hmm_observables",
    "hmm_overlaps",
    "hmm_problem",
    "hmm_rhs",
    "hmm_state_from_npz",
    "iid_observables",
    "iid_rhs",
    "solve",
    "solve_hmm",
    "solve_iid",
]
