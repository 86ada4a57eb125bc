"""Request bodies: OpenAI's chat completion schema and Aerith's task endpoints (pydantic).

Unknown fields of a chat completion are accepted and ignored (the official client sends
extras); a task endpoint refuses fields it does not use. A wrong type or value of a known
field is a 422 naming the field: types are strict (``"5"``, ``5.0`` or ``true`` is not a
``max_tokens``; an integer is a float).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aerith.parsing.classes import ClassIndex


SEED_RANGE = (-(2**63), 2**64 - 1)  # what torch.manual_seed takes


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class ImageURL(_Body):
    url: str
    detail: str | None = None


class TextPart(_Body):
    type: Literal["text"]
    text: str


class ImagePart(_Body):
    type: Literal["image_url"]
    image_url: ImageURL | str


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ChatMessage(_Body):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None


class StreamOptions(_Body):
    include_usage: bool = False


class ChatCompletionRequest(_Body):
    """``POST /v1/chat/completions``. ``temperature`` left out decodes greedily (OpenAI's default is 1)."""

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    min_tokens: int = Field(default=0, ge=0)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    seed: int | None = Field(default=None, ge=SEED_RANGE[0], le=SEED_RANGE[1])
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, ge=1)
    logprobs: bool | None = None

    @property
    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class TaskRequest(_Body):
    """One image (``image``) or a batch (``images``): base64 data URLs, or paths under ``--allow-dir``."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    image: str | None = None
    images: list[str] | None = Field(default=None, min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_of_image_images(self) -> TaskRequest:
        if (self.image is None) == (self.images is None):
            raise ValueError("give exactly one of 'image' (one image) or 'images' (a list)")
        return self

    @property
    def image_list(self) -> list[str]:
        return [self.image] if self.image is not None else list(self.images or [])

    @property
    def image_field(self) -> str:
        return "image" if self.image is not None else "images"


class ClassifyRequest(TaskRequest):
    classes: list[str] = Field(min_length=1)


class ClassListError(ValueError):
    """A class list an answer could not be matched against; ``index`` is the first bad name's place."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


def check_classes(classes: Sequence[str]) -> None:
    """Refuse, before anything is generated, a class list that answers cannot be matched against.

    Raises:
        ClassListError: a name with no letters or digits, or one equal to an earlier one once
            case, spaces, ``-``/``_``, punctuation and a leading article are ignored (as answers are matched).
    """
    first: dict[str, int] = {}
    for i, name in enumerate(classes):
        try:
            key = ClassIndex.build([name]).keys[0]
        except ValueError as err:
            raise ClassListError(i, str(err)) from err
        if key in first:
            j = first[key]
            raise ClassListError(
                i,
                f"{name!r} is the same class as {classes[j]!r}: answers are matched ignoring case, spaces, "
                "'-', '_', punctuation and a leading article",
            )
        first[key] = i


class AnswerRequest(TaskRequest):
    question: str | None = None
    questions: list[str] | None = None

    @model_validator(mode="after")
    def _questions(self) -> AnswerRequest:
        if (self.question is None) == (self.questions is None):
            raise ValueError("give exactly one of 'question' (asked of every image) or 'questions' (one per image)")
        if self.questions is not None and len(self.questions) != len(self.image_list):
            raise ValueError(f"{len(self.image_list)} image(s) but {len(self.questions)} question(s)")
        return self


class CaptionRequest(TaskRequest):
    pass


class GroundRequest(TaskRequest):
    expression: str | None = None
    expressions: list[str] | None = None

    @model_validator(mode="after")
    def _expressions(self) -> GroundRequest:
        if (self.expression is None) == (self.expressions is None):
            raise ValueError("give exactly one of 'expression' (for every image) or 'expressions' (one per image)")
        if self.expressions is not None and len(self.expressions) != len(self.image_list):
            raise ValueError(f"{len(self.image_list)} image(s) but {len(self.expressions)} expression(s)")
        return self


__all__ = [
    "AnswerRequest",
    "CaptionRequest",
    "ChatCompletionRequest",
    "ChatMessage",
    "ClassListError",
    "ClassifyRequest",
    "GroundRequest",
    "ImagePart",
    "TaskRequest",
    "TextPart",
    "check_classes",
]
