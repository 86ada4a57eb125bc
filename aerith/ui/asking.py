"""Asking the served model from the page: through the same :class:`~aerith.serve.service.ModelService`
and batching queue as the HTTP API, so page and API requests batch together.

The request is prepared (tokenised, image preprocessed) in a worker thread while the queue
knows it is coming (:meth:`Batcher.arriving`), then submitted with a sink that hands the
streamed text to the event loop; nothing blocks the loop while the model works.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from aerith.serve.batcher import ClosedError, QueueFullError
from aerith.serve.engine import Completion, SettingError
from aerith.serve.service import ModelService

ServiceGetter = Callable[[], "ModelService | None"]


class AskError(RuntimeError):
    """A question the model could not answer; the message is for the page."""


def current_service(get_service: ServiceGetter) -> ModelService:
    """The loaded service, or :class:`AskError` while the model is still loading."""
    service = get_service()
    if service is None:
        raise AskError("the model is still loading; ask again in a moment")
    return service


def describe_model(service: ModelService, source: str | None = None) -> dict[str, Any]:
    """The model's provenance for the page and the JSON download."""
    vlm = service.vlm
    return {
        "name": service.name,
        "source": source or service.name,
        "kind": vlm.kind,
        "training_state": vlm.training_state,
        "random_weights": bool(vlm.is_random_init),
        "warning": service.warning,
        "context_length": service.engine.context_length,
        "max_batch": service.batcher.max_batch,
        "history": vlm.kind != "instructblip",
    }


async def stream_answer(
    service: ModelService, messages: list[dict[str, Any]], images: Sequence[Any], max_tokens: int, every: float = 0.1
) -> AsyncIterator[str | Completion]:
    """Ask greedily; yield the answer's new text at most every ``every`` seconds, then its :class:`Completion`.

    The batcher's worker hands each token's text to a list; the event loop collects it on its
    own schedule, so a long answer does not wake the loop (and redraw the page) once per token.
    Closing the generator before the end (or cancelling the task reading it) cancels the request.

    Raises:
        AskError: the conversation does not fit the context, the queue is full or closed,
            the prompt cannot be prepared, or generation failed.
    """
    pieces: list[str] = []  # appended by the worker thread (list.append is atomic), read here
    with service.batcher.arriving():
        try:
            prepared = await asyncio.to_thread(service.prepare_chat, messages, list(images))
            settings = service.settings_for(prepared, max_tokens)
            future = service.batcher.submit(prepared, settings, sink=pieces.append)
        except SettingError as err:
            hint = " (clear the conversation to start again)" if err.field == "messages" or len(messages) > 1 else ""
            raise AskError(f"{err}{hint}") from err
        except QueueFullError as err:
            raise AskError(f"the model is busy ({err}); try again in about {err.retry_after} s") from err
        except ClosedError as err:
            raise AskError("the server is shutting down and takes no new questions") from err
        except ValueError as err:
            raise AskError(f"the question cannot be prepared: {err}") from err
    done = asyncio.wrap_future(future)
    taken = 0
    try:
        while not done.done():
            await asyncio.wait({done}, timeout=every)
            if done.done():
                break
            count = len(pieces)
            if count > taken:
                yield "".join(pieces[taken:count])
                taken = count
    finally:  # the page stopped reading (tab closed, event cancelled): free the batch slot, as the API does
        if not future.done():
            service.batcher.cancel(future)
    if len(pieces) > taken:  # the worker added every piece before it finished the future
        yield "".join(pieces[taken:])
    try:
        completion = done.result()
    except Exception as err:  # noqa: BLE001 - generation failed for this request alone
        raise AskError(f"generation failed: {type(err).__name__}: {err}") from err
    yield completion


__all__ = ["AskError", "ServiceGetter", "current_service", "describe_model", "stream_answer"]
