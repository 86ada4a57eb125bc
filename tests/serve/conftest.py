"""A live server on 127.0.0.1 (free port), shared by the module's tests, driven by the official openai client."""

from __future__ import annotations

import base64
import io
import json
import http.client
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")

API_KEY = "test-key"
MAX_PIXELS = 100 * 100
MAX_QUEUE = 64


def png_bytes(seed: int, size: tuple[int, int] = (32, 32)) -> bytes:
    """A small image, different for each seed."""
    import numpy as np

    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def data_url_of(raw: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(raw).decode()}"


@dataclass
class Raw:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def raw_request(url: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None, chunked: bool = False) -> Raw:
    """One HTTP request with the standard library (to send what a well-behaved client never would)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        if chunked:
            conn.putrequest(method, path)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for start in range(0, len(body or b""), 65536):
                piece = body[start : start + 65536]
                try:
                    conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                except (BrokenPipeError, ConnectionResetError):
                    break
            try:
                conn.send(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
        else:
            conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Raw(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


@pytest.fixture(scope="session")
def tiny_vlm():
    import aerith

    return aerith.load_vlm("aerith-tiny", seed=0, device="cpu")


@pytest.fixture(scope="module")
def allow_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("allowed")
    (root / "scene.png").write_bytes(png_bytes(7))
    return root


@pytest.fixture(scope="module")
def server(tiny_vlm, allow_dir):
    from aerith.serve.server import BackgroundServer
    from aerith.serve.settings import ServeSettings

    settings = ServeSettings(
        "aerith-tiny", api_key=API_KEY, allow_dir=allow_dir, max_batch=16, batch_window_ms=20,
        max_body_mb=1, max_image_pixels=MAX_PIXELS, max_queue=MAX_QUEUE, max_tokens=16,
    )
    with BackgroundServer(settings, load=lambda: tiny_vlm) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0, timeout=120)
