"""Drivers: config -> labelled Dataset for every kind of run."""

from __future__ import annotations

from hmmjax.experiments.driver import (
    SPLIT_AXES,
    linear_errors,
    run_checkpoints,
    run_title,
    simulate,
)
from hmmjax.experiments.invariant import (
    COMPRESSION,
    SEED_STRIDE,
    build_invariant_lanes,
    invariant_dataset,
    invariant_steps,
    invariant_title,
    invariant_trainer,
    lane_draws,
    member_seeds,
    ntk_analyses,
)
from hmmjax.experiments.optimise import (
    OPTIMISE_AXES,
    check_optimise,
    optimise,
    optimise_checkpoints,
    schedule_path,
    schedule_settings,
)
from hmmjax.experiments.theory import ode_dataset, ode_divergence, ode_from_state
from hmmjax.experiments.validate import check_config

__all__ = [
    'COMPRESSION',
    'OPTIMISE_AXES',
    'SEED_STRIDE',
    'SPLIT_AXES',
    'build_invariant_lanes',
    'check_config',
    'check_optimise',
    'invariant_dataset',
    'invariant_steps',
    'invariant_title',
    'invariant_trainer',
    'lane_draws',
    'linear_errors',
    'member_seeds',
    'ntk_analyses',
    'ode_dataset',
    'ode_divergence',
    'ode_from_state',
    'optimise',
    'optimise_checkpoints',
    'run_checkpoints',
    'run_title',
    'schedule_path',
    'schedule_settings',
    'simulate',
]
