"""Data models: the typed base class and registry; i.i.d. Gaussian, hidden manifold,
Gaussian equivalent; real data sets (digits, MNIST); invariant manifolds (stripe, cylinder).
"""

from __future__ import annotations

from hmmjax.data.base import (
    AbstractDataModel,
    Batch,
    DataModelEntry,
    data_model_entry,
    make_data_model,
    register_data_model,
)
from hmmjax.data.gaussian import KINDS, GaussianEquivalent, HiddenManifold, IIDGaussian, draw_model
from hmmjax.data.invariant import (
    CYLINDER_R2,
    CYLINDER_R2_THEORY,
    D_PAR,
    STRIPE,
    InvariantData,
    labels,
    lane_keys,
    sample,
)
from hmmjax.data.real import (
    DATASETS,
    IDX_TYPES,
    RealData,
    even_odd,
    input_dim,
    load,
    load_digits_binary,
    load_mnist_binary,
    read_idx,
    shape,
    split,
    standardise,
    write_idx,
)

__all__ = [
    "AbstractDataModel",
    "Batch",
    "CYLINDER_R2",
    "CYLINDER_R2_THEORY",
    "DATASETS",
    "D_PAR",
    "DataModelEntry",
    "GaussianEquivalent",
    "HiddenManifold",
    "IDX_TYPES",
    "IIDGaussian",
    "InvariantData",
    "KINDS",
    "RealData",
    "STRIPE",
    "data_model_entry",
    "draw_model",
    "even_odd",
    "input_dim",
    "labels",
    "lane_keys",
    "load",
    "load_digits_binary",
    "load_mnist_binary",
    "make_data_model",
    "read_idx",
    "register_data_model",
    "sample",
    "shape",
    "split",
    "standardise",
    "write_idx",
]
