"""The diffrax driver: fixed-step Euler (step-exact saves) and adaptive solvers.

``solve(rhs, observe, y0, args, ts, ...)`` integrates dy/dt = rhs(t, y, args) from t = 0
and returns ``observe(y(t), args)`` at the times ``ts``.

- ``solver="euler"``: forward Euler with step ``dt``, as the published integrators. Every
  save time must be a multiple of dt; the value saved at t is the state after exactly
  round(t / dt) Euler steps, with no interpolation. (diffrax's ``SaveAt(ts=...)`` would
  interpolate linearly inside a step, and a time accumulated as t + dt + dt + ... drifts
  off the grid.) The integration runs in step units s = t / dt, where step times are
  exact integers: one ``diffeqsolve`` per interval between save times, each saving its
  end point (``SaveAt(t1=True)``), scanned with ``lax.scan``.
- ``solver="tsit5" | "dopri5" | "dopri8"``: adaptive steps with a ``PIDController``
  (rtol, atol), saving at ``ts`` through the solver's dense interpolation.

Precision: ``solve_iid`` and ``solve_hmm`` run in float64 by default (``x64=True``): they
enter ``jax.enable_x64(True)`` for the duration of the call, so the ODE is float64 even if
the program runs in float32 otherwise; their results are float64 arrays. Reproducing the
reference integrator to 1e-5 over 1e4 Euler steps needs it. This works eagerly and under
``jax.vmap``. To wrap them in your own ``jax.jit`` (of a ``vmap`` in particular), enable
x64 around that call too (``with jax.enable_x64(True): jax.jit(f)(...)``): the float64
computation is otherwise lowered in a float32 context and fails with a dtype error. Also
create batched hyper-parameters (e.g. an array of learning rates) with x64 enabled: a
float32 0.1 differs from 0.1 by 1.5e-8. ``solve`` itself uses the dtype of ``y0``.

Everything is jit- and vmap-able: e.g. ``jax.vmap(lambda lr: solve_hmm(a, ts, lr=lr).eg)``.
Save times are taken as concrete (NumPy) values: the Euler step counts are fixed before
tracing.

No host callbacks: the compiled ODE is a program JAX's persistent compilation cache can
keep (``hmmjax.core.cache``), so a second run of a config loads it instead of compiling
it again. JAX does not write programs with host callbacks to the cache, and diffrax's
run-time checks are Equinox ``error_if`` callbacks: the checks of its arguments (save
times increasing and inside [t0, t1], which ``solve`` makes on the host before tracing;
the sign of dt0, positive by construction), and ``throw`` (the solver failed), which
``solve`` raises on the host after an eager call (``_solver_failed``; inside a caller's
jit, vmap or grad a failure is ``Solution.ok = False``). ``_host_checks_only`` turns
Equinox's checks off for the diffrax solves traced here, and for nothing else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jaxtyping import Array, Bool, Float, Int, PyTree

from hmmjax.core.integrals import G_NAMES
from hmmjax.core.schedules import AbstractSchedule, cast_schedule
from hmmjax.data.features import as_features
from hmmjax.ode.hmm import (
    OwnPart,
    check_arrays,
    check_physics,
    hmm_observables,
    hmm_observables_probed,
    hmm_rhs,
    problem_from,
    with_probe,
)
from hmmjax.ode.iid import IIDArgs, IIDState, iid_observables, iid_rhs
from hmmjax.ode.spectral import (
    Compressed,
    check_nodes,
    mp_initial_state,
    mp_nodes,
    mp_support,
    one_point,
    sample_eigenvalues,
    sample_moments,
    sample_state,
    state_from_arrays,
)

__all__ = [
    "NODE_LADDER",
    "PROBE_EXTRA",
    "SOLVERS",
    "Solution",
    "euler_steps",
    "node_error",
    "probe_size",
    "select_nodes",
    "solve",
    "solve_hmm",
    "solve_hmm_limit",
    "solve_hmm_sample",
    "solve_hmm_state",
    "solve_iid",
]

_ADAPTIVE = {"tsit5": dfx.Tsit5, "dopri5": dfx.Dopri5, "dopri8": dfx.Dopri8}
SOLVERS: tuple[str, ...] = ("euler", *_ADAPTIVE)


class Solution(eqx.Module):
    """Saved observables at times ``ts`` (leading axis: time)."""

    ts: Float[Array, " S"]
    eg: Float[Array, " S"]
    Q: Float[Array, "S K K"]
    R: Float[Array, "S K M"]
    v: Float[Array, "S K"]
    num_steps: Int[Array, ""]
    """Accepted solver steps (Euler: steps taken; adaptive: accepted steps)."""
    ok: Bool[Array, ""]
    """False if the solver failed (e.g. max_steps with throw=False) or eg is not finite."""
    points: int = eqx.field(static=True, default=0)
    """HMM ODE: the spectral points it ran on (D for the full ODE, p compressed)."""
    eg_probe: Float[Array, " S"] | None = None
    """HMM ODE with a probe (``solve_hmm_state(probe=...)``): the eg of the run's own
    trajectory averaged on the probe's finer nodes; its difference from ``eg``
    estimates the error of the run's nodes (``node_error``)."""


