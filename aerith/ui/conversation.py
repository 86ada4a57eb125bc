"""A conversation about one scene: the tasks, their prompts, the history the model reads, the answers.

Each turn is one of the page's tasks, asked with the canonical prompts of
:mod:`aerith.prompts` (the prompts the models are trained and evaluated with):

| task | what the user gives | prompt |
|---|---|---|
| ``chat`` | any text (task tokens allowed) | the text as typed |
| ``classify`` | the class list | ``classify_prompt(classes)`` |
| ``question`` | a question | ``vqa_prompt(question)`` |
| ``caption`` | nothing | ``caption_prompt()`` |
| ``ground`` | a referring expression | ``ground_prompt(expression)`` |

A region drawn on the image is written into the text as ``[x1, y1, x2, y2]`` on the
0-1000 grid, the form the models read and write boxes in, so it reaches the prompt of the
text tasks (chat, question, ground) exactly as shown in the message box.

History: an AerithVLM reads the whole conversation (the processor's chat template,
Llama-2 style, the image in the first user turn); an InstructBLIP model is trained on
single turns and reads only the turn being asked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from aerith.boxes import PixelBox, format_box, to_grid
from aerith.parsing.boxes import parse_boxes
from aerith.parsing.classes import match_class
from aerith.prompts import caption_prompt, classify_prompt, ground_prompt, vqa_prompt
from aerith.serve.schemas import ClassListError, check_classes

UI_TASKS: tuple[str, ...] = ("chat", "classify", "question", "caption", "ground")
TEXT_TASKS = frozenset({"chat", "question", "ground"})
DEFAULT_CLASSES = (
    "farmland, forest, dense residential, industrial, harbor, airport, river, beach, desert, parking lot"
)  # SynthRS's ten scene classes
_SPLIT = re.compile(r"[,\n;]")


class TurnError(ValueError):
    """A turn that cannot be asked (empty text, no classes ...); the message says what to fix."""


def parse_classes(text: str) -> list[str]:
    """A class list as typed: comma-, semicolon- or line-separated names, blanks dropped, order kept.

    Raises:
        TurnError: no class, a name with no letters or digits, or a name given twice (as answers
            are matched: ``parking lot`` = ``parking-lot``).
    """
    classes = [c.strip() for c in _SPLIT.split(text or "") if c.strip()]
    if not classes:
        raise TurnError("classify needs a class list: type the class names separated by commas")
    try:
        check_classes(classes)
    except ClassListError as err:
        raise TurnError(f"the class list: {err}") from err
    return classes


def region_text(box: Sequence[int]) -> str:
    """How a region goes into the text: ``[x1, y1, x2, y2]`` on the 0-1000 grid."""
    return format_box(box)


@dataclass
class Turn:
    """One question and its answer.

    Attributes:
        task: one of :data:`UI_TASKS`.
        text: what the user typed (question, expression, chat text); ``""`` for caption and classify.
        classes: the class list of a classify turn.
        region: the last region drawn when the turn was asked (it is in ``text`` if the user kept it there).
        prompt: the instruction the model reads for this turn.
        answer: the model's answer (filled when it arrives).
        finish_reason: ``"stop"`` or ``"length"``.
        label: for classify, the class the answer names (``None``: none of them).
        match: how the answer matched a class (``exact``, ``contained``, ``fuzzy``, ``ambiguous``, ``none``).
        boxes_grid, boxes_pixel: the boxes written in the answer, on the grid and in the scene's pixels.
        seconds: from asking to the whole answer.
    """

    task: str
    text: str
    prompt: str
    classes: list[str] | None = None
    region: list[int] | None = None
    answer: str = ""
    finish_reason: str | None = None
    label: str | None = None
    match: str | None = None
    boxes_grid: list[list[int]] = field(default_factory=list)
    boxes_pixel: list[list[float]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    @property
    def shown_question(self) -> str:
        """The user's side of the turn as the chat shows it."""
        unused = f" (region {region_text(self.region)} not used)" if self.region and self.region_unused else ""
        if self.task == "classify":  # the whole scene is classified, as caption describes it
            return f"Classify: {', '.join(self.classes or [])}{unused}"
        if self.task == "caption":
            return f"Caption the scene.{unused}"
        if self.task == "ground":
            return f"Locate: {self.text}"
        return self.text

    @property
    def region_unused(self) -> bool:
        return self.region is not None and region_text(self.region) not in self.prompt

    def finish(self, answer: str, image_size: tuple[int, int]) -> None:
        """Record the answer: the class for classify, the boxes for the other tasks."""
        self.answer = answer
        if self.task == "classify":
            self.label, self.match = match_class(answer, list(self.classes or []))
            return
        pixel: list[PixelBox] = parse_boxes(answer, image_size, fmt="aerith")
        self.boxes_pixel = [[round(v, 2) for v in b] for b in pixel]
        self.boxes_grid = [list(to_grid(b, image_size)) for b in pixel]

    def shown_answer(self) -> str:
        """The model's side of the turn as the chat shows it."""
        if self.task == "classify":
            named = self.label if self.label else "none of the classes"
            return f"{named} (answer: {self.answer!r}; match: {self.match})"
        if self.boxes_grid:
            return f"{self.answer}\n\n({len(self.boxes_grid)} box{'es' if len(self.boxes_grid) > 1 else ''} drawn on the scene)"
        if self.task == "ground":
            return f"{self.answer}\n\n(no box in the answer)"
        return self.answer

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_turn(task: str, text: str, classes_text: str = "", region: Sequence[int] | None = None) -> Turn:
    """A new turn from what the page holds.

    Raises:
        TurnError: unknown task, or the text/classes the task needs are missing.
    """
    if task not in UI_TASKS:
        raise TurnError(f"unknown task {task!r}; choose one of {', '.join(UI_TASKS)}")
    text = (text or "").strip()
    region = list(region) if region is not None else None
    if task == "classify":
        classes = parse_classes(classes_text)
        return Turn(task, "", classify_prompt(classes), classes=classes, region=region)
    if task == "caption":
        return Turn(task, "", caption_prompt(), region=region)
    if not text:
        what = {"chat": "a message", "question": "a question", "ground": "what to locate (a referring expression)"}[task]
        raise TurnError(f"{task} needs {what}: type it in the message box")
    prompt = {"chat": lambda t: t, "question": vqa_prompt, "ground": ground_prompt}[task](text)
    return Turn(task, text, prompt, region=region)


def chat_messages(history: Sequence[Turn], turn: Turn, with_history: bool = True) -> list[dict[str, Any]]:
    """The conversation in transformers' chat format, the image in the first user turn.

    Args:
        history: the finished turns (answered), oldest first.
        turn: the turn being asked.
        with_history: ``False`` sends the new turn alone (InstructBLIP).
    """
    turns = [*history, turn] if with_history else [turn]
    messages: list[dict[str, Any]] = []
    for i, t in enumerate(turns):
        content: list[dict[str, str]] = [{"type": "image"}] if i == 0 else []
        content.append({"type": "text", "text": t.prompt})
        messages.append({"role": "user", "content": content})
        if t is not turn:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": t.answer}]})
    return messages


__all__ = [
    "DEFAULT_CLASSES", "TEXT_TASKS", "UI_TASKS", "Turn", "TurnError", "chat_messages", "make_turn",
    "parse_classes", "region_text",
]
