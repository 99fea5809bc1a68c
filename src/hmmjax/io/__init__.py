"""Files: netCDF results with JSON attributes, the labelled results layout, ODE state
files, save-time files.
"""

from __future__ import annotations

from hmmjax.io.layout import (
    FINITE_SCALARS,
    LONG_NAMES,
    combine_models,
    finite_dataset,
    grid_attrs,
    grid_placer,
    sweep_dataset,
)
from hmmjax.io.results import ENGINE, JSON_ATTRS, config_dict, read_dataset, write_dataset
from hmmjax.io.state import OPTIONAL_KEYS, REQUIRED_KEYS, load_state, save_state, state_arrays
from hmmjax.io.times import read_times

__all__ = [
    "ENGINE",
    "FINITE_SCALARS",
    "JSON_ATTRS",
    "LONG_NAMES",
    "OPTIONAL_KEYS",
    "REQUIRED_KEYS",
    "combine_models",
    "config_dict",
    "finite_dataset",
    "grid_attrs",
    "grid_placer",
    "load_state",
    "read_dataset",
    "read_times",
    "save_state",
    "state_arrays",
    "sweep_dataset",
    "write_dataset",
]
