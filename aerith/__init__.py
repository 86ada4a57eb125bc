"""Aerith: vision-language models for remote-sensing imagery.

Heavy modules (torch, transformers) load on first use, so that the command
line and the data tools start fast. Importing aerith registers its model with
transformers' Auto classes as soon as transformers itself is imported
(:mod:`aerith.models.auto`).
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
    "register_auto_classes": "aerith.models.auto",
}


_SUBPACKAGES = ("geo",)  # `aerith.geo.scan(...)` after a plain `import aerith`


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"aerith.{name}")
    raise AttributeError(f"module 'aerith' has no attribute {name!r}")


__all__ = [*_LAZY, "__version__"]


def _register_auto_classes_on_transformers_import() -> None:
    from aerith.models.auto import register_when_transformers_loads

    register_when_transformers_loads()


_register_auto_classes_on_transformers_import()
