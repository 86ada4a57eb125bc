"""Fixtures of the web page's tests: headless Chromium through Playwright, and two live servers.

- ``api_server``: ``aerith serve aerith-tiny --ui`` as the CLI builds it (page at ``/ui`` beside
  the API), with the real random-weight model.
- ``scripted_ui``: the page alone (``aerith ui``) over a :class:`ScriptedEngine`: the tiny
  model's own processor and chat template prepare every request and the real batching queue
  carries it, but the answer comes from a script, because a random-weight model writes
  neither boxes nor class names. It records every prompt it receives.

Chromium is Debian's ``chromium`` package, driven through Playwright with ``executable_path``
(``playwright install`` downloads nothing here). Without Chromium, Playwright or Gradio the
browser tests skip on a developer's machine but FAIL under CI (``CI`` set), where
``.ci/run`` installs them.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM_NAMES = ("chromium", "chromium-browser")
SCRIPTED_MAX_PIXELS = 300 * 300
SCRIPTED_MAX_MB = 0.25


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(what: str, how: str) -> None:
    """Fail under CI, skip elsewhere."""
    message = f"{what} is missing ({how}); the browser tests need it"
    if in_ci():
        pytest.fail(message + ": .ci/run installs it, so under CI this is an error", pytrace=False)
    pytest.skip(message)


def chromium_path() -> str | None:
    """``AERITH_CHROMIUM``, else Debian's chromium on the PATH."""
    given = os.environ.get("AERITH_CHROMIUM")
    if given:
        return given if Path(given).is_file() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def png_bytes(size: tuple[int, int] = (64, 48), seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


# -- the scripted model ------------------------------------------------------------------------------
GROUND_ANSWER = "[250, 300, 500, 700]"
HELD = "hold:"  # a turn starting so waits in the engine until the test releases it
HELD_ANSWER = "held [100, 100, 300, 300]"
MARKUP = "markup:"  # answered with text that Markdown or HTML would change
MARKUP_ANSWER = '# Port\n`<b>ship</b>` and *two* <img src=x onerror="window.aerithInjected=1"> a &amp; b [0, 0, 500, 500]'


def scripted_answer(prompt: str) -> str:
    """What the script answers to a chat-template prompt (it reads the last user turn)."""
    turn = prompt.rsplit("[INST]", 1)[-1].strip().removesuffix("[/INST]").replace("<image>", "").strip()
    if turn.startswith(HELD):
        return HELD_ANSWER
    if turn.startswith(MARKUP):
        return MARKUP_ANSWER
    if turn.startswith("[VG]"):
        return GROUND_ANSWER
    if turn.startswith("[CLS]"):
        classes = turn.split("from:", 1)[1].strip().rstrip(".").split(", ")
        return f"This is {classes[-1]}."
    return f"echo: {turn}"


@pytest.fixture(scope="session")
def tiny_vlm():
    import aerith

    return aerith.load_vlm("aerith-tiny", seed=0, device="cpu")


@pytest.fixture(scope="session")
def gradio_module():
    try:
        import gradio
    except ImportError:
        missing("gradio", "pip install -e '.[ui]'")
    return gradio


@pytest.fixture(scope="session")
def scripted_service(tiny_vlm, gradio_module):
    import threading

    from aerith.serve.batcher import Batcher
    from aerith.serve.engine import AerithEngine, Completion
    from aerith.serve.service import ModelService

    class ScriptedEngine(AerithEngine):
        """Prepares as the tiny model does; answers from :func:`scripted_answer`, streamed in two pieces.

        A turn starting with :data:`HELD` sets ``held`` and waits for ``release`` (set by the test)
        before it is answered: the page can be changed while the model is answering.
        """

        def __init__(self, vlm) -> None:
            super().__init__(vlm)
            self.prompts: list[str] = []
            self.held = threading.Event()
            self.release = threading.Event()

        def generate(self, rows):
            out = []
            for row in rows:
                self.prompts.append(row.prepared.prompt)
                text = scripted_answer(row.prepared.prompt)
                if text == HELD_ANSWER:
                    self.held.set()
                    self.release.wait(120)  # a bound, so that a failing test cannot hang the queue forever
                if row.sink is not None:
                    half = len(text) // 2
                    row.sink(text[:half])
                    row.sink(text[half:])
                tokens = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
                out.append(Completion(text, "stop", row.prepared.prompt_tokens, tokens))
            return out

    class ScriptedService(ModelService):
        def __init__(self, vlm) -> None:
            super().__init__(vlm, name="scripted-tiny", max_batch=4)
            self.engine = ScriptedEngine(vlm)
            self.batcher = Batcher(self.engine, max_batch=4, metrics=self.metrics)

    service = ScriptedService(tiny_vlm).start()
    yield service
    service.close()


@pytest.fixture(scope="session")
def scripted_ui(scripted_service):
    from aerith.serve.settings import ServeSettings
    from aerith.ui.server import BackgroundApp, ui_app

    settings = ServeSettings("scripted-tiny", max_tokens=16, max_image_pixels=SCRIPTED_MAX_PIXELS, max_body_mb=SCRIPTED_MAX_MB)
    with BackgroundApp(ui_app(scripted_service, settings)) as app:
        yield app


@pytest.fixture(scope="session")
def api_server(tiny_vlm, gradio_module):
    from aerith.serve.server import BackgroundServer
    from aerith.serve.settings import ServeSettings
    from aerith.ui.server import mount_beside_api

    settings = ServeSettings("aerith-tiny", max_tokens=6, max_batch=8)
    with BackgroundServer(settings, load=lambda: tiny_vlm, mount=mount_beside_api(settings)) as server:
        yield server


@pytest.fixture(scope="module")  # per module: Playwright's sync API keeps an event loop running while open
def browser(gradio_module):
    path = chromium_path()
    if path is None:
        missing("chromium", "apt-get install -y chromium, or set AERITH_CHROMIUM")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright", "pip install -e '.[dev]'")
    with sync_playwright() as p:
        # --no-sandbox: CI containers run as root, where Chromium's sandbox refuses to start
        chromium = p.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1500}, accept_downloads=True)
    context.set_default_timeout(60_000)
    tab = context.new_page()
    yield tab
    context.close()
