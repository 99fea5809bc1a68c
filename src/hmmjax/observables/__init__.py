"""What is measured on a network: order parameters and spectral densities,
generalisation errors, classification errors, compression, the empirical NTK.
"""

from __future__ import annotations

from hmmjax.observables.directions import compression
from hmmjax.observables.errors import (
    classification_error,
    fitted,
    linear_predictor,
    mse_between,
    ridge_dual,
    ridge_primal,
    sign_agreement,
)
from hmmjax.observables.metrics import (
    ANALYTIC_G,
    Measurement,
    analytic_available,
    eg_analytic,
    eg_mc,
    measure,
)
from hmmjax.observables.ntk import (
    Alignment,
    empirical_ntk,
    kernel_regression,
    kernel_svm,
    label_alignment,
    network_ntk,
    sign_error,
    two_layer_ntk,
)
from hmmjax.observables.order_params import (
    MAX_EIGH_BYTES,
    Overlaps,
    SpectralBasis,
    SpectralDensities,
    gram,
    overlaps,
    spectral_arrays,
    spectral_basis,
    spectral_densities,
    symmetric_eigh,
)

__all__ = [
    "ANALYTIC_G",
    "Alignment",
    "MAX_EIGH_BYTES",
    "Measurement",
    "Overlaps",
    "SpectralBasis",
    "SpectralDensities",
    "analytic_available",
    "classification_error",
    "compression",
    "eg_analytic",
    "eg_mc",
    "empirical_ntk",
    "fitted",
    "gram",
    "kernel_regression",
    "kernel_svm",
    "label_alignment",
    "linear_predictor",
    "measure",
    "mse_between",
    "network_ntk",
    "overlaps",
    "ridge_dual",
    "ridge_primal",
    "sign_agreement",
    "sign_error",
    "spectral_arrays",
    "spectral_basis",
    "spectral_densities",
    "symmetric_eigh",
    "two_layer_ntk",
]
