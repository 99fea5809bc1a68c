"""Save-time files of ``hmmjax ode --save-times``: numbers separated by white space, commas
or new lines, finite, >= 0 and increasing.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["read_times"]


def read_times(path: str | os.PathLike) -> np.ndarray:
    """Save times from a text file: numbers separated by white space, commas or new lines."""
    text = open(path, encoding="utf-8").read().replace(",", " ")
    try:
        t = np.array([float(word) for word in text.split()])
    except ValueError as err:
        raise ValueError(f"save-times file {path}: {err}") from None
    if t.size == 0 or not np.all(np.isfinite(t)) or np.any(t < 0) or np.any(np.diff(t) <= 0):
        raise ValueError(f"save-times file {path}: expected finite times >= 0 in increasing order")
    return t
