"""The HTTP API (FastAPI): OpenAI's ``/v1/chat/completions`` and ``/v1/models``, task endpoints, health, metrics.

The model loads in a background thread once the server is up: ``/health`` answers 503
(``loading``) until it is ready, then 200. Every request passes one guard first
(:class:`Guard`, plain ASGI): 503 while shutting down, 401 without the API key when one is
set, 413 for a body over the limit (by ``Content-Length``, or counted while it is read), and
on the way out the random-weights warning header (``X-Aerith-Warning``) and the metrics.
Errors have OpenAI's shape and name the field (``param``).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from jinja2 import TemplateError
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException

from aerith.infer.facade import VLM
from aerith.models.tokenizer import IMAGE_TOKEN
from aerith.serve.batcher import ClosedError, QueueFullError
from aerith.serve.conversation import openai_to_chat
from aerith.serve.engine import Completion, GenerationSettings, PreparedInput, SettingError
from aerith.serve.errors import RequestError, error_body
from aerith.serve.images import ImageInputError, ImagePolicy, load_image
from aerith.serve.metrics import Metrics
from aerith.serve.schemas import (
    AnswerRequest,
    CaptionRequest,
    ChatCompletionRequest,
    ClassifyRequest,
    ClassListError,
    GroundRequest,
    ImagePart,
    TaskRequest,
    check_classes,
)
from aerith.serve.service import ModelService
from aerith.serve.settings import ServeSettings

logger = logging.getLogger(__name__)

WARNING_HEADER = "x-aerith-warning"
OPEN_PATHS = frozenset({"/health"})
ENDPOINTS = frozenset(
    {"/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/classify", "/v1/answer", "/v1/caption", "/v1/ground"}
)


@dataclass
class ServerState:
    """What the routes share: settings, metrics, the service once loaded, and the shutdown flag."""

    settings: ServeSettings
    metrics: Metrics
    service: ModelService | None = None
    load_error: str | None = None
    draining: bool = False
    open_prefixes: tuple[str, ...] = ()  # paths with their own login (a mounted web page): no API key asked

    def ready(self) -> ModelService:
        if self.service is None:
            reason = f"the model failed to load: {self.load_error}" if self.load_error else "the model is still loading"
            raise RequestError(503, reason, headers={"Retry-After": "5"})
        return self.service

    @property
    def warning(self) -> str | None:
        return self.service.warning if self.service is not None else None


class Guard:
    """ASGI middleware: shutdown, API key, body size; warning header and metrics on every answer."""

    def __init__(self, app: Any, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        endpoint = path if path in ENDPOINTS or path.startswith("/v1/models/") else "other"
        endpoint = "/v1/models" if endpoint.startswith("/v1/models/") else endpoint
        tic = time.perf_counter()
        status = 500
        started = False

        async def send_out(message: dict) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                warning = self.state.warning
                if warning:
                    MutableHeaders(scope=message).append(WARNING_HEADER, header_safe(warning))
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await _send_error(refusal, send_out)
            else:
                await self.app(scope, self._counting(receive), send_out)
        except Exception as err:  # noqa: BLE001 - a bug: answered here, inside the guard, so it gets the warning header too
            logger.exception("unexpected error on %s", path)
            if not started:
                await _send_error(RequestError(500, f"internal error: {type(err).__name__}: {err}"), send_out)
        finally:
            self.state.metrics.observe_request(endpoint, status, time.perf_counter() - tic)

    def _refusal(self, scope: dict) -> RequestError | None:
        path = scope["path"]
        headers = Headers(scope=scope)
        if self.state.draining and path not in OPEN_PATHS and path != "/metrics":
            return RequestError(503, "the server is shutting down and takes no new requests")
        key = self.state.settings.api_key
        if key is not None and path not in OPEN_PATHS and not _under(path, self.state.open_prefixes):
            auth = headers.get("authorization", "")
            if not auth:
                return RequestError(401, "missing API key: send the header 'Authorization: Bearer KEY'")
            scheme, _, given = auth.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), key.encode()):
                return RequestError(401, "wrong API key")
        length = headers.get("content-length")
        limit = self.state.settings.max_body_bytes
        if length is not None and length.isdigit() and int(length) > limit:
            return _too_large(int(length), limit, self.state.settings.max_body_mb)
        return None

    def _counting(self, receive: Callable) -> Callable:
        limit, mb = self.state.settings.max_body_bytes, self.state.settings.max_body_mb
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # a body without Content-Length (chunked) that grows past the limit
                    raise StarletteHTTPException(413, _too_large(seen, limit, mb).message)
            return message

        return counted


def header_safe(value: str) -> str:
    """``value`` as printable ASCII (an HTTP header is Latin-1 and one line): other characters are escaped (``\\u6a21``)."""
    return value.encode("unicode_escape").decode("ascii")


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def _too_large(size: int, limit: int, mb: float) -> RequestError:
    return RequestError(413, f"the request body is over the limit of {limit:,} bytes (--max-body-mb {mb:g}); got {size:,}+ bytes")


async def _send_error(error: RequestError, send: Callable) -> None:
    response = JSONResponse(error.body(), status_code=error.status, headers=error.headers)
    await response({"type": "http"}, _no_body, send)


async def _no_body() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


_TYPE_LABELS = frozenset({"str", "int", "float", "bool", "dict", "list", "none"})


def _loc(loc: tuple) -> str:
    """``("body", "messages", 0, "content", "list[...]", 1, "text", "text")`` -> ``messages[0].content[1].text``.

    pydantic puts union members (``str``, ``list[...]``) and discriminator tags in error
    locations; they are left out here.
    """
    out, last = "", None
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        if isinstance(part, str) and ("[" in part or part in _TYPE_LABELS or part == last):
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        last = part
    return out or "body"


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    bad_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if bad_json is not None:
        pos = bad_json["loc"][-1] if bad_json.get("loc") else "?"
        detail = (bad_json.get("ctx") or {}).get("error", bad_json.get("msg"))
        return JSONResponse(error_body(400, f"the request body is not valid JSON: {detail} at character {pos}"), status_code=400)
    located = [(_loc(tuple(e.get("loc", ()))), e.get("msg", "")) for e in errors]
    # a union's other members fail higher up (content: "should be a valid string"); keep the deepest
    located = [(at, msg) for at, msg in located if not any(o != at and o.startswith(at) for o, _ in located)]
    described = list(dict.fromkeys(f"{at}: {msg}" for at, msg in located))
    param = located[0][0] if located else None
    return JSONResponse(error_body(422, "invalid request: " + "; ".join(described), param), status_code=422)


async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return JSONResponse(error_body(exc.status_code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)


async def _request_error(_request: Request, exc: RequestError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def _check_model(service: ModelService, model: str | None) -> None:
    if model is not None and model != service.name:
        raise RequestError(404, f"model {model!r} is not served here; this server serves {service.name!r} (GET /v1/models)", "model")


def _submit(service: ModelService, requests: list[tuple[PreparedInput, GenerationSettings, Any]]) -> list:
    try:
        return service.batcher.submit_many(requests)
    except QueueFullError as err:
        raise RequestError(429, str(err), headers={"Retry-After": str(err.retry_after)}) from err
    except ClosedError as err:
        raise RequestError(503, str(err)) from err


async def _disconnected(receive: Callable) -> None:
    """Returns once the client has closed the connection (the body is read: nothing else arrives before that)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _results(service: ModelService, futures: list, request: Request) -> list[Completion]:
    """The answers of ``futures``; a client that disconnects first cancels them, so no batch generates for nobody."""
    answers = asyncio.gather(*(asyncio.wrap_future(f) for f in futures), return_exceptions=True)
    watch = asyncio.ensure_future(_disconnected(request.receive))
    try:
        await asyncio.wait({answers, watch}, return_when=asyncio.FIRST_COMPLETED)
        if not answers.done() and watch.exception() is not None:  # cannot tell whether the client left: wait
            await answers
    finally:
        watch.cancel()
        if not answers.done():  # the client went away (or this handler was cancelled)
            for future in futures:
                service.batcher.cancel(future)
    if not answers.done():
        raise RequestError(499, "the client closed the connection before the answer was ready")
    for result in answers.result():
        if isinstance(result, BaseException):  # generation failed for this request alone
            raise RequestError(500, f"generation failed: {type(result).__name__}: {result}") from result
    return answers.result()