def euler_steps(ts: Any, dt: float) -> np.ndarray:
    """round(t / dt) for each save time; a ValueError if one is off the step grid."""
    ts = np.asarray(ts, dtype=np.float64)
    if ts.ndim != 1 or ts.size == 0:
        raise ValueError(f"save times must be a non-empty 1-d array; got shape {ts.shape}")
    n = np.rint(ts / dt)
    bad = np.abs(ts / dt - n) > 1e-6 * np.maximum(1.0, np.abs(n))
    if bad.any():
        raise ValueError(
            f"Euler saves whole steps: save times must be multiples of dt={dt}; "
            f"{ts[bad][:5].tolist()} are not"
        )
    n = n.astype(np.int64)
    if n[0] < 0 or np.any(np.diff(n) <= 0):
        raise ValueError("save times must be >= 0 and strictly increasing")
    return n


def _check_times(ts: Any) -> np.ndarray:
    ts = np.asarray(ts, dtype=np.float64)
    if ts.ndim != 1 or ts.size == 0 or ts[0] < 0 or np.any(np.diff(ts) <= 0):
        raise ValueError("save times must be a non-empty, strictly increasing 1-d array >= 0")
    return ts


@contextlib.contextmanager
def _host_checks_only():
    """Equinox's run-time checks (``error_if``) off while a diffrax solve is traced in
    this module: each is a host callback, and JAX's persistent cache does not keep a
    program with one (its ODE would compile again in every run). ``solve`` checks the
    arguments on the host and raises a failed solve after the call (``_solver_failed``).

    Equinox traces a check with array arguments through its jitted
    ``equinox._errors.branched_error_if_impl_jit``. For the duration of the context that
    name is the unjitted check with ``on_error = "off"`` (no callback). Equinox's mode
    (``EQX_ON_ERROR``) is left alone, and so is the jitted check's trace cache: a check
    traced outside the context, before or after, keeps the user's mode (setting the mode
    instead leaked through that cache, both ways). If a later Equinox has no such name,
    nothing is changed, and tests/test_ode.py::test_the_compiled_ode_has_no_host_callbacks
    fails. Not thread-safe: hmmjax traces on one thread."""
    errors = sys.modules.get("equinox._errors")
    impl = getattr(errors, "branched_error_if_impl", None)
    if impl is None or not hasattr(errors, "branched_error_if_impl_jit"):
        yield
        return

    def off(x, pred, index, msgs, *, on_error="default"):
        return impl(x, pred, index, msgs, on_error="off")

    before = errors.branched_error_if_impl_jit
    errors.branched_error_if_impl_jit = off
    try:
        yield
    finally:
        errors.branched_error_if_impl_jit = before


