"""The lanes of invariant-manifold experiments (docs/theory.md section 7), trained by the
sweep engine like every other kind of run.

A grid point is one (alpha, p, h); its members are seeds. A member of seed s uses the keys
``lane_keys(s)``: its training set is the first p samples of one stream (nested in p), its
initial network the first h units of one draw (nested in h), its test set its own stream.
Training sets are padded to the grid's largest p with a sample mask, networks to the
largest h with masked zero units (``hmmjax.train.hinge``); the trainer
(``InvariantTrainer``) stops each member at zero training loss, and the engine records
the measurements at the log-spaced iteration counts ``InvariantTrainer.steps``.

``run_grid`` is the Python entry point without a config: the grid alphas x seeds x ps x hs
through ``hmmjax.sweep.engine.run_points`` (one batch, one device, optional progress bar
and checkpoint), reshaped to those axes. ``hmmjax.experiments.invariant`` runs configs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Bool

from hmmjax.core.trees import stack
from hmmjax.data.images import ImageTask, nested_split
from hmmjax.data.invariant import InvariantData, lane_keys, sample
from hmmjax.data.real import RealData
from hmmjax.models.alpha import AlphaModel
from hmmjax.models.alpha_cnn import init_conv_net
from hmmjax.models.alpha_net import init_net
from hmmjax.sweep.checkpoint import load_checkpoint
from hmmjax.sweep.engine import Progress, run_points
from hmmjax.sweep.lanes import Lanes, one_per_lane
from hmmjax.sweep.plan import Plan
from hmmjax.train.hinge import HingeSet, HingeTest, InvariantMeasurement, InvariantTrainer

__all__ = [
    "LaneDraws",
    "InvariantResult",
    "manifold_draws",
    "image_draws",
    "final_networks",
    "invariant_lanes",
    "iteration_steps",
    "run_grid",
]


_Sets = tuple[jax.Array, jax.Array, jax.Array, jax.Array]


class LaneDraws(NamedTuple):
    """What a seed's lanes are made of: ``sets(seed, p)``, its first p training samples
    and its test set (x, y, x_test, y_test), nested in p; ``nets(seed, h, h_max)``, its
    initial network of width h (padded to h_max where the network can be)."""

    sets: Callable[[int, int], _Sets]
    nets: Callable[[int, int, int], AlphaModel]


def manifold_draws(data: InvariantData, *, act: str = "relu", n_test: int = 10_000,
                   dtype=jnp.float32) -> LaneDraws:  # fmt: skip
    """Stripe / cylinder samples and the two-layer net of ``lane_keys(seed)`` (training
    stream, initial units, test stream)."""

    def sets(seed: int, p: int) -> _Sets:
        k_train, _, k_test = lane_keys(seed)
        return (*sample(k_train, p, data, dtype), *sample(k_test, n_test, data, dtype))

    def nets(seed: int, h: int, h_max: int) -> AlphaModel:
        return init_net(lane_keys(seed)[1], h, data.d, width=h_max, act=act, dtype=dtype)

    return LaneDraws(sets, nets)


def image_draws(real: RealData, task: ImageTask, *, depth: int, kernel: int,
                act: str = "relu", n_test: int, dtype=jnp.float32) -> LaneDraws:  # fmt: skip
    """Images of ``real`` split by ``nested_split(seed)`` and the convolutional net of
    ``lane_keys(seed)[1]`` (h channels; it is not padded: every point has the same h)."""

    def sets(seed: int, p: int) -> _Sets:
        return tuple(jnp.asarray(a, dtype) for a in nested_split(real, p, n_test, seed))

    def nets(seed: int, h: int, h_max: int) -> AlphaModel:
        if h != h_max:
            raise ValueError(f"convolutional networks are not padded: width {h} != {h_max}")
        return init_conv_net(lane_keys(seed)[1], task.side, depth=depth, width=h,
                             kernel=kernel, act=act, dtype=dtype)  # fmt: skip

    return LaneDraws(sets, nets)


def invariant_lanes(
    alphas: Sequence[float],
    ps: Sequence[int],
    hs: Sequence[int],
    seeds: np.ndarray,
    trainer: InvariantTrainer,
    *,
    act: str = "relu",
    n_test: int = 10_000,
    dtype=jnp.float32,
    draws: LaneDraws | None = None,
) -> Lanes:
    """The lanes of the points (alphas[i], ps[i], hs[i]), members of point i the seeds
    ``seeds[i]`` ((points, members)), padded to the largest p and h. Draws are made once
    per seed (training and test sets) and once per (seed, h) (initial networks), by
    ``draws`` (default: ``manifold_draws`` of the trainer's data)."""
    if draws is None:
        draws = manifold_draws(trainer.data, act=act, n_test=n_test, dtype=dtype)
    p_max, h_max = max(ps), max(hs)
    sets, nets = {}, {}
    pairs = zip(seeds.ravel(), np.repeat(hs, seeds.shape[1]), strict=True)
    for s, h in sorted({(int(s), int(h)) for s, h in pairs}):
        if s not in sets:
            sets[s] = draws.sets(s, p_max)
        nets[s, h] = draws.nets(s, h, h_max)

    def member(alpha, p, h, s) -> tuple[HingeSet, HingeTest]:
        x, y, x_test, y_test = sets[int(s)]
        smask = (jnp.arange(p_max) < p).astype(x.dtype)
        train = HingeSet(net0=nets[int(s), int(h)], x=x * smask[:, None], y=y * smask,
                         smask=smask, alpha=jnp.asarray(alpha, x.dtype))  # fmt: skip
        return train, HingeTest(x=x_test, y=y_test)

    members = [
        stack([member(alpha, p, h, s) for s in seeds[i]])
        for i, (alpha, p, h) in enumerate(zip(alphas, ps, hs, strict=True))
    ]
    init = eqx.filter_jit(jax.vmap(trainer.init))  # compiled once, called per point
    states = stack([init(train) for train, _ in members])
    train, test = stack(members)  # (points, members, ...)
    keys = jnp.zeros((*seeds.shape, 2), jnp.uint32)  # the data is fixed: no streams
    # the trainer has static fields only: the same object serves every point
    return Lanes(states, trainer, train, keys, test)


def iteration_steps(trainer: InvariantTrainer, n_points: int) -> np.ndarray:
    """(points, records) iteration counts at which every point records."""
    return np.tile(np.asarray(trainer.steps, np.int64), (n_points, 1))


class InvariantResult(NamedTuple):
    """Results of a grid, every array with the leading grid axes (alphas, seeds, ps, hs)."""

    steps: np.ndarray  # (R,) recording iteration counts
    history: InvariantMeasurement  # (*grid, R)
    final: InvariantMeasurement  # (*grid): the state at the end
    converged: Bool[np.ndarray, "..."]  # training loss exactly 0
    net: AlphaModel  # final networks (*grid, h_max, ...), padded
    net0: AlphaModel  # initial networks
    alphas: np.ndarray
    seeds: np.ndarray
    ps: np.ndarray
    hs: np.ndarray
    data: InvariantData | ImageTask

    def network(self, index: tuple[int, ...], initial: bool = False) -> AlphaModel:
        """The (unpadded) final or initial network of grid point ``index``."""
        net = self.net0 if initial else self.net
        return jax.tree.map(lambda a: a[index], net).unpad()


def final_networks(lanes: Lanes, progress: Progress) -> AlphaModel:
    """The members' final networks (points, members, ...) from the engine's final states."""
    return jax.vmap(jax.vmap(lambda n, p: n.replace(p)))(lanes.model.net0, progress.final.params)


def run_grid(
    alphas: Sequence[float],
    seeds: Sequence[int],
    ps: Sequence[int],
    hs: Sequence[int],
    trainer: InvariantTrainer = InvariantTrainer(),  # noqa: B008 (a frozen module)
    *,
    act: str = "relu",
    n_test: int = 10_000,
    dtype=jnp.float32,
    progress: bool = False,
    checkpoint: Path | None = None,
    stamp: str = "",
    chunk: int = 10,
    draws: LaneDraws | None = None,
) -> InvariantResult:
    """Train the grid alphas x seeds x ps x hs on the sweep engine (points alphas x ps x
    hs, members the seeds; ``progress``: a bar; ``checkpoint``: resume file, valid for
    ``stamp``; ``draws``: the data and networks, default the stripe / cylinder of
    ``trainer.data`` with two-layer nets) and reshape the results to those axes."""
    grid = list(itertools.product(alphas, ps, hs))
    a_, p_, h_ = (list(v) for v in zip(*grid, strict=True))
    member_seeds = np.tile(np.asarray(seeds, np.uint64), (len(grid), 1))
    with jax.enable_x64(dtype == jnp.float64):
        lanes = invariant_lanes(a_, p_, h_, member_seeds, trainer, act=act, n_test=n_test,
                                dtype=dtype, draws=draws)  # fmt: skip
        plan = Plan(len(grid), len(grid), 1, 0, 0)
        saved = load_checkpoint(checkpoint, stamp) if checkpoint and checkpoint.exists() else None
        steps = iteration_steps(trainer, len(grid))
        out = run_points(one_per_lane(lanes), steps, plan, jax.local_devices()[:1],
                         shared=False, block=1, chunk=chunk, bound=np.inf, stamp=stamp,
                         progress=progress, checkpoint=checkpoint, resume=saved,
                         keep_final=True)  # fmt: skip
        nets = final_networks(lanes, out)
    shape = (len(alphas), len(ps), len(hs), len(seeds))

    def to_grid(a):  # (points, seeds, ...) -> (alphas, seeds, ps, hs, ...)
        a = np.asarray(a)
        return np.moveaxis(a.reshape(shape + a.shape[2:]), 3, 1)

    history = InvariantMeasurement(**{k: to_grid(v) for k, v in out.history.items()})
    final = jax.tree.map(lambda a: a[..., -1], history)
    return InvariantResult(
        steps=np.asarray(trainer.steps),
        history=history,
        final=final,
        converged=final.loss == 0,
        net=jax.tree.map(to_grid, nets),
        net0=jax.tree.map(to_grid, lanes.model.net0),
        alphas=np.asarray(alphas),
        seeds=np.asarray(seeds),
        ps=np.asarray(ps),
        hs=np.asarray(hs),
        data=trainer.data,
    )