def _settings(service: ModelService, prepared: PreparedInput, body: ChatCompletionRequest) -> GenerationSettings:
    max_tokens = body.max_completion_tokens or body.max_tokens
    options = {"temperature": body.temperature or 0.0, "top_p": body.top_p if body.top_p is not None else 1.0, "seed": body.seed, "stop": body.stops, "min_tokens": body.min_tokens}
    try:
        return service.settings_for(prepared, max_tokens, **options)
    except SettingError as err:
        raise RequestError(400, str(err), err.field) from err


def _usage(completions: list[Completion]) -> dict[str, int]:
    prompt = sum(c.prompt_tokens for c in completions)
    completion = sum(c.completion_tokens for c in completions)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def create_app(settings: ServeSettings, load: Callable[[], VLM], state: ServerState | None = None) -> FastAPI:
    """The server's ASGI app; ``load`` builds the model (called once, in a background thread, at startup)."""
    state = state or ServerState(settings=settings, metrics=Metrics())
    policy = ImagePolicy(max_pixels=settings.max_image_pixels, allow_dir=settings.allow_dir)

    def load_model() -> None:
        try:
            vlm = load()
            state.service = ModelService(
                vlm,
                name=settings.name,
                max_batch=settings.max_batch,
                window_ms=settings.batch_window_ms,
                max_queue=settings.max_queue,
                default_max_tokens=settings.max_tokens,
                metrics=state.metrics,
            ).start()
            if state.service.warning:
                logger.warning(state.service.warning)
            logger.info("model %s loaded; serving", settings.name)
        except Exception as err:  # noqa: BLE001 - reported by /health and the server runner
            state.load_error = f"{type(err).__name__}: {err}"
            logger.error("loading %s failed: %s", settings.model, state.load_error)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=load_model, name="aerith-load", daemon=True).start()
        yield
        state.draining = True
        if state.service is not None:
            await run_in_threadpool(state.service.close)

    app = FastAPI(title="Aerith", version="1", lifespan=lifespan)
    app.state.aerith = state
    app.add_middleware(Guard, state=state)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestError, _request_error)

    @app.get("/health")
    async def health() -> JSONResponse:
        if state.load_error:
            return JSONResponse({"status": "error", "error": state.load_error}, status_code=503)
        if state.draining:
            return JSONResponse({"status": "draining"}, status_code=503)
        if state.service is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        service = state.service
        return JSONResponse(
            {"status": "ok", "model": service.name, "queue_depth": service.batcher.queue_depth, "warning": service.warning}
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type=state.metrics.content_type)

    def model_card(service: ModelService) -> dict[str, Any]:
        return {"id": service.name, "object": "model", "created": 0, "owned_by": "aerith", "aerith": service.describe()}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card(state.ready())]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str) -> dict[str, Any]:
        service = state.ready()
        _check_model(service, model_id)
        return model_card(service)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
        service = state.ready()
        _check_model(service, body.model)
        if body.n not in (None, 1):
            raise RequestError(400, f"n={body.n}: this server returns one choice per request", "n")
        if body.logprobs:
            raise RequestError(400, "logprobs are not served", "logprobs")
        n_images = sum(isinstance(part, ImagePart) for m in body.messages if isinstance(m.content, list) for part in m.content)
        try:  # before decoding: many small data URLs can decode into gigabytes of pixels the model could never read
            service.check_image_count(n_images)
        except ValueError as err:
            raise RequestError(400, f"messages: {err}", "messages") from err
        request_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        with service.batcher.arriving():  # batches forming now wait for this one
            messages, images = await run_in_threadpool(openai_to_chat, body.messages, policy)
            try:
                prepared = await run_in_threadpool(service.prepare_chat, messages, images)
            except (ValueError, TemplateError) as err:
                raise RequestError(400, f"messages: {err}", "messages") from err
            settings_ = _settings(service, prepared, body)
            if body.stream:
                include_usage = bool(body.stream_options and body.stream_options.include_usage)
                return _stream(service, prepared, settings_, request_id, created, include_usage)
            future = _submit(service, [(prepared, settings_, None)])[0]
        (completion,) = await _results(service, [future], request)
        return {
            "id": request_id,
            "object": "chat.completion",
            "created": created,
            "model": service.name,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": completion.text},
                    "logprobs": None,
                    "finish_reason": completion.finish_reason,
                }
            ],
            "usage": _usage([completion]),
        }

    def _stream(
        service: ModelService, prepared: PreparedInput, settings_: GenerationSettings, request_id: str, created: int, include_usage: bool
    ) -> StreamingResponse:
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue = asyncio.Queue()

        def put(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(pieces.put_nowait, item)
            except RuntimeError:  # the loop is gone (server stopped); nobody is reading
                pass

        future = _submit(service, [(prepared, settings_, put)])[0]  # 429 is a status, before any event
        future.add_done_callback(lambda _f: put(None))

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            out = {
                "id": request_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": service.name,
                "system_fingerprint": None,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if include_usage:
                out["usage"] = None
            return out

        def drop() -> None:  # the client went away before the end: its row must not keep the batch running
            if not future.done():
                service.batcher.cancel(future)

        async def events() -> AsyncIterator[str]:
            try:
                yield _sse(chunk({"role": "assistant", "content": ""}))
                while (piece := await pieces.get()) is not None:
                    yield _sse(chunk({"content": piece}))
            finally:  # cancelled on a disconnect (or closed when a write fails)
                drop()
            try:
                completion = future.result()
            except Exception as err:  # noqa: BLE001 - reported in the stream, whose status is already 200
                yield _sse(error_body(500, f"generation failed: {type(err).__name__}: {err}"))
                yield "data: [DONE]\n\n"
                return
            yield _sse(chunk({}, completion.finish_reason))
            if include_usage:
                yield _sse({**chunk({}), "choices": [], "usage": _usage([completion])})
            yield "data: [DONE]\n\n"

        # the background task also runs when the client left before the first event was produced
        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}, background=BackgroundTask(drop)
        )

    async def run_task(
        task: str, body: TaskRequest, arguments: list[Any], fields: list[str] | None, request: Request
    ) -> dict[str, Any]:
        """``arguments``: one per image; ``fields``: the request field each comes from (``question``,
        ``questions[2]``), named when it makes a bad prompt; ``None``: the prompt is fixed (caption)."""
        service = state.ready()
        _check_model(service, body.model)
        urls = body.image_list
        single = body.image_field == "image"
        if len(urls) > service.batcher.max_queue:  # could never be queued whole: not a matter of waiting
            raise RequestError(
                400, f"images: {len(urls)} images, over the {service.batcher.max_queue} this server queues (--max-queue); "
                "send fewer per request", "images",
            )

        def argument_field(i: int) -> str:
            if fields is None:
                return "image" if single else f"images[{i}]"
            return fields[i]

        def prepare() -> tuple[list[PreparedInput], list[tuple[int, int]]]:
            prepared, sizes = [], []
            for i, (url, argument) in enumerate(zip(urls, arguments)):
                where = "image" if single else f"images[{i}]"
                if isinstance(argument, str) and IMAGE_TOKEN in argument:
                    at = argument_field(i)
                    raise RequestError(400, f"{at}: holds {IMAGE_TOKEN}, which marks image positions; leave it out", at)
                try:
                    array = load_image(url, where, policy)
                except ValueError as err:
                    raise RequestError(400, str(err) if isinstance(err, ImageInputError) else f"{where}: {err}", where) from err
                try:
                    prepared.append(service.prepare_task(task, array, argument))
                except ValueError as err:  # the prompt: an empty question, one too long
                    at = argument_field(i)
                    raise RequestError(400, f"{at}: {err}", at) from err
                sizes.append((array.shape[1], array.shape[0]))
            return prepared, sizes

        with service.batcher.arriving(len(urls)):
            prepared, sizes = await run_in_threadpool(prepare)
            requests = []
            for i, p in enumerate(prepared):
                try:
                    requests.append((p, service.settings_for(p, body.max_tokens), None))
                except SettingError as err:
                    at = argument_field(i) if err.field == "messages" else err.field
                    raise RequestError(400, f"{at}: {err}", at) from err
            futures = _submit(service, requests)
        completions = await _results(service, futures, request)
        results = [
            {"index": i, **service.parse_task(task, c, argument, size)}
            for i, (c, argument, size) in enumerate(zip(completions, arguments, sizes))
        ]
        return {
            "object": f"aerith.{task}",
            "model": service.name,
            "results": results,
            "usage": _usage(completions),
            "warning": service.warning,
        }

    @app.post("/v1/classify")
    async def classify(body: ClassifyRequest, request: Request) -> dict[str, Any]:
        try:
            check_classes(body.classes)
        except ClassListError as err:
            raise RequestError(422, f"classes[{err.index}]: {err}", f"classes[{err.index}]") from err
        for i, name in enumerate(body.classes):
            if IMAGE_TOKEN in name:
                raise RequestError(400, f"classes[{i}]: holds {IMAGE_TOKEN}, which marks image positions; leave it out", f"classes[{i}]")
        n = len(body.image_list)
        return await run_task("classify", body, [body.classes] * n, ["classes"] * n, request)

    @app.post("/v1/answer")
    async def answer(body: AnswerRequest, request: Request) -> dict[str, Any]:
        if body.questions is not None:
            return await run_task("answer", body, body.questions, [f"questions[{i}]" for i in range(len(body.questions))], request)
        n = len(body.image_list)
        return await run_task("answer", body, [body.question] * n, ["question"] * n, request)

    @app.post("/v1/caption")
    async def caption(body: CaptionRequest, request: Request) -> dict[str, Any]:
        return await run_task("caption", body, [None] * len(body.image_list), None, request)

    @app.post("/v1/ground")
    async def ground(body: GroundRequest, request: Request) -> dict[str, Any]:
        if body.expressions is not None:
            return await run_task("ground", body, body.expressions, [f"expressions[{i}]" for i in range(len(body.expressions))], request)
        n = len(body.image_list)
        return await run_task("ground", body, [body.expression] * n, ["expression"] * n, request)

    return app


__all__ = ["WARNING_HEADER", "Guard", "ServerState", "create_app", "header_safe"]
