"""The registry of training stages: ``stage:`` in a recipe names one of :data:`STAGES`.

Adding a stage is one module exporting a :class:`aerith.train.stage.Stage` and one entry here
(plus its CLI command in :mod:`aerith.cli` and a recipe under ``configs/``).
"""

from __future__ import annotations

from aerith.train.align import ALIGN
from aerith.train.scst import SCST
from aerith.train.sft import SFT
from aerith.train.stage import Stage

STAGES: dict[str, Stage] = {"align": ALIGN, "sft": SFT, "scst": SCST}


def get_stage(name: str) -> Stage:
    """The registered stage ``name``; an unknown name raises ``ValueError`` listing the known ones."""
    if name not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {name!r}")
    return STAGES[name]
