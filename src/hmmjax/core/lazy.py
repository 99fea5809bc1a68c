"""Package faces that import on first use (PEP 562): ``__getattr__`` and ``__dir__`` for a
package's ``__init__`` from a table of public names and the modules that define them, so
that importing one module of the package does not import the others."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_face"]


def lazy_face(
    package: str, public: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """(``__getattr__``, ``__dir__``) of ``package``: name -> the module defining it."""

    def getattr_(name: str) -> Any:
        if name in public:
            return getattr(importlib.import_module(public[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def dir_() -> list[str]:
        return sorted(public)

    return getattr_, dir_
