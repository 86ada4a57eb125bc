"""Running the server: uvicorn in the foreground (``aerith serve``) or in a thread (tests, benchmarks, notebooks).

Shutdown (SIGTERM or Ctrl-C): uvicorn stops accepting connections and waits for the
requests in flight; requests that still arrive on open connections get 503; then the
queue finishes every request it accepted and the worker stops.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import FastAPI

from aerith.infer.facade import VLM
from aerith.serve.app import ServerState, create_app
from aerith.serve.metrics import Metrics
from aerith.serve.settings import ServeSettings

logger = logging.getLogger(__name__)


class AerithServer(uvicorn.Server):
    """uvicorn's server, telling the app when a shutdown starts (so new requests get 503)."""

    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        super().__init__(config)
        self.aerith_state = state

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.aerith_state.draining = True
        super().handle_exit(sig, frame)


def default_loader(settings: ServeSettings) -> Callable[[], VLM]:
    """Loads ``settings.model`` with :func:`aerith.load_vlm`."""

    def load() -> VLM:
        from aerith.infer.load import load_vlm

        return load_vlm(settings.model, seed=settings.seed, device=settings.device)

    return load


Mount = Callable[[FastAPI, ServerState], Any]


def build_server(
    settings: ServeSettings, load: Callable[[], VLM] | None = None, log_level: str = "info", mount: Mount | None = None
) -> tuple[AerithServer, ServerState]:
    """An uvicorn server for ``settings`` (not started) and the app's state.

    ``mount(app, state)`` adds to the app before it starts (``aerith serve --ui`` mounts the web page).
    """
    state = ServerState(settings=settings, metrics=Metrics())
    app = create_app(settings, load or default_loader(settings), state)
    if mount is not None:
        mount(app, state)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=log_level, timeout_graceful_shutdown=None, access_log=False
    )
    return AerithServer(config, state), state


def run_server(settings: ServeSettings, load: Callable[[], VLM] | None = None, mount: Mount | None = None) -> None:
    """Serve in the foreground until SIGTERM/SIGINT.

    Raises:
        RuntimeError: the model failed to load (the server stops at once).
    """
    server, state = build_server(settings, load, mount=mount)

    def watch_load() -> None:
        while state.service is None and state.load_error is None and not server.should_exit:
            time.sleep(0.1)
        if state.load_error is not None:
            server.should_exit = True

    threading.Thread(target=watch_load, name="aerith-load-watch", daemon=True).start()
    server.run()
    if state.load_error is not None:
        raise RuntimeError(f"could not load {settings.model!r}: {state.load_error}")


class BackgroundServer:
    """A server on a free port of 127.0.0.1, in a thread of this process (tests, benchmarks, notebooks).

    Example::

        with BackgroundServer(ServeSettings("aerith-tiny"), load=lambda: vlm) as server:
            client = openai.OpenAI(base_url=server.url + "/v1", api_key="none")
    """

    def __init__(
        self, settings: ServeSettings, load: Callable[[], VLM] | None = None, ready_timeout: float = 120.0, mount: Mount | None = None
    ) -> None:
        self.settings = settings
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((settings.host, 0))
        self.port = self.sock.getsockname()[1]
        self.server, self.state = build_server(settings, load, log_level="warning", mount=mount)
        self.ready_timeout = ready_timeout
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, name="aerith-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    def start(self) -> BackgroundServer:
        """Start and wait until the model is loaded (``RuntimeError`` if it fails or takes too long)."""
        self.thread.start()
        deadline = time.monotonic() + self.ready_timeout
        while self.state.service is None:
            if self.state.load_error is not None:
                self.stop()
                raise RuntimeError(f"the model failed to load: {self.state.load_error}")
            if time.monotonic() > deadline or not self.thread.is_alive():
                self.stop()
                raise RuntimeError("the server did not become ready")
            time.sleep(0.02)
        while not self.server.started:
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Shut down as on SIGTERM: finish requests in flight, then stop."""
        self.server.handle_exit(15, None)
        self.thread.join(timeout)
        self.sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


__all__ = ["AerithServer", "BackgroundServer", "build_server", "default_loader", "run_server"]
