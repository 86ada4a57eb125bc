"""Training on Hugging Face accelerate: one loop (:mod:`aerith.train.loop`) and the stages that plug into it,
``align`` (stage 1), ``sft`` (stage 2) and ``scst`` (stage 3), registered in :data:`aerith.train.stages.STAGES`."""

from aerith.train.config import RecipeError, TrainConfig, load_config
from aerith.train.loop import NonFiniteLossError, TrainResult, train
from aerith.train.run_folder import ResumeError
from aerith.train.stage import Stage, StageObjective
from aerith.train.stages import STAGES

__all__ = [
    "STAGES", "NonFiniteLossError", "RecipeError", "ResumeError", "Stage", "StageObjective", "TrainConfig",
    "TrainResult", "load_config", "train",
]  # fmt: skip
