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


def _call(url: str, endpoint: str, data: list) -> tuple[str, str]:
    """Gradio's HTTP API: start an event; ``(its last event type, the data sent with it)``."""
    import json

    body = json.dumps({"data": data}).encode()
    request = urllib.request.Request(f"{url}/gradio_api/call/{endpoint}", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        event = json.load(r)["event_id"]
    with urllib.request.urlopen(f"{url}/gradio_api/call/{endpoint}/{event}", timeout=60) as r:
        lines = r.read().decode().splitlines()
    kind = [line.split(":", 1)[1].strip() for line in lines if line.startswith("event:")][-1]
    data = [line.split(":", 1)[1].strip() for line in lines if line.startswith("data:")][-1]
    return kind, data


@pytest.mark.parametrize("where", ["page alone", "beside the API"])
def test_a_request_naming_a_server_file_is_refused_not_shown(where, scripted_ui, api_server, tmp_path):
    from tests.ui.conftest import png_bytes

    url = scripted_ui.url if where == "page alone" else api_server.url + "/ui"
    private = tmp_path / "private.png"  # an image on the server that nobody uploaded
    private.write_bytes(png_bytes((40, 30)))
    kind, data = _call(url, "on_upload", [{"path": str(private), "meta": {"_type": "gradio.FileData"}}, None])
    assert kind == "error", (kind, data[:300])  # was: complete, with the image copied into Gradio's cache and shown
    assert "40 x 30 px" not in data and "Loaded" not in data
    uploaded = _upload(url, png_bytes((40, 30)), "mine.png")  # an upload, as the browser sends it, still works
    kind, data = _call(url, "on_upload", [{"path": uploaded, "meta": {"_type": "gradio.FileData"}}, None])
    assert kind == "complete" and "40 x 30 px" in data and "Loaded mine.png" in data


def _upload(url: str, raw: bytes, name: str) -> str:
    """POST a file to Gradio's upload route as the browser does; its path on the server."""
    import json

    boundary = "aerith-test-boundary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
        "Content-Type: image/png\r\n\r\n"
    ).encode() + raw + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{url}/gradio_api/upload", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=60) as r:
        return json.load(r)[0]
