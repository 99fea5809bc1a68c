"""Trainers: the typed base class of the sweep engine's trainers and its block loop;
online SGD; finite training sets (optax); hinge-loss gradient flow (alpha trick).
"""

from __future__ import annotations

from hmmjax.train.base import (
    AbstractTrainer,
    register_trainer,
    run_blocks,
    run_steps,
    trainer_factory,
)
from hmmjax.train.finite import (
    FiniteMeasurement,
    FiniteTrainer,
    TestSet,
    TrainingSet,
    training_batch,
)
from hmmjax.train.hinge import (
    HingeSet,
    HingeState,
    HingeTest,
    InvariantMeasurement,
    InvariantTrainer,
    iteration_records,
)
from hmmjax.train.online import (
    SGD,
    STEP_INPUTS_MIN,
    advance,
    delayed_block,
    draw_block,
    record_steps,
)

__all__ = [
    "AbstractTrainer",
    "FiniteMeasurement",
    "FiniteTrainer",
    "HingeSet",
    "HingeState",
    "HingeTest",
    "InvariantMeasurement",
    "InvariantTrainer",
    "SGD",
    "STEP_INPUTS_MIN",
    "TestSet",
    "TrainingSet",
    "advance",
    "delayed_block",
    "draw_block",
    "iteration_records",
    "record_steps",
    "register_trainer",
    "run_blocks",
    "run_steps",
    "trainer_factory",
    "training_batch",
]
