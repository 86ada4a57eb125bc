"""`aerith serve` in its own process: ready only once loaded; SIGTERM finishes the request in flight and takes no new ones."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.serve.conftest import data_url_of, png_bytes, raw_request

pytest.importorskip("fastapi")
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def try_get(url: str, path: str) -> int | None:
    """The status of GET path, or None when the connection is refused or dropped."""
    try:
        return raw_request(url, "GET", path).status
    except (ConnectionError, OSError):
        return None


def test_sigterm_finishes_the_request_in_flight_and_takes_no_new_ones(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aerith.cli", "serve", "aerith-tiny", "--port", str(port), "--max-batch", "4"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        statuses = []
        deadline = time.monotonic() + 300
        while (status := try_get(url, "/health")) != 200:
            statuses.append(status)
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        assert set(statuses) <= {None, 503}  # refused before the socket opens, 503 while loading

        body = {"model": "aerith-tiny", "max_tokens": 200, "min_tokens": 200,
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url_of(png_bytes(1))}}, {"type": "text", "text": "[CAP] Describe this image."}]}]}
        result = {}

        def long_request() -> None:
            result["reply"] = raw_request(url, "POST", "/v1/chat/completions", json.dumps(body).encode(), {"content-type": "application/json"})

        worker = threading.Thread(target=long_request)
        worker.start()
        while not re.search(r"^aerith_requests_running 1\.0$", raw_request(url, "GET", "/metrics").body.decode(), re.M):
            assert worker.is_alive(), "the request ended before it could be seen running"
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        after = []
        while worker.is_alive():
            after.append(try_get(url, "/v1/models"))
            time.sleep(0.02)
        worker.join()
        # a clean exit; recent uvicorn re-raises the signal once shut down, so the status says SIGTERM
        assert proc.wait(120) in (0, -signal.SIGTERM), log.read_text()[-3000:]
        assert "Application shutdown complete" in log.read_text()
        assert set(after) <= {None, 503}, after  # nothing new is served once SIGTERM arrived
        assert try_get(url, "/health") is None
        reply = result["reply"]
        assert reply.status == 200, reply.body
        answer = reply.json()
        assert answer["usage"]["completion_tokens"] == 200 and answer["choices"][0]["finish_reason"] == "length"
        assert "RANDOM weights" in reply.headers["x-aerith-warning"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
