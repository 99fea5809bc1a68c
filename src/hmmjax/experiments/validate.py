"""Checks of a config that need more than the config itself: one line naming the key.

``hmmjax.config`` validates every key and the combinations of keys without importing
anything heavy. What needs the layers above it (the files of a real data set: its number
of inputs and samples) is checked here, for every point of a grid, before any work;
``simulate`` (and so ``hmmjax run``) and ``hmmjax config FILE`` call ``check_config``.
"""

from __future__ import annotations

from functools import partial

from hmmjax.config import REAL_DATA, Config, ConfigError, show
from hmmjax.data.real import shape

__all__ = ["check_config"]


def check_config(cfg: Config) -> None:
    """Raise ``ConfigError`` for what ``hmmjax.config`` cannot check by itself; errors at a
    grid point name the grid axis (``grid.P[1] = ...``)."""
    cfg.grid.check_each(cfg, partial(_check_point, shapes={}))


def _check_point(cfg: Config, shapes: dict[tuple[str, str], tuple[int, int]]) -> None:
    if cfg.finite.P > 0:
        _check_real_data(cfg, shapes)


def _check_real_data(cfg: Config, shapes: dict[tuple[str, str], tuple[int, int]]) -> None:
    """A real data set's files are complete and agree (``hmmjax.data.real.shape``), it
    has data.N inputs and enough samples. ``shapes``: the data sets already read, by
    (data.model, data.path), so that the points of a grid read each once."""
    P = cfg.finite.P
    if cfg.data.model not in REAL_DATA:
        return
    key = (cfg.data.model, cfg.data.path)
    try:
        if key not in shapes:
            shapes[key] = shape(*key)
        n, N = shapes[key]
    except (OSError, ValueError) as err:
        raise ConfigError(f"data.path = {show(cfg.data.path)}: {err}") from None
    if cfg.data.N != N:
        raise ConfigError(
            f"data.N = {cfg.data.N}: data.model = {show(cfg.data.model)} has {N} inputs; "
            f"set data.N = {N}"
        )
    if P + cfg.run.test_size > n:
        raise ConfigError(
            f"finite.P = {P}: with run.test_size = {cfg.run.test_size}, more than the {n} "
            f"samples of {cfg.data.model}; expected finite.P + run.test_size <= {n}"
        )