@eqx.filter_jit
def _solve_euler(rhs, observe, y0, args, starts, ends, dt, max_gap):
    def step_units(s, y, a):  # dy/ds = dt * rhs: one Euler step is exactly s -> s + 1
        return jax.tree_util.tree_map(lambda x: dt * x, rhs(s * dt, y, a))

    term = dfx.ODETerm(step_units)

    def chunk(y, interval):
        s0, s1 = interval
        with _host_checks_only():  # s0 <= s1 by construction; max_gap covers s1 - s0
            sol = dfx.diffeqsolve(
                term,
                dfx.Euler(),
                t0=s0,
                t1=s1,
                dt0=jnp.asarray(1.0, s0.dtype),
                y0=y,
                args=args,
                saveat=dfx.SaveAt(t1=True),
                stepsize_controller=dfx.ConstantStepSize(),
                max_steps=max_gap,
                throw=False,
            )
        y1 = jax.tree_util.tree_map(lambda x: x[0], sol.ys)
        done = sol.result == dfx.RESULTS.successful
        return y1, (observe(y1, args), sol.stats["num_steps"], done)

    _, (obs, nsteps, done) = jax.lax.scan(chunk, y0, (starts, ends))
    return obs, jnp.sum(nsteps), jnp.all(done)


@eqx.filter_jit
def _solve_adaptive(rhs, observe, y0, args, ts, solver, rtol, atol, max_steps, steer):
    norm = optx.rms_norm if steer is None else (lambda err: optx.rms_norm(steer(err)))
    with _host_checks_only():  # ts checked by ``_check_times``; a failure by ``solve``
        sol = dfx.diffeqsolve(
            dfx.ODETerm(rhs),
            solver,
            t0=jnp.zeros((), ts.dtype),
            t1=ts[-1],
            dt0=None,
            y0=y0,
            args=args,
            saveat=dfx.SaveAt(ts=ts, fn=lambda t, y, a: observe(y, a)),
            stepsize_controller=dfx.PIDController(rtol=rtol, atol=atol, norm=norm),
            max_steps=max_steps,
            throw=False,
        )
    return sol.ys, sol.stats["num_steps"], sol.result == dfx.RESULTS.successful


def _solver_failed(ok: Any, solver: str, t_end: float, max_steps: int) -> None:
    """The error ``throw`` asks for, raised on the host once an eager solve has run and
    its adaptive solver stopped early. Inside a caller's trace (jit, vmap, grad) the flag
    is not known yet: the failure then shows as ``Solution.ok = False`` (and non-finite
    values from where it stopped)."""
    if isinstance(ok, jax.core.Tracer) or bool(ok):
        return
    raise RuntimeError(
        f"the {solver} ODE solver stopped before t = {t_end:g} after max_steps = "
        f"{max_steps} adaptive steps (a diverging or very stiff run). Raise max_steps, or "
        "pass throw=False to get Solution.ok = False instead of this error"
    )


def solve(
    rhs: Callable[[Any, PyTree, Any], PyTree],
    observe: Callable[[PyTree, Any], Any],
    y0: PyTree,
    args: Any,
    ts: Any,
    *,
    solver: str = "euler",
    dt: float = 0.01,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int = 1_000_000,
    throw: bool = True,
    steer: Callable[[PyTree], PyTree] | None = None,
) -> Solution:
    """Integrate from t = 0 and save ``observe(y, args)`` (an ``Observables``) at ``ts``.

    ``solver``: "euler" (fixed ``dt``; ``ts`` multiples of dt, saved exactly after
    round(t/dt) steps) or an adaptive "tsit5", "dopri5", "dopri8" (``rtol``, ``atol``,
    at most ``max_steps`` steps; with ``throw=False`` a failed solve is not raised but
    flagged by ``Solution.ok = False``, useful inside large sweeps; called inside a
    caller's jit, vmap or grad, a failure is flagged the same way: it is known only once
    the program has run). A run whose eg is not finite (diverged) is flagged the same
    way. ``steer``: the part of the state whose error sets the adaptive steps (default:
    all of it), so that passive parts (a probe) do not change the steps.
    """
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; allowed: {', '.join(SOLVERS)}")
    dtype = jax.tree_util.tree_leaves(y0)[0].dtype
    if solver == "euler":
        n = euler_steps(ts, dt)
        starts = np.concatenate([[0], n[:-1]])
        # A bound on the steps per interval, rounded up so that runs with different
        # save times share one compiled function (it costs nothing at run time).
        max_gap = max(1024, 1 << int(np.max(n - starts) - 1).bit_length())
        obs, nsteps, ok = _solve_euler(
            rhs,
            observe,
            y0,
            args,
            jnp.asarray(starts, dtype),
            jnp.asarray(n, dtype),
            jnp.asarray(dt, dtype),
            max_gap,
        )
        t_saved = jnp.asarray(n * dt, dtype)
    else:
        ts_np = _check_times(ts)
        t_saved = jnp.asarray(ts_np, dtype)
        obs, nsteps, ok = _solve_adaptive(
            rhs,
            observe,
            y0,
            args,
            t_saved,
            _ADAPTIVE[solver](),
            rtol,
            atol,
            max_steps,
            steer,
        )
        if throw:
            _solver_failed(ok, solver, float(ts_np[-1]), max_steps)
    ok = ok & jnp.all(jnp.isfinite(obs.eg))
    return Solution(ts=t_saved, eg=obs.eg, Q=obs.Q, R=obs.R, v=obs.v, num_steps=nsteps, ok=ok,
                    eg_probe=getattr(obs, "eg_probe", None))  # fmt: skip


