"""``aerith ui MODEL`` (the page alone) and ``aerith serve MODEL --ui`` (the page beside the API)."""

from __future__ import annotations

import logging
import os

from aerith.serve.commands import ServeError, check_model_name
from aerith.serve.settings import ServeSettings

MIN_GRADIO = 6  # the page uses Gradio 6 arguments (Image buttons, mount_gradio_app css and footer_links)


def check_gradio() -> None:
    """Gradio 5 or later is installed, else :class:`ServeError` saying how to install it."""
    try:
        import gradio
    except ImportError as err:
        raise ServeError(f"the web page needs Gradio {MIN_GRADIO} or later: pip install 'aerith[ui]' ({err})") from err
    major = int(gradio.__version__.split(".")[0])
    if major < MIN_GRADIO:
        raise ServeError(f"the web page needs Gradio {MIN_GRADIO} or later, found {gradio.__version__}: pip install 'aerith[ui]'")


def serve_with_ui(settings: ServeSettings) -> None:
    """``aerith serve --ui``: the HTTP API and the page at ``/ui``, one model and one queue.

    Raises:
        ServeError: Gradio, FastAPI or uvicorn missing; the model does not exist or fails to load.
    """
    # Before the page's modules are imported (they load torch, which starts OpenMP): as aerith serve,
    # sleeping OpenMP threads. Set later, by aerith serve itself, it came too late: 400 tokens took
    # 7-14 s instead of 0.6-1.7 s on 2 shared cores.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    check_gradio()
    from aerith.serve.commands import serve
    from aerith.ui.server import mount_beside_api

    serve(settings, mount=mount_beside_api(settings))


def run_ui(settings: ServeSettings, password: str | None = None) -> None:
    """``aerith ui``: load the model, then serve the page alone at ``/`` until SIGTERM/SIGINT.

    Raises:
        ServeError: Gradio missing; the model does not exist or fails to load.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as aerith serve: sleeping OpenMP threads (see there)
    check_gradio()
    check_model_name(settings.model)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import uvicorn

    from aerith.infer.load import load_vlm
    from aerith.serve.service import ModelService
    from aerith.ui.server import UIServer, ui_app

    try:
        vlm = load_vlm(settings.model, seed=settings.seed, device=settings.device)
    except Exception as err:  # noqa: BLE001 - any loading failure is one line for the user
        raise ServeError(f"could not load {settings.model!r}: {type(err).__name__}: {err}") from err
    service = ModelService(
        vlm, name=settings.name, max_batch=settings.max_batch, window_ms=settings.batch_window_ms,
        max_queue=settings.max_queue, default_max_tokens=settings.max_tokens,
    ).start()  # fmt: skip
    if service.warning:
        logging.getLogger(__name__).warning(service.warning)
    app = ui_app(service, settings, password=password)
    logging.getLogger(__name__).info("the page is at http://%s:%d/", settings.host, settings.port)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="info", access_log=False)
    UIServer(config).run()


__all__ = ["check_gradio", "run_ui", "serve_with_ui"]
