"""Library functions behind `aerith align`, `aerith sft`, `aerith scst` and `aerith merge-lora`."""

from __future__ import annotations

import shlex
from pathlib import Path

from aerith.train.config import TrainConfig, load_config
from aerith.train.loop import TrainResult, train
from aerith.train.stages import get_stage


def build_config(
    stage: str,
    recipe: Path,
    overrides: list[str] | None = None,
    *,
    out_dir: Path | None = None,
    init: str | None = None,
    max_steps: int | None = None,
) -> TrainConfig:
    """Recipe + ``--set`` overrides + the typed options (which win), checked against ``stage``.

    Everything is checked here, before any data or model loads: the recipe's syntax and
    types (:class:`aerith.train.config.RecipeError`) and the stage.
    """
    typed = {
        "out_dir": ("--out-dir", None if out_dir is None else str(out_dir)),
        "model.init": ("--init", init),
        "schedule.max_steps": ("--max-steps", max_steps),
    }
    given = {key: (flag, value) for key, (flag, value) in typed.items() if value is not None}
    config = load_config(
        recipe, overrides, values={key: value for key, (_, value) in given.items()},
        value_origins={key: f"{flag} {shlex.quote(str(value))}" for key, (flag, value) in given.items()},
    )
    get_stage(config.stage)
    if config.stage != stage:
        raise ValueError(f"{recipe} is a recipe for `aerith {config.stage}`, not `aerith {stage}`")
    get_stage(stage).check_config(config)
    return config


def run_stage(config: TrainConfig, *, resume: bool = False) -> TrainResult:
    """Run the recipe's stage (one of :data:`aerith.train.stages.STAGES`) in the training loop."""
    get_stage(config.stage)  # an unknown stage fails here, naming the known ones
    return train(config, resume=resume)
