"""Foundations: counter-based random numbers, the activation table with its Gaussian
constants, the Gaussian integrals of the ODEs, learning-rate schedules, pytree helpers,
independent groups of a batch (for the cores of a CPU) and atomic file writes.

The names are imported on first use (PEP 562): ``hmmjax.core.files`` (atomic writes, used
by the results files and figures) does not import JAX.
"""

from __future__ import annotations

from hmmjax.core.lazy import lazy_face

_PUBLIC: dict[str, str] = {
    "AbstractSchedule": "hmmjax.core.schedules",
    "Activation": "hmmjax.core.activations",
    "CACHE_VARIABLE": "hmmjax.core.cache",
    "CPU_GROUPS": "hmmjax.core.groups",
    "G_NAMES": "hmmjax.core.integrals",
    "GaussianConstants": "hmmjax.core.activations",
    "MIN_COMPILE_SECONDS": "hmmjax.core.cache",
    "NAMES": "hmmjax.core.activations",
    "NpzError": "hmmjax.core.files",
    "POWER_MAX": "hmmjax.core.schedules",
    "Piecewise": "hmmjax.core.schedules",
    "Power": "hmmjax.core.schedules",
    "SCHEDULES": "hmmjax.core.schedules",
    "TABLE_LIMIT": "hmmjax.core.tables",
    "TABLE_MAX_BYTES": "hmmjax.core.tables",
    "activation": "hmmjax.core.activations",
    "atomic_target": "hmmjax.core.files",
    "atomic_write_bytes": "hmmjax.core.files",
    "cache_folder": "hmmjax.core.cache",
    "cast_schedule": "hmmjax.core.schedules",
    "check_table": "hmmjax.core.tables",
    "covariance": "hmmjax.core.integrals",
    "cpu_groups": "hmmjax.core.groups",
    "eg": "hmmjax.core.integrals",
    "eg_from_covariance": "hmmjax.core.integrals",
    "enable_compile_cache": "hmmjax.core.cache",
    "gaussian_constants": "hmmjax.core.activations",
    "gaussian_expectation": "hmmjax.core.activations",
    "group_bounds": "hmmjax.core.groups",
    "i2": "hmmjax.core.integrals",
    "i3": "hmmjax.core.integrals",
    "i4": "hmmjax.core.integrals",
    "in_groups": "hmmjax.core.groups",
    "j2": "hmmjax.core.integrals",
    "key_words": "hmmjax.core.rng",
    "lazy_face": "hmmjax.core.lazy",
    "learning_rate": "hmmjax.core.schedules",
    "make_schedule": "hmmjax.core.schedules",
    "normal": "hmmjax.core.rng",
    "normal_counter": "hmmjax.core.rng",
    "normal_from_bits": "hmmjax.core.rng",
    "read_npz": "hmmjax.core.files",
    "read_schedule": "hmmjax.core.schedules",
    "read_table": "hmmjax.core.tables",
    "seed_key": "hmmjax.core.rng",
    "stack": "hmmjax.core.trees",
    "subkey_words": "hmmjax.core.rng",
    "take": "hmmjax.core.trees",
    "tree_bytes": "hmmjax.core.trees",
    "tree_norm": "hmmjax.core.trees",
    "threefry2x32": "hmmjax.core.rng",
}

__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_face(__name__, _PUBLIC)
