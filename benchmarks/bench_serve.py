"""Serving throughput and latency: `aerith serve` with dynamic batching against the same server with --max-batch 1.

Two ``aerith serve aerith-tiny`` processes run side by side on 127.0.0.1, one with
``--max-batch 32`` and one with ``--max-batch 1`` (otherwise the defaults: a 10 ms batching
window), each warmed up first. Clients are threads of this process, each with its own
keep-alive HTTP connection, sending ``POST /v1/chat/completions`` back to back: one 64 px
PNG as a base64 data URL and a caption instruction, greedy, exactly ``NEW_TOKENS`` new tokens
(``min_tokens`` = ``max_tokens``), so that both servers do the same work per request. At 1, 8
and 32 concurrent clients each client sends ``REQUESTS_PER_CLIENT`` requests (at least
``MIN_REQUESTS`` in all); the two servers alternate at each level over ``ROUNDS`` rounds, in the order AB then BA,
so that load from other processes on a shared machine hits both alike. Reported per level and server: requests/s
(best round, and median), median and 99th-percentile latency over all rounds, the mean
batch size the server formed (its /metrics), and requests lost (any answer but 200, or
no answer). The ratio is batched over --max-batch 1 requests/s: of the best rounds, and the
median of the per-round ratios (each round measures both servers back to back).
Clients and servers share the machine's cores. The servers run as ``aerith serve`` does by
default, with ``OMP_WAIT_POLICY=PASSIVE`` unless the environment sets it.

Run: ``aerith bench --only serve`` (from the repository root) or ``python benchmarks/bench_serve.py``.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NEW_TOKENS = 16
LEVELS = (1, 8, 32)
MIN_REQUESTS = 32
REQUESTS_PER_CLIENT = 2
ROUNDS = 4
BATCHED = 32


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _image_url(seed: int) -> str:
    import numpy as np
    from PIL import Image

    arr = np.random.default_rng(seed).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class _Server:
    def __init__(self, max_batch: int, log: Path) -> None:
        self.port = _free_port()
        self.max_batch = max_batch
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aerith.cli", "serve", "aerith-tiny", "--port", str(self.port), "--max-batch", str(max_batch), "--max-queue", "1024"],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def get(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def wait_ready(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server with --max-batch {self.max_batch} exited; see {self.log.name}")
            try:
                if self.get("/health")[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not become ready")
            time.sleep(0.1)

    def batches(self) -> tuple[float, float]:
        """(batches formed, requests in them) so far, from /metrics."""
        text = self.get("/metrics")[1].decode()
        count = float(re.search(r"^aerith_batch_size_count (\S+)$", text, re.M).group(1))
        total = float(re.search(r"^aerith_batch_size_sum (\S+)$", text, re.M).group(1))
        return count, total

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _client(port: int, bodies: list[bytes], latencies: list[float], lost: list[int]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        for body in bodies:
            tic = time.perf_counter()
            try:
                conn.request("POST", "/v1/chat/completions", body=body, headers={"content-type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                ok = resp.status == 200 and json.loads(data)["usage"]["completion_tokens"] == NEW_TOKENS
            except (OSError, http.client.HTTPException, ValueError, KeyError):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            if ok:
                latencies.append(time.perf_counter() - tic)
            else:
                lost.append(1)
    finally:
        conn.close()


def _load(server: _Server, clients: int, requests_per_client: int, images: list[str]) -> dict[str, Any]:
    bodies = [
        [
            json.dumps({
                "model": "aerith-tiny", "max_tokens": NEW_TOKENS, "min_tokens": NEW_TOKENS,
                "messages": [{"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": images[(c * requests_per_client + k) % len(images)]}},
                    {"type": "text", "text": "[CAP] Describe this image."},
                ]}],
            }).encode()
            for k in range(requests_per_client)
        ]
        for c in range(clients)
    ]
    latencies: list[float] = []
    lost: list[int] = []
    before = server.batches()
    threads = [threading.Thread(target=_client, args=(server.port, b, latencies, lost)) for b in bodies]
    tic = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - tic
    after = server.batches()
    n = clients * requests_per_client
    return {
        "requests": n,
        "req_per_s": len(latencies) / wall,
        "latencies": latencies,
        "lost": len(lost),
        "mean_batch": (after[1] - before[1]) / max(after[0] - before[0], 1),
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def run(levels: tuple[int, ...] = LEVELS, requests_per_client: int = REQUESTS_PER_CLIENT, rounds: int = ROUNDS) -> dict[str, Any]:
    images = [_image_url(i) for i in range(16)]
    with tempfile.TemporaryDirectory() as tmp:
        servers = {BATCHED: _Server(BATCHED, Path(tmp) / "batched.log"), 1: _Server(1, Path(tmp) / "single.log")}
        try:
            for server in servers.values():
                server.wait_ready()
                _load(server, 4, 2, images)  # warm-up: first requests pay one-off costs
            runs: dict[tuple[int, int], list[dict[str, Any]]] = {}
            for r in range(rounds):
                for clients in levels:
                    per_client = max(requests_per_client, -(-MIN_REQUESTS // clients))
                    order = list(servers.items())
                    for mb, server in order if r % 2 == 0 else order[::-1]:  # ABBA: neither always goes first
                        runs.setdefault((clients, mb), []).append(_load(server, clients, per_client, images))
        finally:
            for server in servers.values():
                server.stop()
    rows = []
    for clients in levels:
        row: dict[str, Any] = {"clients": clients}
        for mb, label in ((BATCHED, "batched"), (1, "single")):
            measured = runs[(clients, mb)]
            lat = [x for m in measured for x in m["latencies"]]
            row[label] = {
                "requests_per_round": measured[0]["requests"],
                "req_per_s_best": max(m["req_per_s"] for m in measured),
                "req_per_s_median": statistics.median(m["req_per_s"] for m in measured),
                "p50_s": _percentile(lat, 50) if lat else float("nan"),
                "p99_s": _percentile(lat, 99) if lat else float("nan"),
                "mean_batch": statistics.mean(m["mean_batch"] for m in measured),
                "lost": sum(m["lost"] for m in measured),
            }
        pairs = [b["req_per_s"] / s["req_per_s"] for b, s in zip(runs[(clients, BATCHED)], runs[(clients, 1)])]
        row["ratio"] = row["batched"]["req_per_s_best"] / row["single"]["req_per_s_best"]
        row["ratio_median"] = statistics.median(pairs)  # of the rounds' ratios: both servers measured back to back
        rows.append(row)
    import torch

    return {
        "model": "aerith-tiny (random weights)",
        "new_tokens": NEW_TOKENS,
        "rounds": rounds,
        "max_batch": BATCHED,
        "threads": torch.get_num_threads(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "cores": os.cpu_count(),
        "rows": rows,
        "lost_total": sum(r[k]["lost"] for r in rows for k in ("batched", "single")),
    }


def to_markdown(result: dict[str, Any]) -> str:
    load = result.get("load_average")
    load_note = ""
    if load:
        load_note = f" Load average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min)"
        if load[1] > (result.get("cores") or 1):
            load_note += (
                f", on {result['cores']} cores: the machine was shared with other jobs, so absolute figures are noisy "
                "(the alternating rounds keep the ratios fairer than the absolute numbers)"
            )
        load_note += "."
    lines = [
        f"{result['model']}, `POST /v1/chat/completions` with one 64 px PNG data URL, greedy, exactly "
        f"{result['new_tokens']} new tokens per answer; server `--max-batch {result['max_batch']}` against `--max-batch 1`, "
        f"both in their own process beside the clients (threads of the benchmark process, one keep-alive connection each); "
        f"{result['rounds']} alternating rounds per level, requests/s best and median, latency percentiles over all "
        f"rounds' requests (with fewer than 100 of them, p99 is the slowest)."
        + load_note,
        "",
        "| clients | requests/round | batched req/s best (median) | batched p50 / p99 s | mean batch | --max-batch 1 req/s best (median) | --max-batch 1 p50 / p99 s | throughput ratio best (median of rounds) | lost |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        b, s = r["batched"], r["single"]
        lines.append(
            f"| {r['clients']} | {b['requests_per_round']} | {b['req_per_s_best']:.1f} ({b['req_per_s_median']:.1f}) "
            f"| {b['p50_s']:.3f} / {b['p99_s']:.3f} | {b['mean_batch']:.1f} "
            f"| {s['req_per_s_best']:.1f} ({s['req_per_s_median']:.1f}) | {s['p50_s']:.3f} / {s['p99_s']:.3f} "
            f"| {r['ratio']:.2f}x ({r['ratio_median']:.2f}x) | {b['lost'] + s['lost']} |"
        )
    top = result["rows"][-1]
    lines += [
        "",
        f"At {top['clients']} clients dynamic batching serves {top['ratio']:.2f}x the requests/s of `--max-batch 1` "
        f"(best rounds; median of the rounds' ratios {top['ratio_median']:.2f}x; target: 4x). "
        f"Requests lost in the whole run: {result['lost_total']}.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(to_markdown(run()))
