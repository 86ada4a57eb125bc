"""One served model: its engine, its batching queue, and the task prompts and answer parsing.

:class:`ModelService` is what front ends share: the HTTP server and a web UI in the same
process hold one service, so they share one model and one queue. Everything that touches the
model goes through the :class:`~aerith.serve.batcher.Batcher`::

    service = ModelService(aerith.load_vlm("aerith-tiny"), name="aerith-tiny").start()
    prepared = service.prepare_chat(messages, images)       # transformers chat format
    settings = service.settings_for(prepared, max_tokens=32)
    text = service.batcher.generate(prepared, settings).text
    for piece in service.batcher.stream(prepared, settings): ...
    service.close()

The tasks ask with the canonical prompts of :mod:`aerith.prompts` and parse answers as the
facade's ``classify/answer/caption/ground`` do, so a served answer equals the library's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aerith.infer.facade import VLM
from aerith.parsing.boxes import parse_boxes
from aerith.parsing.classes import match_class
from aerith.prompts import caption_prompt, classify_prompt, ground_prompt, vqa_prompt
from aerith.serve.batcher import Batcher
from aerith.serve.engine import Completion, GenerationSettings, PreparedInput, SettingError, engine_for
from aerith.serve.metrics import Metrics


@dataclass(frozen=True)
class Task:
    """A task endpoint: the prompt for one image and its argument, and the answer -> JSON result."""

    prompt: Callable[[Any], str]
    parse: Callable[[str, Any, tuple[int, int]], dict[str, Any]]


def _classify(text: str, classes: Sequence[str], _size: tuple[int, int]) -> dict[str, Any]:
    label = match_class(text, list(classes))[0]
    return {"label": label, "text": text}


def _ground(text: str, _expression: str, size: tuple[int, int]) -> dict[str, Any]:
    boxes = parse_boxes(text, size, fmt="aerith")
    return {"boxes": [list(b) for b in boxes], "text": text, "image_size": list(size)}


TASKS: dict[str, Task] = {
    "classify": Task(prompt=classify_prompt, parse=_classify),
    "answer": Task(prompt=vqa_prompt, parse=lambda text, _q, _s: {"answer": text, "text": text}),
    "caption": Task(prompt=lambda _none: caption_prompt(), parse=lambda text, _a, _s: {"caption": text, "text": text}),
    "ground": Task(prompt=ground_prompt, parse=_ground),
}


class ModelService:
    """A loaded model served through one dynamic-batching queue.

    Args:
        vlm: a facade from :func:`aerith.load_vlm`.
        name: the model's id in the API (``/v1/models``).
        max_batch, window_ms, max_queue: the :class:`Batcher`'s settings.
        default_max_tokens: the answer length when a request gives none.
        metrics: shared with the HTTP layer; a new registry when ``None``.
    """

    def __init__(
        self,
        vlm: VLM,
        *,
        name: str,
        max_batch: int = 16,
        window_ms: float = 10.0,
        max_queue: int = 256,
        default_max_tokens: int = 256,
        metrics: Metrics | None = None,
    ) -> None:
        self.vlm = vlm
        self.name = name
        self.engine = engine_for(vlm)
        self.metrics = metrics or Metrics()
        self.default_max_tokens = default_max_tokens
        self.batcher = Batcher(self.engine, max_batch=max_batch, window_ms=window_ms, max_queue=max_queue, metrics=self.metrics)

    def start(self) -> ModelService:
        self.batcher.start()
        self.metrics.ready.set(1)
        return self

    def close(self, timeout: float | None = None) -> bool:
        """Stop taking requests and finish the accepted ones (see :meth:`Batcher.close`)."""
        self.metrics.ready.set(0)
        return self.batcher.close(timeout)

    # -- what the model is ------------------------------------------------------------------------
    @property
    def warning(self) -> str | None:
        """The random-weights warning of an untrained model, else ``None``."""
        return self.vlm.random_weights_warning

    def describe(self) -> dict[str, Any]:
        """Model facts for ``/v1/models``."""
        return {
            "kind": self.vlm.kind,
            "training_state": self.vlm.training_state,
            "random_weights": self.vlm.is_random_init,
            "warning": self.warning,
            "context_length": self.engine.context_length,
            "max_batch": self.batcher.max_batch,
        }

    # -- preparing requests -----------------------------------------------------------------------
    def prepare_chat(self, messages: list[dict[str, Any]], images: Sequence[Any]) -> PreparedInput:
        """A conversation in transformers' chat format and its images (arrays, PIL images or paths)."""
        return self.engine.prepare_chat(messages, images)

    def check_image_count(self, n: int) -> None:
        """``ValueError`` when a conversation with ``n`` images cannot fit the model: refused before decoding them."""
        self.engine.check_image_count(n)

    def prepare_task(self, task: str, image: Any, argument: Any = None) -> PreparedInput:
        """One task (``classify``, ``answer``, ``caption``, ``ground``) about one image."""
        if task not in TASKS:
            raise KeyError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
        return self.engine.prepare_prompt(TASKS[task].prompt(argument), image)

    @staticmethod
    def parse_task(task: str, completion: Completion, argument: Any, image_size: tuple[int, int]) -> dict[str, Any]:
        """The task's JSON result for one answer (``image_size`` is ``(width, height)`` in pixels)."""
        return TASKS[task].parse(completion.text, argument, image_size)

    def settings_for(self, prepared: PreparedInput, max_tokens: int | None = None, **options: Any) -> GenerationSettings:
        """Generation settings checked against the model's context; ``max_tokens=None`` fills the room left.

        Raises:
            SettingError: a setting out of range, or the prompt (``field="messages"``) or the prompt
                plus ``max_tokens`` does not fit the context.
        """
        limit = self.engine.context_length
        if limit is not None:
            room = limit - prepared.prompt_tokens
            if room < 1:
                raise SettingError("messages", f"the prompt takes {prepared.prompt_tokens} tokens; the model's context is {limit}")
            if max_tokens is None:
                max_tokens = min(self.default_max_tokens, room)
            elif max_tokens > room:
                raise SettingError(
                    "max_tokens",
                    f"max_tokens {max_tokens} + the prompt's {prepared.prompt_tokens} tokens exceed the model's context of {limit}"
                )
        return GenerationSettings(max_tokens=max_tokens or self.default_max_tokens, **options)


__all__ = ["TASKS", "ModelService", "Task"]
