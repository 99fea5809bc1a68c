"""Files: netCDF results with JSON attributes, the labelled results layout, ODE state
files, save-time files.

The names are imported on first use (PEP 562), so importing one module of this package
does not import the others (nor JAX, unless that module needs it).
"""

from __future__ import annotations

from hmmjax.core.lazy import lazy_face

_PUBLIC: dict[str, str] = {
    "ENGINE": "hmmjax.io.results",
    "FINITE_SCALARS": "hmmjax.io.layout",
    "JSON_ATTRS": "hmmjax.io.results",
    "LONG_NAMES": "hmmjax.io.layout",
    "OPTIONAL_KEYS": "hmmjax.io.state",
    "REQUIRED_KEYS": "hmmjax.io.state",
    "SHAPES": "hmmjax.io.state",
    "check_state": "hmmjax.io.state",
    "combine_models": "hmmjax.io.layout",
    "config_dict": "hmmjax.io.results",
    "finite_dataset": "hmmjax.io.layout",
    "grid_attrs": "hmmjax.io.layout",
    "grid_placer": "hmmjax.io.layout",
    "load_state": "hmmjax.io.state",
    "read_dataset": "hmmjax.io.results",
    "read_times": "hmmjax.io.times",
    "save_state": "hmmjax.io.state",
    "state_arrays": "hmmjax.io.state",
    "sweep_dataset": "hmmjax.io.layout",
    "write_dataset": "hmmjax.io.results",
}

__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_face(__name__, _PUBLIC)
