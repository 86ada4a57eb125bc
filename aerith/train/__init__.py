"""Training stages on Hugging Face accelerate: ``align`` (stage 1) and ``sft`` (stage 2)."""

from aerith.train.config import TrainConfig, load_config
from aerith.train.loop import NonFiniteLossError, TrainResult, train

__all__ = ["NonFiniteLossError", "TrainConfig", "TrainResult", "load_config", "train"]
