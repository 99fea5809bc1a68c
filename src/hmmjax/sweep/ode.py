"""The ODE of every grid point as one vmapped, jit-compiled call.

Each point starts from member 0 of its simulation set-up (same F, teacher and initial
weights; ``ode.source = "limit"``: the Marchenko-Pastur state at its delta = D / N).

- i.i.d. data: the state (Q, R, v) and constants (T, A) are padded to the grid's largest
  K and M with zero units; lr, kappa and noise are vmapped arrays.
- manifold data: the aggregated state on p spectral points (docs/theory.md 5.3) has the same
  shape whatever D and N are, so points of different D and N stack without padding (their
  nodes, weights and delta differ); K and M are padded with zero units. ``ode.nodes =
  "auto"`` runs the whole grid with a probe on p + max(8, p/4) nodes
  (``hmmjax.ode.select_nodes``): the largest estimated node error over the grid decides
  (diverging points are left out); one run when p = 33 is enough. Structured features
  (``data.features`` dct, hadamard: F F^T / N = I) run on their one spectral point,
  exactly, whatever ``ode.nodes`` says (``ode_points`` = 1).

A zero unit (v_k = 0, all its overlaps 0; A_n = 0 for the teacher) is inert: every
derivative of its overlaps carries a factor v_k or A_n, and with g in {erf, linear} the
integrals of a zero-variance field are finite. Points that diverge (eg not finite or
above ``run.diverge_eg``) are flagged; their values from then on are NaN.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hmmjax.config.schema import ConfigError
from hmmjax.config.settings import Config
from hmmjax.core.schedules import AbstractSchedule
from hmmjax.core.trees import stack
from hmmjax.data.gaussian import IIDGaussian
from hmmjax.models.two_layer import INIT_SCALE
from hmmjax.observables.order_params import overlaps
from hmmjax.ode import Solution, probe_size, select_nodes, solve_hmm_state, solve_iid
from hmmjax.ode.hmm import check_physics
from hmmjax.ode.spectral import (
    Compressed,
    mp_initial_state,
    mp_nodes,
    one_point_state,
    point_initial_state,
    sample_eigenvalues,
    sample_moments,
    sample_state,
)
from hmmjax.ode.times import on_grid
from hmmjax.sweep.lanes import config_schedule, grid_sizes, setup_key
from hmmjax.sweep.memory import check_ode_setups
from hmmjax.sweep.plan import device_budget
from hmmjax.sweep.setup import build

__all__ = ["OdeModel", "ode_model", "ode_points"]


def _pad(a: Any, sizes: tuple[int | None, ...]) -> jax.Array:
    """Zero-pad the leading axes of ``a`` to ``sizes`` (None: keep)."""
    a = jnp.asarray(a)
    widths = [(0, 0 if n is None else n - m) for n, m in zip(sizes, a.shape, strict=False)]
    return jnp.pad(a, widths + [(0, 0)] * (a.ndim - len(sizes)))


def _pad_state(st: Compressed, K: int, M: int, P: int) -> Compressed:
    """``st`` padded to K units, M teacher units and P spectral points. Padded points have
    weight 0 and zero sigma, r, B: every term of their right-hand side carries one of
    these, so they stay zero and add nothing to Q and R (a point whose spectrum is one
    value, ``spectral.one_point``, has one point beside grid points with p)."""
    extra = P - st.nodes.shape[0]
    return Compressed(
        nodes=jnp.pad(st.nodes, (0, extra), mode="edge"),
        weights=jnp.pad(st.weights, (0, extra)),
        sigma=_pad(st.sigma, (K, K, P)),
        r=_pad(st.r, (K, M, P)),
        B=None if st.B is None else _pad(st.B, (M, M, P)),
        W=_pad(st.W, (K, K)),
        T=_pad(st.T, (M, M)),
        Ttilde=_pad(st.Ttilde, (M, M)),
    )


def _member0(setup):
    return jax.tree.map(lambda a: a[0], setup.students)


def _check_same(cfgs: list[Config]) -> None:
    """Keys that fix the compiled ODE must not vary over the grid (they cannot: the
    grid sweeps only lr, kappa, noise, K, M, D, N, seed)."""
    kinds = sorted({c.data.features for c in cfgs})
    if len(kinds) > 1:
        raise ConfigError(
            f"data.features = {kinds}: the ODE of one call runs one kind of feature matrix "
            "(hmmjax.experiments.simulate splits a grid over features)"
        )
    if cfgs[0].ode.nodes == "full" and len({(c.data.D, c.data.N) for c in cfgs}) > 1:
        raise ConfigError(
            'ode.nodes = "full": the full ODE has one point per eigenvalue, so a grid over '
            'D or N cannot be stacked; use "auto" or a number p of nodes'
        )


class OdeModel(NamedTuple):
    """The ODE of a grid's points as a function of the learning rate and its schedule.

    ``solve(lr, schedule, batched)``: the ``Solution`` of every point on the ODE's own time
    grid, for the rates ``lr`` (P,) and the schedule (None: constant; ``batched``: one
    schedule per point, its arrays with a leading axis P, else one for all), in one
    vmapped call (jit-able and differentiable in ``lr`` and the schedule's arrays: what
    ``hmmjax.ode.optimal`` optimises). ``index``: the positions of the save times on that
    grid; ``points``: the spectral points (0 for i.i.d. data), fixed when the model is
    made (``ode.nodes = "auto"`` chooses them at the config's rates and schedule)."""

    solve: Callable[[Any, AbstractSchedule | None, bool], Solution]
    index: np.ndarray
    points: int

    def eg(self, lr: Any, schedule: AbstractSchedule | None = None, batched: bool = False):
        """eg (P, n) at the save times, in float64."""
        with jax.enable_x64(True):
            return self.solve(lr, schedule, batched).eg[:, self.index]


def ode_model(cfgs: list[Config], setups: dict[str, Any], times: np.ndarray) -> OdeModel:
    """The ``OdeModel`` of the points ``cfgs`` at ``times`` (their set-ups drawn into
    ``setups`` as ``ode_points`` does)."""
    return _ode(cfgs, setups, times)[0]


def ode_points(cfgs: list[Config], setups: dict[str, Any], times: np.ndarray) -> dict[str, Any]:
    """The ODE of every point at ``times``: arrays eg (P, n), Q (P, n, K, K), R, v, the
    flags ok (P,), and the attrs points (spectral points) and num_steps."""
    c = cfgs[0]
    model, sol, lr, schedule = _ode(cfgs, setups, times)
    if sol is None:  # not solved yet (only the choice of nodes solves)
        sol = model.solve(lr, schedule, False)
    index = model.index
    out = {name: np.asarray(getattr(sol, name))[:, index] for name in ("ts", "eg", "Q", "R", "v")}
    eg = out["eg"]
    bad = ~np.isfinite(eg) | (eg > c.run.diverge_eg)
    dead = np.cumsum(bad, axis=1) > 0
    for name in ("eg", "Q", "R", "v"):
        a = out[name]
        out[name] = np.where(dead.reshape(dead.shape + (1,) * (a.ndim - 2)), np.nan, a)
    out.update(dead=dead, ok=np.asarray(sol.ok), points=model.points,
               num_steps=np.asarray(sol.num_steps))  # fmt: skip
    return out


def _ode(
    cfgs: list[Config], setups: dict[str, Any], times: np.ndarray
) -> tuple[OdeModel, Solution | None, Any, AbstractSchedule | None]:
    """The model of the points, the solution at their rates and schedule if the choice of
    nodes (``ode.nodes = "auto"``) has solved it already (else None), their rates and
    schedule."""
    _check_same(cfgs)
    c = cfgs[0]
    o = c.ode
    sz = grid_sizes(cfgs)
    keys = [setup_key(cfg) for cfg in cfgs]
    missing = {key: cfg for key, cfg in zip(keys, cfgs, strict=True) if key not in setups}
    if missing:  # measured before they are drawn; refused if they do not fit
        check_ode_setups(list(missing.values()), device_budget(c))
    for key, cfg in missing.items():  # the ODE reads no test set: none drawn
        setups[key] = build(cfg, test=False)
    pts = [setups[key] for key in keys]
    grid, index = on_grid(times, o.solver, o.dt)
    options = dict(g=c.student.g, both=c.student.train_second, solver=o.solver, dt=o.dt,
                   rtol=o.rtol, atol=o.atol)  # fmt: skip
    with jax.enable_x64(True):
        lr = jnp.asarray([cfg.sgd.lr for cfg in cfgs], float)
        v = jnp.stack([_pad(_member0(s).v, (sz.K,)).astype(float) for s in pts])
        A = jnp.stack([_pad(s.model.teacher.v, (sz.M,)).astype(float) for s in pts])
    schedule = config_schedule(c)
    if isinstance(pts[0].model, IIDGaussian):
        solve_at, sol, points = _iid(cfgs, pts, sz, grid, v, A, options), None, 0
    else:
        solve_at, sol, points = _hmm(cfgs, pts, sz, grid, lr, v, A, schedule, options)
    return OdeModel(solve_at, np.asarray(index), points), sol, lr, schedule


def _vmapped(one, arrays: tuple, schedule, batched: bool):
    """``one(*arrays, schedule)`` vmapped over the points (the schedule too if
    ``batched``), compiled, in float64."""

    def ode_of_points(*a):  # the program's name, and its compilation cache entry's
        # one schedule: a constant of the program, as in a run (the same bits)
        return one(*a) if batched else one(*a, schedule)

    with jax.enable_x64(True):
        return jax.jit(jax.vmap(ode_of_points))(*arrays, *([schedule] if batched else []))


def _iid(cfgs, pts, sz, grid, v, A, options):
    def state(s):
        ov = overlaps(_member0(s).w, s.model)
        return (_pad(ov.Q, (sz.K, sz.K)), _pad(ov.R, (sz.K, sz.M)), _pad(ov.T, (sz.M, sz.M)))

    with jax.enable_x64(True):
        Q, R, T = (jnp.stack(a).astype(float) for a in zip(*map(state, pts), strict=True))
        kappa = jnp.asarray([c.sgd.kappa for c in cfgs], float)
        noise = jnp.asarray([c.data.noise for c in cfgs], float)

    def one(Q, R, v, T, A, lr, kappa, noise, schedule):
        return solve_iid(Q, R, v, T, A, grid, lr=lr, kappa=kappa, noise=noise,
                         schedule=schedule, **options)  # fmt: skip

    def solve_at(lr, schedule, batched):
        return _vmapped(one, (Q, R, v, T, A, lr, kappa, noise), schedule, batched)

    return solve_at


def _hmm(cfgs, pts, sz, grid, lr, v, A, schedule, options):
    c = cfgs[0]
    o = c.ode
    f = c.data.f
    teacher = "exact" if o.source == "limit" else o.teacher_term
    # the initial states depend on the drawn set-up only: one per distinct set-up (e.g.
    # one for a whole learning-rate sweep), then indexed per point
    one_point = c.data.features != "gaussian"  # Omega = I (a grid's features are one kind)
    keys = [setup_key(cfg) for cfg in cfgs]
    first = {key: i for i, key in reversed(list(enumerate(keys)))}
    order = list(first)
    index = np.array([order.index(key) for key in keys])
    with jax.enable_x64(True):
        delta = jnp.asarray([cfg.data.D / cfg.data.N for cfg in cfgs], float)
        if o.source == "sample":
            arrays = [
                (jnp.asarray(_member0(s).w, float), s.model.features.astype(float),
                 jnp.asarray(s.model.teacher.w, float))
                for s in (pts[first[key]] for key in order)
            ]  # fmt: skip
            rho = [sample_eigenvalues(a[1]) if o.nodes != "full" and not one_point else None
                   for a in arrays]  # fmt: skip
    mu1 = check_physics(f, c.student.g, teacher).mu1
    q0 = INIT_SCALE[c.student.init] ** 2

    def states(p, moments=None) -> Compressed:
        """The stacked states on p nodes (``moments``: per set-up, from ``sample_moments``)."""
        moments = [None] * len(order) if moments is None else moments
        with jax.enable_x64(True):
            if o.source == "limit":
                made = []
                for key in order:
                    cfg = cfgs[first[key]]
                    d = cfg.data.D / cfg.data.N
                    if one_point:
                        made.append(point_initial_state(cfg.student.K, cfg.teacher.M, q0))
                    else:
                        made.append(mp_initial_state(mp_nodes(p, d), d, cfg.student.K,
                                                     cfg.teacher.M, q0, mu1))  # fmt: skip
            elif one_point:
                made = [one_point_state(*a) for a in arrays]
            else:
                made = [sample_state(*a, p, r, m) for a, r, m in zip(arrays, rho, moments,
                                                                    strict=True)]  # fmt: skip
            P = max(st.nodes.shape[0] for st in made)
            stacked = stack([_pad_state(st, sz.K, sz.M, P) for st in made])
            return jax.tree.map(lambda a: a[index], stacked)

    built: dict[int, Compressed] = {}

    def run(p, lr, schedule, batched: bool, probed: bool = False) -> Solution:
        """The grid on p nodes, with its probe (``probe_size(p)`` nodes) if ``probed``."""
        moments = None
        if probed and o.source == "sample":  # the products with F once for both node sets
            with jax.enable_x64(True):
                pairs = zip(arrays, rho, strict=True)
                moments = [sample_moments(*a, probe_size(p), r) for a, r in pairs]
        if probed or p not in built:  # made once for p (``at``): the probed run's if any
            built[p] = states(p, moments)
        st = built[p]
        pr = states(probe_size(p), moments) if probed else None

        def one(st, pr, v, A, delta, lr, schedule):
            return solve_hmm_state(st, grid, v=v, A=A, delta=delta, lr=lr, f=f,
                                   teacher=teacher, probe=pr, schedule=schedule,
                                   **options)  # fmt: skip

        return _vmapped(one, (st, pr, v, A, delta, lr), schedule, batched)

    def at(p):  # the model on p nodes
        return partial(run, p)

    if one_point or o.nodes != "auto":  # Omega = I: one spectral point is exact
        p = 1 if one_point else o.nodes
        built[p] = states(p)  # now, not inside a caller's trace (jit, vmap, grad)
        return at(p), None, 1 if one_point else _points(p, cfgs)
    found: dict[int, Solution] = {}

    def finite_only(p) -> Solution:  # the estimate over the points that stay finite
        found[p] = sol = run(p, lr, schedule, False, probed=True)
        eg = np.asarray(sol.eg)
        keep = np.all(np.isfinite(eg), axis=1) & np.all(eg <= c.run.diverge_eg, axis=1)

        def finite(a):
            return jnp.asarray(np.where(keep[:, None], a, 1.0))

        return dataclasses.replace(sol, eg=finite(eg), eg_probe=finite(sol.eg_probe))

    p, _, _ = select_nodes(finite_only, o.node_rtol)
    return at(p), found[p], p


def _points(nodes: Any, cfgs: list[Config]) -> int:
    """Spectral points of a run with ``nodes`` ("full": D)."""
    return cfgs[0].data.D if nodes == "full" else int(nodes)
