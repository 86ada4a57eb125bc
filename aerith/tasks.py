"""The four tasks and the token that starts each instruction (DESIGN §3): the one definition."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

TASKS: tuple[str, ...] = ("cls", "vqa", "cap", "vg")
TASK_TOKENS: Mapping[str, str] = MappingProxyType({"cls": "[CLS]", "vqa": "[VQA]", "cap": "[CAP]", "vg": "[VG]"})

__all__ = ["TASKS", "TASK_TOKENS"]
