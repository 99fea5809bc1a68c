"""Save-time files of ``hmmjax ode --save-times``: numbers separated by white space, commas
or new lines, finite, >= 0 and increasing.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["read_times"]


def read_times(path: str | os.PathLike, name: str = "save-times file") -> np.ndarray:
    """Save times from a text file: numbers separated by white space, commas or new lines,
    finite, >= 0 and strictly increasing, at least one.

    Every problem, a missing or unreadable file included, is a ``ValueError`` of one line
    that starts with ``name`` and the path (``hmmjax ode`` passes ``"--save-times"``).
    """
    where = f"{name} {path}"
    expected = "expected finite numbers >= 0, increasing, separated by spaces, commas or lines"
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ValueError(f"{where}: not found") from None
    except IsADirectoryError:
        raise ValueError(f"{where}: is a folder, expected a text file of times") from None
    except UnicodeDecodeError:
        raise ValueError(f"{where}: not a text file (not UTF-8); {expected}") from None
    except OSError as err:
        raise ValueError(f"{where}: cannot read it ({err.strerror or err})") from None
    words = text.replace(",", " ").split()
    if not words:
        raise ValueError(f"{where}: holds no times; {expected}")
    times = []
    for i, word in enumerate(words, 1):
        try:
            times.append(float(word))
        except ValueError:
            raise ValueError(
                f"{where}: entry {i} is {word[:40]!r}, not a number; {expected}"
            ) from None
    t = np.array(times)
    for i, value in enumerate(t, 1):
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"{where}: entry {i} is {words[i - 1][:40]}; {expected}")
    bad = np.flatnonzero(np.diff(t) <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        raise ValueError(
            f"{where}: entry {i + 1} = {words[i]} is not above entry {i} = {words[i - 1]}; "
            f"{expected}"
        )
    return t
