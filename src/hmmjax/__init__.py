"""hmmjax: the hidden manifold model in JAX — structured data, online SGD, ODEs, sweeps.

Importing the package is cheap and does not import JAX; the modules are:

    hmmjax.activations, hmmjax.integrals   non-linearities, Gaussian constants and integrals
    hmmjax.data, hmmjax.networks           data models and two-layer networks
    hmmjax.online, hmmjax.metrics          online SGD, generalisation errors
    hmmjax.order_params, hmmjax.state      order parameters, spectral densities, state files
    hmmjax.config, hmmjax.simulate         TOML configs and the experiment driver
    hmmjax.results, hmmjax.plots           netCDF results and figures
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hmmjax")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"
