"""hmmjax: the hidden manifold model in JAX — structured data, online SGD, ODEs, sweeps.

The packages, bottom to top (each imports only from those below it; the contract is
checked by ``lint-imports``, see pyproject.toml):

    hmmjax.core          random numbers, activations and Gaussian integrals, files
    hmmjax.config        TOML configs, grids (standard library only)
    hmmjax.models        two-layer networks, the alpha-trick network
    hmmjax.data          data models (base class, registry), real data, invariant manifolds
    hmmjax.observables   order parameters, errors, compression, the empirical NTK
    hmmjax.train         trainers (base class), online SGD, finite sets, hinge gradient flow
    hmmjax.ode           the ODEs of docs/theory.md section 5 and their solvers
    hmmjax.sweep         the engine: set-up, lanes, memory plan, checkpoints, the ODE sweep
    hmmjax.analysis      fits and summaries of results (NumPy / xarray)
    hmmjax.io            results files, the results layout, state files
    hmmjax.plots         figures
    hmmjax.experiments   config -> labelled Dataset
    hmmjax.cli           the ``hmmjax`` command

The names below are the public API, re-exported here. Importing ``hmmjax`` is cheap and
does not import JAX: each name (and each package) is imported on first use (PEP 562), so
that ``hmmjax config`` and config errors stay fast.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("hmmjax")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

# public name -> the package that defines it
_PUBLIC: dict[str, str] = {
    # configs
    "Config": "hmmjax.config",
    "ConfigError": "hmmjax.config",
    "load_config": "hmmjax.config",
    "config_from_dict": "hmmjax.config",
    # building blocks
    "activation": "hmmjax.core",
    "gaussian_constants": "hmmjax.core",
    "TwoLayer": "hmmjax.models",
    "init_network": "hmmjax.models",
    "pad_network": "hmmjax.models",
    "AlphaModel": "hmmjax.models",
    "ConvNet": "hmmjax.models",
    "AbstractDataModel": "hmmjax.data",
    "Batch": "hmmjax.data",
    "make_data_model": "hmmjax.data",
    "register_data_model": "hmmjax.data",
    "eg_analytic": "hmmjax.observables",
    "eg_mc": "hmmjax.observables",
    "overlaps": "hmmjax.observables",
    "AbstractTrainer": "hmmjax.train",
    "SGD": "hmmjax.train",
    "advance": "hmmjax.train",
    "register_trainer": "hmmjax.train",
    # theory
    "solve_hmm": "hmmjax.ode",
    "solve_hmm_limit": "hmmjax.ode",
    "solve_hmm_sample": "hmmjax.ode",
    "solve_iid": "hmmjax.ode",
    # runs and results
    "simulate": "hmmjax.experiments",
    "ode_from_state": "hmmjax.experiments",
    "read_dataset": "hmmjax.io",
    "write_dataset": "hmmjax.io",
    "save_state": "hmmjax.io",
    "load_state": "hmmjax.io",
    "plot_results": "hmmjax.plots",
}
_PACKAGES = (
    "analysis", "cli", "config", "core", "data", "experiments", "io", "models",
    "observables", "ode", "plots", "sweep", "train",
)  # fmt: skip

__all__ = ["__version__", *_PUBLIC, *_PACKAGES]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    if name in _PACKAGES:
        return importlib.import_module(f"hmmjax.{name}")
    raise AttributeError(f"module 'hmmjax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