def solve_iid(
    Q: Any,
    R: Any,
    v: Any,
    T: Any,
    A: Any,
    ts: Any,
    *,
    lr: Any,
    kappa: Any = 0.0,
    noise: Any = 0.0,
    g: str = "erf",
    both: bool = False,
    x64: bool = True,
    schedule: AbstractSchedule | None = None,
    **solver_options: Any,
) -> Solution:
    """The i.i.d. ODE (docs/theory.md 5.1) from Q, R, v with constants T, A.

    ``lr`` (eta), ``kappa`` (weight decay) and ``noise`` (label noise std) may be traced:
    vmap over them. ``schedule``: a time-dependent rate eta(t) = lr * schedule(t)
    (``hmmjax.core.schedules``; differentiable in its arrays). ``solver_options`` go to
    ``solve`` (solver, dt, rtol, atol, ...).
    """
    if g not in G_NAMES:
        raise ValueError(f"the ODE needs g in {G_NAMES} (closed-form integrals); got {g!r}")
    with jax.enable_x64(x64):
        f = jnp.result_type(float)
        y0 = IIDState(Q=jnp.asarray(Q, f), R=jnp.asarray(R, f), v=jnp.asarray(v, f))
        args = IIDArgs(
            T=jnp.asarray(T, f),
            A=jnp.asarray(A, f),
            lr=jnp.asarray(lr, f),
            kappa=jnp.asarray(kappa, f),
            noise=jnp.asarray(noise, f),
            schedule=cast_schedule(schedule, f),
            g=g,
            both=both,
        )
        return solve(iid_rhs, iid_observables, y0, args, ts, **solver_options)


NODE_LADDER: tuple[int, ...] = (33, 65, 129, 257)
"""Node counts tried by ``nodes="auto"``, each with its probe (``probe_size``). It starts
at 33: 33 nodes met 1e-8 in five of the seven cases of benchmarks/nodes.py (65 in all), and
fewer save little (the spectral points are part of a run's cost, next to the Gaussian
integrals, the eigenvalues and compilation: the 64-lr sweep there took 48.8 s end to end
at 33 nodes and 58.0 s at 65, one run each, 2026-12-02)."""

PROBE_EXTRA: int = 8
"""The probe of a p-node run has at least p + 8 Chebyshev nodes (``probe_size``)."""


