"""OpenAI chat messages -> transformers' chat format (``{"type": "image"}`` parts) and the decoded images.

Checks, each failing with a :class:`RequestError` that names the message and part:
roles (``developer`` is read as ``system``), system messages only first, user and
assistant alternating from a user message to a final user message, images only in user
messages, no literal ``<image>`` in text (the model reserves it for image positions), and
every image decodable within the limits (:mod:`aerith.serve.images`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from aerith.models.tokenizer import IMAGE_TOKEN
from aerith.serve.errors import RequestError
from aerith.serve.images import ImageInputError, ImagePolicy, load_image
from aerith.serve.schemas import ChatMessage, ImagePart


def _text(text: str, where: str) -> dict[str, str]:
    if IMAGE_TOKEN in text:
        raise RequestError(
            400, f"{where}: the text holds {IMAGE_TOKEN}, which marks image positions; send images as image_url parts", where
        )
    return {"type": "text", "text": text}


def openai_to_chat(messages: Sequence[ChatMessage], policy: ImagePolicy) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """Messages of a chat completion request -> (transformers-format messages, images in order).

    Raises:
        RequestError: 400 naming ``messages[i]`` or ``messages[i].content[j]``.
    """
    out: list[dict[str, Any]] = []
    images: list[np.ndarray] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = "system" if message.role == "developer" else message.role
        if message.content is None or (isinstance(message.content, list) and not message.content):
            raise RequestError(400, f"{where}.content: empty; give text or image parts", f"{where}.content")
        if isinstance(message.content, str):
            parts = [_text(message.content, f"{where}.content")]
        else:
            parts = []
            for j, part in enumerate(message.content):
                at = f"{where}.content[{j}]"
                if isinstance(part, ImagePart):
                    if role != "user":
                        raise RequestError(400, f"{at}: only user messages may hold images, not {message.role}", at)
                    url = part.image_url if isinstance(part.image_url, str) else part.image_url.url
                    try:
                        images.append(load_image(url, at, policy))
                    except ImageInputError as err:
                        raise RequestError(400, str(err), at) from err
                    except ValueError as err:  # a path or URL the standard library refuses
                        raise RequestError(400, f"{at}: {err}", at) from err
                    parts.append({"type": "image"})
                else:
                    parts.append(_text(part.text, at))
        out.append({"role": role, "content": parts})
    check_turns(out)
    return out, images


def check_turns(messages: Sequence[dict[str, Any]]) -> None:
    """System first (at most one), then user and assistant alternating, ending with user."""
    start = 1 if messages and messages[0]["role"] == "system" else 0
    for i, message in enumerate(messages):
        if message["role"] == "system" and i != 0:
            raise RequestError(400, f"messages[{i}]: a system message may only come first", f"messages[{i}].role")
    turns = messages[start:]
    if not turns:
        raise RequestError(400, "messages: no user message", "messages")
    for k, message in enumerate(turns):
        wanted = "user" if k % 2 == 0 else "assistant"
        if message["role"] != wanted:
            i = start + k
            raise RequestError(
                400,
                f"messages[{i}]: expected a {wanted} message here (user and assistant alternate, starting with user), "
                f"got {message['role']}",
                f"messages[{i}].role",
            )
    if turns[-1]["role"] != "user":
        raise RequestError(400, f"messages[{len(messages) - 1}]: the conversation must end with a user message", "messages")


__all__ = ["check_turns", "openai_to_chat"]
