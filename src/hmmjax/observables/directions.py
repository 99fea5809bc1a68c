"""Compression of uninformative directions (docs/theory.md section 7): the growth of the
first layer of an alpha-trick network along the d_par informative directions and along
the d - d_par others, per-direction RMS over the true units.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from hmmjax.models.alpha_net import InvariantNet

__all__ = ["compression"]


def _rms_split(w: Float[Array, "H d"], mask: Float[Array, " H"], width, d_par: int):
    """Per-direction RMS over the true units of w along the first d_par directions and
    along the others."""
    sq = (w**2) * mask[:, None]
    d = w.shape[-1]
    par = jnp.sqrt(jnp.sum(sq[:, :d_par]) / (width * d_par))
    perp = jnp.sqrt(jnp.sum(sq[:, d_par:]) / (width * (d - d_par)))
    return par, perp


def compression(
    net: InvariantNet, net0: InvariantNet, d_par: int
) -> tuple[Float[Array, ""], Float[Array, ""], Float[Array, ""], Float[Array, ""]]:
    """(g_par, g_perp, omega_par, omega_perp): the per-direction RMS growth of the first
    layer, omega - omega0, and of the weights omega, along and across the informative
    directions."""
    g_par, g_perp = _rms_split(net.omega - net0.omega, net.mask, net.width, d_par)
    w_par, w_perp = _rms_split(net.omega, net.mask, net.width, d_par)
    return g_par, g_perp, w_par, w_perp
