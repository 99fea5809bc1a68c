"""The typed seam for data models: ``AbstractDataModel`` and the registry of models by name.

A data model draws samples (x, y, z) of a data stream from a key and a step index
(docs/theory.md section 2): inputs x (N components), the teacher's inputs z (its own
dimension: x itself, or a latent c) and labels y = teacher(z) + noise. A subclass says
how many standard normals one sample uses (``groups``) and how they become inputs
(``inputs``); the base class draws them counter-based (``hmmjax.core.rng``), so a
sample is a pure function of (stream key, step) and the engine may block, chunk, resume
and pad runs without changing a number.

To add a data model: subclass ``AbstractDataModel`` (an equinox module: its fields are
arrays, or static settings), write a factory ``create(key, *, N, M, D, f, g, noise,
teacher_scaling, dtype)`` that draws one, and ``register_data_model(name, create)``.
The name becomes a valid ``data.model`` of configs, and online runs and grids of that
model run on the sweep engine like the built-in ones (see docs/guides/extending.md).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from hmmjax.config import register_choice
from hmmjax.core.rng import key_words, normal_counter, subkey_words
from hmmjax.models.two_layer import TwoLayer

__all__ = [
    "AbstractDataModel",
    "Batch",
    "DataModelEntry",
    "data_model_entry",
    "make_data_model",
    "register_data_model",
]


class Batch(NamedTuple):
    """B samples: inputs x (B, N), labels y (B,), the teacher's inputs z (B, dim z)."""

    x: Float[Array, "B N"]
    y: Float[Array, " B"]
    z: Float[Array, "B Z"]


class AbstractDataModel(eqx.Module):
    """A teacher plus a way to turn standard normals into inputs.

    Subclasses define the fields ``teacher``, ``noise`` and ``true_N`` (the true input
    dimension of a padded model, else None), and the abstract members below."""

    teacher: eqx.AbstractVar[TwoLayer]
    noise: eqx.AbstractVar[Float[Array, ""]]
    # and a field true_N (a default of None cannot be an AbstractVar)

    @property
    @abc.abstractmethod
    def groups(self) -> tuple[int, ...]:
        """How many standard normals one sample's inputs use, per group."""

    @abc.abstractmethod
    def inputs(self, *zT: Float[Array, "n P"]) -> tuple[Array, Array]:
        """Inputs x (P, N) and the teacher's inputs (P, dim z) of P samples, from the
        standard normals of each group laid out one column per sample."""

    @property
    @abc.abstractmethod
    def input_dim(self) -> int:
        """N, the number of input components (padded)."""

    def pad(self, N: int, D: int | None, M: int) -> AbstractDataModel:
        """This model (or a batch of them) zero-padded to N inputs, D latent directions and
        M teacher units, drawing the same samples followed by zeros. Models that cannot be
        padded run only in grids of one shape."""
        raise TypeError(f"cannot pad a {type(self).__name__}: sweep it without K, M, D, N axes")

    @property
    def n(self) -> int | Float[Array, ""]:
        """The input dimension N of the scalings: ``true_N`` if padded."""
        return self.input_dim if self.true_N is None else self.true_N

    @property
    def dtype(self):
        return self.teacher.w.dtype

    def sample_steps(
        self, key: PRNGKeyArray, steps: Int[Array, "*S"], batch: int, noise: bool = True
    ) -> Batch:
        """The ``batch`` samples of each step in ``steps`` (any shape S) of the data stream
        ``key``: leaves of shape (*S, B, ...), all steps drawn in one vectorised call
        (``realise`` of ``normals``)."""
        return self.realise(self.normals(key, steps, batch, noise))

    def normals(
        self, key: PRNGKeyArray, steps: Int[Array, "*S"], batch: int, noise: bool = True
    ) -> tuple[Float[Array, "*S n B"], ...]:
        """The standard normals behind ``sample_steps``: one array (*S, n_j, B) per group
        of ``groups``, then, with ``noise``, the label noise's (*S, 1, B).

        Component k of sample b of step s in group j is ``normal_counter``'s normal
        (k, s, b) of sub-stream j; the label noise is sub-stream ``len(groups)``. Drawing
        them is the part of a sample that does not depend on the model's arrays; a
        trainer may draw a block of steps at once and ``realise`` each step's samples
        when it trains on them (``hmmjax.train.online``)."""
        steps = jnp.asarray(steps)
        words = key_words(key)
        sizes = (*self.groups, 1) if noise else self.groups
        return tuple(
            jnp.moveaxis(normal_counter(subkey_words(words, j), steps, n, batch, self.dtype), 0, -2)
            for j, n in enumerate(sizes)
        )

    def realise(self, normals: tuple[Float[Array, "*S n B"], ...]) -> Batch:
        """The samples (leaves (*S, B, ...)) made of ``normals`` (as ``normals`` returns
        them: one per group, then the label noise if there is one)."""
        G = len(self.groups)
        lead = (*normals[0].shape[:-2], normals[0].shape[-1])

        def columns(z):  # (n, P): one column per sample, samples step-major
            return jnp.moveaxis(z, -2, 0).reshape(z.shape[-2], -1)

        x, zt = self.inputs(*(columns(z) for z in normals[:G]))
        if self.true_N is not None:
            x = jnp.where(jnp.arange(x.shape[-1]) < self.true_N, x, 0)
        y = self.teacher(zt)
        if len(normals) > G:
            y = y + self.noise * columns(normals[G])[0]
        return Batch(
            x=x.reshape(*lead, x.shape[-1]), y=y.reshape(lead), z=zt.reshape(*lead, zt.shape[-1])
        )

    def sample(self, key: PRNGKeyArray, batch: int, noise: bool = True) -> Batch:
        """``batch`` samples: step 0 of the data stream ``key``. Compiled as one program
        (one per model shape, ``batch`` and ``noise``): called eagerly, the threefry
        rounds and the transform would each run as an operation of their own over the
        whole batch (10 times slower for 10^5 samples at N = 400)."""
        return _first_step(self, key, int(batch), bool(noise))


