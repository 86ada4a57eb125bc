"""Aerith: vision-language models for remote-sensing imagery.

Heavy modules (torch, transformers) load on first use, so that the command
line and the data tools start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0.dev0"

_LAZY = {
    "AerithConfig": "aerith.models.configuration_aerith",
    "AerithForConditionalGeneration": "aerith.models.modeling_aerith",
    "AerithProcessor": "aerith.models.processing_aerith",
    "AerithVLM": "aerith.infer.vlm",
    "InstructBlipVLM": "aerith.infer.instructblip",
    "load_vlm": "aerith.infer.load",
    "list_presets": "aerith.models.presets",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aerith' has no attribute {name!r}")


__all__ = [*_LAZY, "__version__"]
