"""How the page is served: the commands' errors, the login beside a keyed API, shutdown with tabs open."""

from __future__ import annotations

import http.cookiejar
import urllib.error
import urllib.parse
import urllib.request

import pytest
from typer.testing import CliRunner

from aerith.cli import app

pytestmark = pytest.mark.filterwarnings("ignore:::gradio.queueing")  # pandas 3 deprecations inside Gradio's queue


def test_ui_commands_refuse_unknown_models_and_bad_settings(gradio_module):
    unknown = CliRunner().invoke(app, ["ui", "no-such-model"])
    assert unknown.exit_code == 2 and "neither a preset" in unknown.output and "Traceback" not in unknown.output
    served = CliRunner().invoke(app, ["serve", "no-such-model", "--ui"])
    assert served.exit_code == 2 and "neither a preset" in served.output
    bad = CliRunner().invoke(app, ["ui", "aerith-tiny", "--max-batch", "0"])
    assert bad.exit_code == 2 and "max_batch=0" in bad.output


def _get(url: str, opener=None, data: bytes | None = None) -> tuple[int, bytes]:
    try:
        with (opener or urllib.request.build_opener()).open(url, data=data, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.fixture(scope="module")
def keyed_server(tiny_vlm, gradio_module):
    from aerith.serve.server import BackgroundServer
    from aerith.serve.settings import ServeSettings
    from aerith.ui.server import mount_beside_api

    settings = ServeSettings("aerith-tiny", api_key="sekrit", max_tokens=4)
    with BackgroundServer(settings, load=lambda: tiny_vlm, mount=mount_beside_api(settings)) as server:
        yield server


def test_beside_a_keyed_api_the_page_asks_for_the_key_on_a_login_page(keyed_server):
    url = keyed_server.url
    assert _get(url + "/v1/models")[0] == 401  # the API still wants its bearer key
    assert _get(url + "/ui/")[0] == 200  # the page's shell (its login form) ...
    status, body = _get(url + "/ui/config")  # ... but nothing of the app without logging in
    assert status == 401 and b"key as password" in body
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    wrong = urllib.parse.urlencode({"username": "me", "password": "nope"}).encode()
    assert _get(url + "/ui/login", opener, wrong)[0] == 400
    right = urllib.parse.urlencode({"username": "me", "password": "sekrit"}).encode()
    assert _get(url + "/ui/login", opener, right)[0] == 200
    assert _get(url + "/ui/config", opener)[0] == 200


def test_a_shutdown_is_not_held_up_by_open_tabs(browser, tiny_vlm, gradio_module):
    from aerith.serve.server import BackgroundServer
    from aerith.serve.settings import ServeSettings
    from aerith.ui.server import mount_beside_api

    settings = ServeSettings("aerith-tiny", max_tokens=4)
    server = BackgroundServer(settings, load=lambda: tiny_vlm, mount=mount_beside_api(settings)).start()
    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.goto(server.url + "/ui/")
        tab.wait_for_selector("#aerith-upload")
        tab.wait_for_timeout(500)  # the tab's heartbeat stream is open now
        server.stop(timeout=30)  # without the page's stop event it would wait for the tab forever
        assert not server.thread.is_alive(), "the server still waits for the open tab"
    finally:
        context.close()
        if server.thread.is_alive():
            server.stop(timeout=5)
