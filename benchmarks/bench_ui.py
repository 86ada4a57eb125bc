"""Web page overhead: time from pressing Ask to the answer drawn in the browser, against the same request sent straight to the API.

``aerith serve aerith-tiny --ui`` runs in its own process, as the command runs it (the page
mounted at /ui beside the API, one model and one batching queue, sleeping OpenMP threads);
headless Chromium (Debian's
``chromium``, driven by Playwright) loads the page and uploads a 128 px SynthRS scene (the
harbour example) once. Each measured request is the ground task ("the white ship on the
left"), greedy, at most ``max_tokens`` tokens:

- page: from the click on Ask until the status line reports the answer and the scene image
  sent with it (redrawn with the answer's boxes) has loaded in the browser (Gradio's queue, the server-side answer
  parsing, drawing and JSON download file, the PNG of the 512 px display image, the browser's
  rendering). The scene was uploaded before the clock starts; the conversation is cleared
  before each ask (not timed), so every ask is a single turn.
- API: ``POST /v1/chat/completions`` with the same prompt and the scene as a base64 data URL
  (the API has no stored scene), on a keep-alive connection, until the JSON answer is read.

Both give the same answer (greedy, same model and prompt: checked). The two alternate
``REPEATS`` times per answer length after a warm-up of each; reported are the medians and
their ratio. One run; the machine is shared with other jobs (load average in the table).

Run: ``aerith bench --only ui`` (from the repository root) or ``python benchmarks/bench_ui.py``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

MAX_TOKENS = (16, 64, 256)
REPEATS = 7
EXPRESSION = "the white ship on the left"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("chromium is not installed (apt-get install -y chromium)")


def _api_answer(port: int, body: bytes) -> tuple[float, str, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        tic = time.perf_counter()
        conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
        reply = json.loads(conn.getresponse().read())
        seconds = time.perf_counter() - tic
    finally:
        conn.close()
    return seconds, reply["choices"][0]["message"]["content"], reply["usage"]["completion_tokens"]


def _page_answer(page, turn: int) -> tuple[float, str, int]:
    page.click("#aerith-clear")
    page.wait_for_function("document.querySelector('#aerith-status').innerText.trim() === ''")
    page.fill("#aerith-message textarea", EXPRESSION)
    tic = time.perf_counter()
    page.click("#aerith-send")
    # the answer's status, chat bubble and redrawn scene arrive in one update; wait for the image to load too
    page.wait_for_function(
        """() => {
            const status = document.querySelector('#aerith-status').innerText;
            const img = document.querySelector('#aerith-scene img');
            return status.includes('Answer 1:') && img && img.complete && img.naturalWidth > 0;
        }""",
        polling=5,
    )
    seconds = time.perf_counter() - tic
    status = page.locator("#aerith-status").inner_text()
    tokens = int(re.search(r"(\d+) tokens", status).group(1))
    with page.expect_download() as info:
        page.click("#aerith-json")
    with open(info.value.path()) as f:
        answer = json.load(f)["turns"][0]["answer"]
    return seconds, answer, tokens


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(port: int, log: Path) -> subprocess.Popen:
    out = open(log, "w")  # noqa: SIM115 - the server's log, closed when the process ends
    process = subprocess.Popen(
        [sys.executable, "-m", "aerith.cli", "serve", "aerith-tiny", "--ui", "--port", str(port)],
        cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"aerith serve --ui exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                if r.status == 200:
                    return process
        except OSError:
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError("aerith serve --ui did not become ready in 300 s")


def run(max_tokens: tuple[int, ...] = MAX_TOKENS, repeats: int = REPEATS) -> dict[str, Any]:
    from aerith.ui.examples import ASSETS

    scene = ASSETS / "ui-harbor.png"
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = _start_server(port, Path(tmp) / "serve.log")
        try:
            rows = _measure(port, scene, max_tokens, repeats)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
    return {
        "model": "aerith-tiny (random weights)",
        "repeats": repeats,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "cores": os.cpu_count(),
        "rows": rows,
    }


def _measure(port: int, scene: Path, max_tokens: tuple[int, ...], repeats: int) -> list[dict[str, Any]]:
    """Alternate page and API requests at each answer length (see the module docstring)."""
    from playwright.sync_api import sync_playwright

    from aerith.prompts import ground_prompt
    from aerith.serve.images import data_url

    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 1500}, accept_downloads=True)
        page.set_default_timeout(300_000)
        page.goto(f"http://127.0.0.1:{port}/ui/")
        page.wait_for_selector("#aerith-upload")
        page.set_input_files("#aerith-upload input[type=file]", str(scene))
        page.wait_for_function("() => { const i = document.querySelector('#aerith-scene img'); return i && i.complete && i.naturalWidth > 0; }")
        page.locator("#aerith-task label", has_text="Ground").click()
        for n in max_tokens:
            page.fill("#aerith-max-tokens input[type=number]", str(n))
            page.locator("#aerith-max-tokens input[type=number]").press("Enter")
            body = json.dumps({
                "model": "aerith-tiny", "max_tokens": n,
                "messages": [{"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": data_url(scene)}},
                    {"type": "text", "text": ground_prompt(EXPRESSION)},
                ]}],
            }).encode()  # fmt: skip
            _page_answer(page, 1)  # warm-up: first requests pay one-off costs
            _api_answer(port, body)
            page_s, api_s, same, tokens = [], [], True, set()
            for _ in range(repeats):
                s, page_text, page_tokens = _page_answer(page, 1)
                page_s.append(s)
                s, api_text, api_tokens = _api_answer(port, body)
                api_s.append(s)
                same &= page_text == api_text
                tokens |= {page_tokens, api_tokens}
            rows.append({
                "max_tokens": n, "tokens": sorted(tokens), "same_answer": same,
                "page_s": page_s, "api_s": api_s,
                "page_median_s": statistics.median(page_s), "api_median_s": statistics.median(api_s),
                "ratio": statistics.median(page_s) / statistics.median(api_s),
            })  # fmt: skip
        browser.close()
    return rows


def to_markdown(result: dict[str, Any]) -> str:
    load = result.get("load_average")
    note = ""
    if load:
        note = f" Load average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min)"
        if load[1] > (result.get("cores") or 1):
            note += f", on {result['cores']} cores: the machine was shared with other jobs, so the figures are noisy"
        note += "."
    lines = [
        (f"{result['model']} served by `aerith serve --ui` in its own process, ground task on a 128 px PNG, greedy; page: click on Ask until the answer is shown "
        f"(status, chat, scene image loaded) in headless Chromium, the answer streamed to the page every 0.1 s; API: `POST /v1/chat/completions` with the same prompt and the scene as a data "
        f"URL; {result['repeats']} alternating repeats after a warm-up, medians; one run.{note}"),
        "",
        "| max tokens | tokens answered | page median s | API median s | page - API s | page / API | same answer |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['max_tokens']} | {', '.join(map(str, r['tokens']))} | {r['page_median_s']:.3f} | {r['api_median_s']:.3f} "
            f"| {r['page_median_s'] - r['api_median_s']:.3f} | {r['ratio']:.2f}x | {'yes' if r['same_answer'] else 'NO'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(to_markdown(run()))
