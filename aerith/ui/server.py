"""Serving the page: mounted beside the HTTP API (``aerith serve --ui``) or alone (``aerith ui``).

Both ways the page asks through a :class:`~aerith.serve.service.ModelService`: beside the API
it is the API's own service (one model, one batching queue for page and API requests); alone
it is a service of its own over the loaded model.

Login: with an API key (``--api-key``, ``aerith ui --password``) the page asks for it on
Gradio's login page (any user name, the key as password); the API key check of the HTTP API
is not applied under the page's path, which has its own.
"""

from __future__ import annotations

import asyncio
import hmac
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import gradio as gr
import uvicorn
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from aerith.serve.app import ServerState
from aerith.serve.service import ModelService
from aerith.serve.settings import ServeSettings
from aerith.ui.asking import ServiceGetter
from aerith.ui.examples import ASSETS
from aerith.ui.page import CSS, PageSettings, build_page

UI_PATH = "/ui"
STOP_POLL_S = 0.1


def mount_ui(
    app: FastAPI,
    get_service: ServiceGetter,
    settings: ServeSettings,
    path: str = UI_PATH,
    api_url: str | None = None,
    password: str | None = None,
    max_tokens: int | None = None,
    stopping: Callable[[], bool] | None = None,
) -> gr.Blocks:
    """Mount the page on ``app`` at ``path``.

    Args:
        app: the FastAPI app.
        get_service: the served model's service, ``None`` while it loads.
        settings: the limits (``max_image_pixels``, ``max_body_mb`` for uploads, ``max_queue``)
            and the model's name as given (its provenance).
        path: where the page lives (``""`` for the root).
        api_url: the HTTP API of the same service, named on the page.
        password: asked on a login page when set.
        max_tokens: the answer-length slider's start value (default ``min(settings.max_tokens, 256)``).
        stopping: says when the server starts shutting down; the page then closes its
            heartbeat streams (each open browser tab holds one), which the server would
            otherwise wait for forever.
    """
    downloads = tempfile.TemporaryDirectory(prefix="aerith-ui-")  # removed when the app is collected or at exit
    app.state.aerith_ui_downloads = downloads
    page_settings = PageSettings(
        source=settings.model,
        max_image_pixels=settings.max_image_pixels,
        max_tokens=max_tokens or min(settings.max_tokens, 256),
        downloads=Path(downloads.name),
        api_url=api_url,
    )
    page = build_page(get_service, page_settings)
    page.queue(default_concurrency_limit=None, max_size=settings.max_queue)
    auth = None
    if password:
        key = password.encode()

        def auth(_user: str, given: str) -> bool:
            return hmac.compare_digest(given.encode(), key)

    gr.mount_gradio_app(
        app,
        page,
        path=path,
        footer_links=[],
        run_history=False,
        auth=auth,
        auth_message="Log in with any user name and the server's key as password." if password else None,
        max_file_size=settings.max_body_bytes,
        allowed_paths=[str(ASSETS)],
        ssr_mode=False,
        css=CSS,
    )
    # Gradio accepts, as an input file, only one a visitor uploaded (its upload folder) once the app
    # "has launched", which launch() marks and mount_gradio_app does not (Gradio 6.31): mounted, a
    # request naming any image on the server (/gradio_api/call/on_upload with {"path": "/home/..."})
    # had it copied into the cache and shown back. Marked as launch() and Gradio's reload mark it.
    page.has_launched = True
    if stopping is not None:
        _close_streams_when(app, app.routes[-1].app, stopping)
    return page


def _close_streams_when(app: FastAPI, gradio_app: Any, stopping: Callable[[], bool]) -> None:
    """Set Gradio's stop event (which ends the tabs' heartbeat streams) once ``stopping()`` is true."""
    inner = app.router.lifespan_context

    async def watch() -> None:
        while not stopping():
            await asyncio.sleep(STOP_POLL_S)
        gradio_app.stop_event.set()

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[Any]:
        watcher = asyncio.create_task(watch())
        try:
            async with inner(app_) as state:
                yield state
        finally:
            watcher.cancel()

    app.router.lifespan_context = lifespan


def mount_beside_api(settings: ServeSettings, path: str = UI_PATH) -> Callable[[FastAPI, ServerState], gr.Blocks]:
    """A ``mount`` for :func:`aerith.serve.server.build_server`: the page at ``path``, sharing the API's service."""

    def mount(app: FastAPI, state: ServerState) -> gr.Blocks:
        state.open_prefixes = (*state.open_prefixes, path)
        return mount_ui(
            app, lambda: state.service, settings, path=path, api_url="/v1", password=settings.api_key,
            stopping=lambda: state.draining,
        )  # fmt: skip

    return mount


def ui_app(service: ModelService, settings: ServeSettings, password: str | None = None) -> FastAPI:
    """The page alone at ``/`` over a started ``service`` (closed when the app shuts down).

    Serve it with :class:`UIServer` (or :class:`BackgroundApp`), which tells the page when a
    shutdown starts (``app.state.aerith_stopping``).
    """
    stopping = threading.Event()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(service.close)

    app = FastAPI(title="Aerith UI", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.aerith_stopping = stopping
    mount_ui(app, lambda: service, settings, path="", password=password, stopping=stopping.is_set)
    return app


class UIServer(uvicorn.Server):
    """uvicorn's server, telling a :func:`ui_app` when a shutdown starts (SIGTERM, Ctrl-C)."""

    def handle_exit(self, sig: int, frame: Any) -> None:
        stopping = getattr(self.config.app.state, "aerith_stopping", None) if hasattr(self.config.app, "state") else None
        if stopping is not None:
            stopping.set()
        super().handle_exit(sig, frame)


class BackgroundApp:
    """An ASGI app served by uvicorn on a free port of 127.0.0.1, in a thread (tests, benchmarks)."""

    def __init__(self, app: Any, host: str = "127.0.0.1") -> None:
        self.host = host
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=None)
        self.server = UIServer(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, name="aerith-ui", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> BackgroundApp:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the UI server did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Shut down as on SIGTERM."""
        self.server.handle_exit(15, None)
        self.thread.join(timeout)
        self.sock.close()

    def __enter__(self) -> BackgroundApp:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


__all__ = ["UI_PATH", "BackgroundApp", "UIServer", "mount_beside_api", "mount_ui", "ui_app"]
