"""ODEs for the learning curves of online SGD (THEORY.md section 5), solved with diffrax.

- ``iid``: Saad & Solla / Goldt et al. ODE for i.i.d. Gaussian inputs (5.1).
- ``hmm``: the hidden-manifold ODE over the spectral densities r(tau), sigma(tau) (5.2),
  full or compressed onto p spectral nodes (5.3).
- ``spectral``: nodes, Lagrange weights, aggregation of a sample (no eigenvectors), the
  Marchenko-Pastur limit N -> infinity.
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
    problem_from,
)
from hmmjax.ode.iid import IIDArgs, IIDState, Observables, iid_observables, iid_rhs
from hmmjax.ode.solve import (
    NODE_LADDER,
    SOLVERS,
    Solution,
    euler_steps,
    select_nodes,
    solve,
    solve_hmm,
    solve_hmm_limit,
    solve_hmm_sample,
    solve_hmm_state,
    solve_iid,
)
from hmmjax.ode.spectral import state_from_arrays

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
    "problem_from",
    "select_nodes",
    "solve_hmm_limit",
    "solve_hmm_sample",
    "solve_hmm_state",
    "state_from_arrays",
    "NODE_LADDER",
    "iid_observables",
    "iid_rhs",
    "solve",
    "solve_hmm",
    "solve_iid",
]
