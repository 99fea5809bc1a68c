"""The typed seam for trainers: ``AbstractTrainer``, its registry, and the block loop.

The sweep engine (``hmmjax.sweep.engine``) trains every member of every grid point
through the same three calls, whatever the trainer:

- ``advance(state, data, key, start, stop, block)``: the member's state after the steps
  start .. stop - 1 (a pure function; ``data`` is the point's data model or training set,
  ``key`` the member's stream key, ``block`` a static block length);
- ``measure(state, data, test)``: a NamedTuple of arrays recorded at every time;
- ``monitor(measurement)``: the scalar the engine watches; a member whose monitor or state
  turns non-finite, or whose monitor exceeds ``run.diverge_eg``, is frozen and flagged.

The engine calls ``advance`` through ``advance_many``: Q trainers (one module, its array
fields stacked) advancing Q states on the same data and stream (the points of a lane,
``hmmjax.sweep.lanes``). Its default maps ``advance`` over them; a trainer whose samples
do not depend on its own parameters overrides it to draw each block once for all Q
(``hmmjax.train.online.SGD``). Before that, the engine tells the trainer how many
members (data streams) each lane advances side by side (``batched``), so that it may
organise its steps for that many.

A trainer may stop a lane by itself (the hinge-loss trainer stops at zero training loss):
``advance`` then leaves its state unchanged.

Online trainers are registered by name (``register_trainer``): the config key
``sgd.trainer`` picks one for online runs, built by its factory ``create(lr, kappa,
batch, train_second, dtype)``; ``sgd`` (``hmmjax.train.online.SGD``) is the default. A
new trainer is one class and one ``register_trainer`` call (docs/guides/extending.md).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from hmmjax.config import register_choice

__all__ = ["AbstractTrainer", "register_trainer", "run_blocks", "run_steps", "trainer_factory"]


class AbstractTrainer(eqx.Module):
    """What the engine needs of a trainer (see the module docstring). Array fields (a
    learning rate) are batched over grid points; static fields fix the compiled program."""

    @abc.abstractmethod
    def advance(
        self,
        state: Any,
        data: Any,
        key: PRNGKeyArray,
        start: Int[Array, ""],
        stop: Int[Array, ""],
        block: int,
    ) -> Any:
        """The member's state after the steps start .. stop - 1."""

    def advance_many(
        self,
        states: Any,
        data: Any,
        key: PRNGKeyArray,
        start: Int[Array, ""],
        stop: Int[Array, ""],
        block: int,
    ) -> Any:
        """``advance`` of Q trainers (this module, array fields (Q,)) on Q states (leaves
        (Q, ...)) sharing ``data`` and ``key``. Default: one ``advance`` per state."""

        def one(trainer, state):
            return trainer.advance(state, data, key, start, stop, block)

        return jax.vmap(one)(self, states)

    def batched(self, members: int) -> AbstractTrainer:
        """This trainer as it runs for ``members`` ensemble members (data streams) of a lane
        advanced side by side (``vmap``; the engine calls it once per compiled program): a
        trainer may organise its steps differently there, with the same samples. The count
        is the config's ``run.ensemble``, not the lanes that share a device or a batch, so
        that what a trainer picks cannot depend on the device count or the memory plan.
        Default: itself."""
        return self

    @abc.abstractmethod
    def measure(self, state: Any, data: Any, test: Any) -> Any:
        """What is recorded: a NamedTuple of arrays (scalars or fixed shapes)."""

    @abc.abstractmethod
    def monitor(self, measurement: Any) -> Float[Array, ""]:
        """The scalar watched for divergence."""


_REGISTRY: dict[str, Callable[..., AbstractTrainer]] = {}


def register_trainer(name: str, create: Callable[..., AbstractTrainer]) -> None:
    """Make ``name`` an online trainer (``sgd.trainer = name`` in configs); ``create(lr,
    kappa, batch, train_second, dtype)`` builds one."""
    _REGISTRY[name] = create
    register_choice("sgd", "trainer", name)


def trainer_factory(name: str) -> Callable[..., AbstractTrainer]:
    """The factory of the registered trainer ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown trainer {name!r}; allowed: {', '.join(_REGISTRY)}") from None


def run_blocks(
    carry: Any,
    draw: Callable[[Int[Array, ""]], Any],
    update: Callable[[Any, Any, Int[Array, ""], Int[Array, ""]], Any],
    start: Int[Array, ""],
    stop: Int[Array, ""],
    block: int,
) -> Any:
    """The steps start .. stop - 1, block by block: ``draw(b0)`` gives the data of the
    ``block`` steps b0 .. b0 + block - 1 (leaves of leading size ``block``) and
    ``update(carry, data, i0, i1)`` applies its steps i0 .. i1 - 1 (0 <= i0 < i1 <= block).

    Blocks are aligned to multiples of ``block`` in the global step count, so a block cut
    by a recording point is drawn again in full (at most one extra block per interval),
    and the data of a step never depends on where the run was cut.
    """

    def segment(c):
        s, net = c
        b0 = (s // block) * block
        i1 = jnp.minimum(stop - b0, block)
        return b0 + i1, update(net, draw(b0), s - b0, i1)

    _, carry = jax.lax.while_loop(lambda c: c[0] < stop, segment, (start, carry))
    return carry


def run_steps(
    carry: Any,
    draw: Callable[[Int[Array, ""]], Any],
    step: Callable[[Any, Any], Any],
    start: Int[Array, ""],
    stop: Int[Array, ""],
    block: int,
) -> Any:
    """Apply ``step(carry, data[i])`` for the steps start .. stop - 1, one after another,
    the data drawn a block at a time (``run_blocks``)."""

    def update(net, data, i0, i1):
        def one(i, net):
            return step(net, jax.tree.map(lambda a: a[i], data))

        return jax.lax.fori_loop(i0, i1, one, net)

    return run_blocks(carry, draw, update, start, stop, block)
