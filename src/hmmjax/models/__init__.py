"""Networks: the two-layer student/teacher (soft committee machine) and the
alpha-trick network of the invariant-manifold experiments.
"""

from __future__ import annotations

from hmmjax.models.alpha_net import InvariantNet, hinge_grad, hinge_loss, init_net, output
from hmmjax.models.two_layer import (
    INIT_SCALE,
    INITS,
    SCALINGS,
    SECOND_LAYERS,
    TwoLayer,
    init_network,
    pad_network,
    pad_tail,
    root,
)

__all__ = [
    "INITS",
    "INIT_SCALE",
    "InvariantNet",
    "SCALINGS",
    "SECOND_LAYERS",
    "TwoLayer",
    "hinge_grad",
    "hinge_loss",
    "init_net",
    "init_network",
    "output",
    "pad_network",
    "pad_tail",
    "root",
]
