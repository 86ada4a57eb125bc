"""Library functions behind `aerith align`, `aerith sft`, `aerith scst` and `aerith merge-lora`."""

from __future__ import annotations

from pathlib import Path

from aerith.train.config import TrainConfig, load_config
from aerith.train.loop import TrainResult


def build_config(
    stage: str,
    recipe: Path,
    overrides: list[str] | None = None,
    *,
    out_dir: Path | None = None,
    init: str | None = None,
    max_steps: int | None = None,
) -> TrainConfig:
    """Recipe + ``--set`` overrides + the typed options (which win), checked against ``stage``."""
    extra = list(overrides or [])
    if out_dir is not None:
        extra.append(f"out_dir={out_dir}")
    if init is not None:
        extra.append(f"model.init={init}")
    if max_steps is not None:
        extra.append(f"schedule.max_steps={max_steps}")
    config = load_config(recipe, extra)
    if config.stage != stage:
        raise ValueError(f"{recipe} is a recipe for `aerith {config.stage}`, not `aerith {stage}`")
    return config


def run_stage(config: TrainConfig, *, resume: bool = False) -> TrainResult:
    """Run the recipe's stage."""
    from aerith.train.align import run_align
    from aerith.train.scst import run_scst
    from aerith.train.sft import run_sft

    return {"align": run_align, "sft": run_sft, "scst": run_scst}[config.stage](config, resume=resume)
