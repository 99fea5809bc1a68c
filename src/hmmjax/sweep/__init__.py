"""The engine: the set-up of a grid point, lanes (stacked, padded points), the memory
plan, checkpoints, hosts, the one compiled chunk loop, and the ODE of every point.
"""

from __future__ import annotations

from hmmjax.sweep.checkpoint import (
    FORMAT,
    Resume,
    checkpoint_files,
    checkpoint_path,
    describe_config,
    fingerprint,
    header,
    load_checkpoint,
    model_checkpoint,
    pack,
    save_checkpoint,
    unpack,
)
from hmmjax.sweep.engine import (
    Progress,
    compiled_chunk,
    diverged_at,
    first_measure,
    placements,
    run_points,
)
from hmmjax.sweep.finite import build_finite_lanes, epochs
from hmmjax.sweep.hosts import gather_shares, process_share
from hmmjax.sweep.invariant import (
    InvariantResult,
    final_networks,
    invariant_lanes,
    iteration_steps,
    run_grid,
)
from hmmjax.sweep.lanes import (
    Lanes,
    Sizes,
    build_lanes,
    grid_sizes,
    point_configs,
    point_steps,
    record_times,
    setup_key,
    unit_masks,
)
from hmmjax.sweep.memory import (
    RUNTIME_BYTES,
    SAFETY,
    chunk_bytes,
    compiled_bytes,
    measure_footprint,
    plan_grid,
    record_bytes,
    setup_bytes,
    tree_bytes,
)
from hmmjax.sweep.ode import ode_points
from hmmjax.sweep.plan import Footprint, Plan, choose_devices, device_budget
from hmmjax.sweep.setup import Keys, Setup, build, draw_function, draw_students, dtype_of, run_keys

__all__ = [
    'FORMAT',
    'Footprint',
    'InvariantResult',
    'Keys',
    'Lanes',
    'Plan',
    'Progress',
    'RUNTIME_BYTES',
    'Resume',
    'SAFETY',
    'Setup',
    'Sizes',
    'build',
    'build_finite_lanes',
    'build_lanes',
    'checkpoint_files',
    'checkpoint_path',
    'choose_devices',
    'chunk_bytes',
    'compiled_bytes',
    'compiled_chunk',
    'describe_config',
    'device_budget',
    'diverged_at',
    'draw_function',
    'draw_students',
    'dtype_of',
    'epochs',
    'final_networks',
    'fingerprint',
    'first_measure',
    'gather_shares',
    'grid_sizes',
    'header',
    'invariant_lanes',
    'iteration_steps',
    'load_checkpoint',
    'measure_footprint',
    'model_checkpoint',
    'ode_points',
    'pack',
    'placements',
    'plan_grid',
    'point_configs',
    'point_steps',
    'process_share',
    'record_bytes',
    'record_times',
    'run_grid',
    'run_keys',
    'run_points',
    'save_checkpoint',
    'setup_bytes',
    'setup_key',
    'tree_bytes',
    'unit_masks',
    'unpack',
]
