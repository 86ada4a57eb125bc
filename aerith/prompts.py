"""The canonical prompt of each task (DESIGN §3): used for inference and evaluation.

Training may phrase instructions several ways; asking a model and scoring it
use these, so that numbers are comparable across runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from aerith.tasks import TASK_TOKENS


def classify_prompt(classes: Sequence[str]) -> str:
    if not classes:
        raise ValueError("classify needs at least one class name")
    return f"{TASK_TOKENS['cls']} Choose the category that best describes the image from: {', '.join(classes)}."


def vqa_prompt(question: str) -> str:
    if not question.strip():
        raise ValueError("the question is empty")
    return f"{TASK_TOKENS['vqa']} {question.strip()} Answer with a single word or phrase."


def caption_prompt() -> str:
    return f"{TASK_TOKENS['cap']} Describe this image."


def ground_prompt(expression: str) -> str:
    if not expression.strip():
        raise ValueError("the referring expression is empty")
    return f"{TASK_TOKENS['vg']} Locate: {expression.strip()}"