def probe_size(p: int) -> int:
    """The nodes of the probe of a p-node run: p + max(8, p // 4) Chebyshev nodes on the
    same interval (41 for p = 33, 81 for 65). The probe's eg differs from the run's by
    E_p - E_q (E_n: the node error of n nodes along the run's trajectory); spectral
    convergence makes E_q a small fraction of E_p, so the difference estimates E_p, as a
    probe on the 2p - 1 nested nodes does, for q - p probe points more instead of p - 1
    (benchmarks/nodes.py measures both against the full ODE: p + 4 fell below the true
    error at p = 33 in one case, p + 8 did not). At large p a fixed 8 nodes would be a
    small refinement where convergence is slow, hence the quarter. The probe's points are
    the whole cost of ``auto`` over a run at p: in the 64-lr sweep a point costs the same
    whether it is the run's or the probe's."""
    return p + max(PROBE_EXTRA, p // 4)


def select_nodes(
    run: Callable[[int], Solution],
    rtol: float = 1e-8,
    ladder: tuple[int, ...] = NODE_LADDER,
) -> tuple[int, Solution, float]:
    """Pick the number of spectral nodes p (docs/theory.md 5.3) to a tolerance on eg.

    ``run(p)`` integrates with p nodes and a probe (``solve_hmm_state(probe=...)``: the
    state on ``probe_size(p)`` nodes carried along the run's own trajectory). The node
    error of the run is estimated by the probe (``node_error``: max_t |eg_probe / eg - 1|;
    the equations are linear in the per-eigenvalue state given the global order
    parameters, so the probe measures how well p nodes carry the spectral averages of
    that trajectory). The first p of ``ladder`` whose estimate is at most ``rtol`` is
    returned with its solution and estimate: one run when the first rung is enough (its
    cost: the probe's points in the same pass, no second set of integrals). A run whose eg is not
    finite (a diverging learning rate) stops the search: more nodes do not cure it. If
    the ladder ends first, a warning says so and the largest run is returned.

    The estimate is of the error the nodes make along the trajectory; where the dynamics
    amplify small differences (close to the divergence of a large learning rate), runs
    at different p can differ by more than it, as runs of different rounding do.

    Needs concrete solutions: call it eagerly, not under jit or vmap (a vmapped ``run``
    over a grid is fine: the maximum over the grid decides).
    """
    if rtol <= 0 or not math.isfinite(rtol):
        raise ValueError(f"node_rtol = {rtol!r}: need a finite tolerance > 0")
    err = math.inf
    for p in ladder:
        cur = run(p)
        if cur.eg_probe is None:
            raise ValueError(
                "select_nodes needs probed runs: run(p) must return "
                "solve_hmm_state(..., probe=<the state on probe_size(p) nodes>)"
            )
        try:
            eg, est = np.asarray(cur.eg), np.asarray(node_error(cur))
        except jax.errors.TracerArrayConversionError:
            raise ValueError(
                "nodes='auto' checks concrete runs: under jit/vmap give nodes=p "
                "(choose p with hmmjax.ode.select_nodes outside the transformation)"
            ) from None
        if not np.all(np.isfinite(eg)):
            return p, cur, math.nan
        err = float(np.max(est))
        if err <= rtol:
            return p, cur, err
    warnings.warn(
        f"nodes='auto': {ladder[-1]} nodes still have an estimated node error of {err:.2e} "
        f"relative (> node_rtol = {rtol:g}); returning p = {ladder[-1]}. Use nodes='full' "
        "or a larger node_rtol.",
        stacklevel=2,
    )
    return ladder[-1], cur, err


def solve_hmm_state(
    state: Compressed,
    ts: Any,
    *,
    v: Any,
    A: Any,
    delta: Any,
    lr: Any,
    f: str = "sign",
    g: str = "erf",
    both: bool = False,
    teacher: str = "auto",
    x64: bool = True,
    probe: Compressed | None = None,
    schedule: AbstractSchedule | None = None,
    **solver_options: Any,
) -> Solution:
    """The HMM ODE from an aggregated state (``hmmjax.ode.spectral``: ``sample_state``,
    ``state_from_arrays``, ``mp_initial_state``). ``lr`` may be traced (vmap over it).
    ``probe``: the same state on a finer node set (``probe_size(p)`` Chebyshev nodes),
    carried passively along the run (``hmm.with_probe``: it does not change the
    run, nor its adaptive steps); ``Solution.eg_probe`` then holds its eg, and
    ``node_error`` the estimate of the node error. ``schedule``: eta(t) = lr * schedule(t)
    (``hmmjax.core.schedules``; also through ``solve_hmm``, ``solve_hmm_sample`` and
    ``solve_hmm_limit``, which pass it on). ``solver_options`` go to ``solve``."""
    with jax.enable_x64(x64):
        schedule = cast_schedule(schedule, jnp.result_type(float))
        y0, args = problem_from(
            state, v=v, A=A, delta=delta, lr=lr, f=f, g=g, both=both, teacher=teacher,
            schedule=schedule,
        )  # fmt: skip
        if probe is None:
            sol = solve(hmm_rhs, hmm_observables, y0, args, ts, **solver_options)
        else:
            z0, zargs = problem_from(
                probe, v=v, A=A, delta=delta, lr=lr, f=f, g=g, both=both, teacher=teacher,
                schedule=schedule,
            )  # fmt: skip
            y1, args1 = with_probe(y0, args, z0, zargs)
            sol = solve(hmm_rhs, hmm_observables_probed, y1, args1, ts,
                        steer=OwnPart(args1.own), **solver_options)  # fmt: skip
    return dataclasses.replace(sol, points=int(y0.r.shape[-1]))


def node_error(sol: Solution) -> Float[Array, "..."]:
    """The estimated node error of a probed run (``solve_hmm_state(probe=...)``): max over
    the save times of |eg_probe / eg - 1| (over the last axis; NaN where eg is not
    finite)."""
    eg, probe = jnp.asarray(sol.eg), jnp.asarray(sol.eg_probe)
    return jnp.max(jnp.abs(probe - eg) / jnp.maximum(jnp.abs(eg), 1e-300), axis=-1)


def _on_nodes(
    make_state: Callable[..., Any],
    nodes: Any,
    node_rtol: float,
    x64: bool,
    ts: Any,
    options: dict[str, Any],
    exact: bool = False,
) -> Solution:
    """solve_hmm_state on ``make_state(nodes)``, with nodes = "auto" resolved by
    ``select_nodes`` (``options``: everything else solve_hmm_state takes). ``make_state``
    takes node specifications and returns a tuple of their states (``make_state(p, q)``
    for a run and its probe, which may share work). The callers check ``nodes`` first,
    before any set-up work. ``exact``: a one-point spectrum, whose state on that point is
    exact whatever the nodes (one run, no probe)."""

    def run(n):
        with jax.enable_x64(x64):
            (state,) = make_state(n)
        return solve_hmm_state(state, ts, x64=x64, **options)

    def probed(p):
        with jax.enable_x64(x64):
            state, probe = make_state(p, probe_size(p))
        return solve_hmm_state(state, ts, x64=x64, probe=probe, **options)

    if isinstance(nodes, str) and nodes == "auto":
        if exact:
            return run(NODE_LADDER[0])
        return select_nodes(probed, node_rtol)[1]
    return run(nodes)


def solve_hmm(
    arrays: Mapping[str, Any],
    ts: Any,
    *,
    lr: Any,
    f: str = "sign",
    g: str = "erf",
    both: bool = False,
    teacher: str = "auto",
    nodes: Any = "auto",
    node_rtol: float = 1e-8,
    x64: bool = True,
    **solver_options: Any,
) -> Solution:
    """The HMM ODE (docs/theory.md 5.2, 5.3) from state-file arrays (see ``hmm_problem``).

    ``f``: manifold non-linearity (mu0 = 0 required); ``teacher``: "auto" | "exact" |
    "averaged". ``nodes``: "auto" (the fewest nodes of ``NODE_LADDER`` that change eg by
    at most ``node_rtol``, see ``select_nodes``), "full" (every eigenvalue, docs/theory.md 5.2), an
    integer p or an array of nodes. ``lr`` may be traced (vmap over it) with nodes other
    than "auto". ``solver_options`` go to ``solve``. ``Solution.points`` is the number of
    spectral points used (D for "full").
    """
    check_nodes(nodes)
    with jax.enable_x64(x64):
        check_arrays(arrays, f=f, g=g, teacher=teacher)
        floats = {k: jnp.asarray(a, float) for k, a in arrays.items() if a is not None}
    N, D = float(np.asarray(arrays["N"])), float(np.asarray(arrays["D"]))
    options = dict(
        v=floats["v"], A=floats["A"], delta=D / N, lr=lr, f=f, g=g, both=both,
        teacher=teacher, **solver_options,
    )  # fmt: skip
    exact = one_point(floats["rho"])

    def make_state(*ns):
        return tuple(state_from_arrays(floats, n) for n in ns)

    return _on_nodes(make_state, nodes, node_rtol, x64, ts, options, exact)


def solve_hmm_sample(
    w: Any,
    v: Any,
    F: Any,
    theta: Any,
    A: Any,
    ts: Any,
    *,
    lr: Any,
    f: str = "sign",
    g: str = "erf",
    both: bool = False,
    teacher: str = "auto",
    nodes: Any = "auto",
    node_rtol: float = 1e-8,
    x64: bool = True,
    **solver_options: Any,
) -> Solution:
    """The HMM ODE from a sample: student (w (K, N), v), features F (D, N), teacher
    (theta (M, D), A). ``nodes`` as in ``solve_hmm``; compressed states come from products
    with F and the eigenvalues of Omega (no eigenvectors, docs/theory.md 5.3), "full" from the
    eigen-decomposition. The exact teacher term is used unless ``teacher="averaged"``.
    """
    check_nodes(nodes)
    with jax.enable_x64(x64):
        w, theta = (jnp.asarray(a, float) for a in (w, theta))
        F = as_features(F).astype(float)
        rho = None if isinstance(nodes, str) and nodes == "full" else sample_eigenvalues(F)
    D, N = F.shape
    options = dict(v=v, A=A, delta=D / N, lr=lr, f=f, g=g, both=both, teacher=teacher,
                   **solver_options)  # fmt: skip
    exact = rho is not None and one_point(rho)

    def make_state(*ns):
        # a run and its probe: the products with F once, for the largest node count
        shared = len(ns) > 1 and not exact
        moments = sample_moments(w, F, theta, max(ns), rho) if shared else None
        return tuple(sample_state(w, F, theta, n, rho, moments) for n in ns)

    return _on_nodes(make_state, nodes, node_rtol, x64, ts, options, exact)


def solve_hmm_limit(
    delta: float,
    ts: Any,
    *,
    v: Any,
    A: Any,
    q0: float,
    lr: Any,
    R0: Any = None,
    profile: Callable[[Array], Array] | None = None,
    f: str = "sign",
    g: str = "erf",
    both: bool = False,
    nodes: Any = "auto",
    node_rtol: float = 1e-8,
    x64: bool = True,
    **solver_options: Any,
) -> Solution:
    """The N -> infinity learning curve at delta = D / N (docs/theory.md 5.3): the compressed ODE
    on the Marchenko-Pastur law, for a student with i.i.d. N(0, q0) first-layer weights
    (second layer ``v``) independent of an i.i.d. N(0, 1) teacher (second layer ``A``),
    optionally with an initial overlap R0 (K, M) of rho-profile ``profile`` (see
    ``mp_initial_state``). No F is sampled; the cost is independent of N and D.
    ``nodes``: "auto", an integer p (``mp_nodes``) or an array of nodes.
    """
    check_nodes(nodes)
    if isinstance(nodes, str) and nodes == "full":
        raise ValueError(
            "nodes = 'full' has no meaning for the N -> infinity limit (there is no finite "
            "spectrum): use 'auto' or an integer p >= 2"
        )
    if not (isinstance(q0, int | float) and math.isfinite(q0) and q0 > 0):
        raise ValueError(f"q0 = {q0!r}: the initial weight variance must be a number > 0")
    mu1 = check_physics(f, g, "auto").mu1
    with jax.enable_x64(x64):
        delta = float(delta)
        mp_support(delta)  # checks delta > 0
        v, A = jnp.asarray(v, float), jnp.asarray(A, float)
    K, M = v.shape[0], A.shape[0]

    def one(n):
        n = mp_nodes(n, delta) if isinstance(n, int | np.integer) else jnp.asarray(n, float)
        return mp_initial_state(n, delta, K, M, q0, mu1, R0=R0, profile=profile)

    def make_state(*ns):
        return tuple(map(one, ns))

    options = dict(v=v, A=A, delta=delta, lr=lr, f=f, g=g, both=both, teacher="exact",
                   **solver_options)  # fmt: skip
    return _on_nodes(make_state, nodes, node_rtol, x64, ts, options)