@eqx.filter_jit
def _first_step(model: AbstractDataModel, key: PRNGKeyArray, batch: int, noise: bool) -> Batch:
    """``model.sample`` compiled; ``batch`` and ``noise`` are Python values (static)."""
    return model.sample_steps(key, jnp.zeros((), jnp.uint32), batch, noise)


@dataclass(frozen=True)
class DataModelEntry:
    """A registered data model: its factory and the shape facts the engine plans with.

    ``create(key, *, N, M, D, f, g, noise, teacher_scaling, dtype)`` draws one model;
    ``latent``: it has a latent dimension D (``data.D`` matters); ``teacher_on_latent``:
    its teacher acts on the D latent components rather than on the N inputs."""

    create: Callable[..., AbstractDataModel]
    latent: bool = False
    teacher_on_latent: bool = False


_REGISTRY: dict[str, DataModelEntry] = {}


def register_data_model(
    name: str,
    create: Callable[..., AbstractDataModel],
    *,
    latent: bool = False,
    teacher_on_latent: bool = False,
) -> None:
    """Make ``name`` a data model of online runs (``data.model = name`` in configs)."""
    _REGISTRY[name] = DataModelEntry(create, latent, teacher_on_latent)
    register_choice("data", "model", name)


def data_model_entry(name: str) -> DataModelEntry:
    """The registered data model ``name``; a ``ValueError`` lists the registered ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown data model {name!r}; allowed: {', '.join(_REGISTRY)}") from None


def make_data_model(key: PRNGKeyArray, kind: str, **settings) -> AbstractDataModel:
    """Draw the registered data model ``kind`` (keyword settings: N, M, D, f, g, noise,
    teacher_scaling, dtype; see the model's factory for its defaults)."""
    return data_model_entry(kind).create(key, **settings)
