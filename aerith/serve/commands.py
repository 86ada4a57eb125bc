"""``aerith serve``: check what can be checked before loading, then run the server."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aerith.serve.settings import ServeSettings


class ServeError(Exception):
    """A problem the command reports in one line (exit code 2)."""


def check_model_name(model: str) -> None:
    """A preset name, or a folder holding a saved model (or a run folder with one); anything else fails before the server starts."""
    from aerith.infer.load import all_presets
    from aerith.runs import resolve_checkpoint

    if model in all_presets():
        return
    if not Path(model).exists():
        raise ServeError(f"{model!r} is neither a preset ({', '.join(all_presets())}) nor an existing model or run folder")
    try:  # a file, or a folder without config.json: said here, not after the server has started
        resolve_checkpoint(model)
    except FileNotFoundError as err:
        raise ServeError(str(err)) from err


def serve(settings: ServeSettings, mount: Callable[..., Any] | None = None) -> None:
    """Serve ``settings.model`` until SIGTERM/SIGINT; ``mount(app, state)`` adds to the app (the web page).

    Raises:
        ServeError: the serve extra is missing, the model does not exist or fails to load.
    """
    # Before torch loads (as `aerith quickstart` does): OpenMP threads that spin while they wait
    # starve the server's other threads on a busy machine. On 2 shared cores (load average ~12),
    # aerith-tiny served 0.5-0.8 requests/s to one client with spinning threads and 4-23 with
    # sleeping ones (1.4-4 against 17-36 at 16 clients). A value the user set is kept.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as err:
        raise ServeError(f"aerith serve needs FastAPI and uvicorn: pip install 'aerith[serve]' ({err})") from err
    check_model_name(settings.model)
    from aerith.infer.facade import check_device

    try:
        check_device(settings.device)  # a bad --device: said here, not after the server has started
    except ValueError as err:
        raise ServeError(f"--device: {err}") from err
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from aerith.serve.server import run_server

    try:
        run_server(settings, mount=mount)
    except RuntimeError as err:
        raise ServeError(str(err)) from err


__all__ = ["ServeError", "check_model_name", "serve"]
