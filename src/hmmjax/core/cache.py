"""Warm starts: JAX's persistent compilation cache, on by default.

A run compiles its programs (the set-up draw, the engine's chunk, the ODE) before its
first step; the cache keeps the compiled programs on disk, so the second run of a config
(or of a config of the same shapes) loads them instead of compiling again.

Where the cache lives, in order:

- ``HMMJAX_COMPILE_CACHE``: a folder; or ``off`` (also ``0``, ``false``, ``no``,
  ``none``) to turn the cache off;
- a cache JAX was already given (``JAX_COMPILATION_CACHE_DIR`` or
  ``jax.config.update("jax_compilation_cache_dir", ...)``): left as it is;
- else ``$XDG_CACHE_HOME/hmmjax/jax`` (``~/.cache/hmmjax/jax``).

Only programs that took at least ``MIN_COMPILE_SECONDS`` (0.3 s) to compile are written:
caching every one of the many small programs (the first measurement ran op by op then) made
the quickstart's first run take 44 s instead of 28 s and its second 33 s, while with the
threshold the second run compiles 2.6 s instead of 6.5 s (benchmarks/RESULTS.md, warm
starts). The cache is trusted code: keep it in a folder only you can write to. A damaged
entry is not an error: JAX warns and compiles. Numbers do not depend on the cache: a
loaded program is the program that was compiled. JAX does not write a program that calls
back to Python (a host callback): hmmjax's programs have none (the ODE's diffrax checks are
made on the host instead, ``hmmjax.ode.solve``).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_VARIABLE", "MIN_COMPILE_SECONDS", "cache_folder", "enable_compile_cache"]

CACHE_VARIABLE = "HMMJAX_COMPILE_CACHE"
MIN_COMPILE_SECONDS = 0.3
_OFF = ("off", "0", "false", "no", "none")


def cache_folder(environ: dict[str, str] | None = None) -> Path | None:
    """The folder ``HMMJAX_COMPILE_CACHE`` and the XDG default give (None: off). A cache
    JAX already has is not looked at here (``enable_compile_cache`` keeps it)."""
    env = os.environ if environ is None else environ
    value = env.get(CACHE_VARIABLE)
    if value is not None:
        if value.strip().lower() in _OFF or not value.strip():
            return None
        return Path(value).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(base) / "hmmjax" / "jax"


def enable_compile_cache() -> Path | None:
    """Turn the persistent compilation cache on (see the module docstring); returns the
    folder in use, or None when it is off. Call it before the first compilation; calling
    it again is harmless. A folder that cannot be created leaves the cache off (a warning,
    not an error: the run itself does not need it)."""
    import jax  # noqa: PLC0415 (the module is imported by the CLI before JAX starts)

    folder = cache_folder()
    given = jax.config.jax_compilation_cache_dir
    if os.environ.get(CACHE_VARIABLE) is None and given:
        return Path(given)  # the user's own JAX cache
    if folder is None:
        if given:
            jax.config.update("jax_compilation_cache_dir", None)
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        import warnings  # noqa: PLC0415

        warnings.warn(f"hmmjax: compilation cache off: cannot create {folder}: {err}",
                      stacklevel=2)  # fmt: skip
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder
