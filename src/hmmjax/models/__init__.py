"""Networks: the two-layer student/teacher (soft committee machine) and the
alpha-trick networks of the invariant-manifold experiments (the seam ``AlphaModel``, the
two-layer ``InvariantNet`` and the convolutional ``ConvNet``).
"""

from __future__ import annotations

from hmmjax.models.alpha import AlphaModel, hinge_from_margins, hinge_loss, relative_change
from hmmjax.models.alpha_cnn import ConvNet, init_conv_net
from hmmjax.models.alpha_net import InvariantNet, hinge_grad, init_net, output
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
    "AlphaModel",
    "ConvNet",
    "INITS",
    "INIT_SCALE",
    "InvariantNet",
    "SCALINGS",
    "SECOND_LAYERS",
    "TwoLayer",
    "hinge_from_margins",
    "hinge_grad",
    "hinge_loss",
    "init_conv_net",
    "init_net",
    "init_network",
    "output",
    "pad_network",
    "pad_tail",
    "relative_change",
    "root",
]
