"""Every bad input gets its status and a message naming what is wrong, and the server stays up."""

from __future__ import annotations

import base64
import json
import re

import pytest

from tests.serve.conftest import API_KEY, MAX_PIXELS, MAX_QUEUE, data_url_of, png_bytes, raw_request

openai = pytest.importorskip("openai")

CAPTION = "[CAP] Describe this image."
AUTH = {"authorization": f"Bearer {API_KEY}", "content-type": "application/json"}


def image_message(url: str, text: str = CAPTION) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}]}]


def status_of(call) -> tuple[int, dict]:
    with pytest.raises(openai.APIStatusError) as info:
        call()
    return info.value.status_code, info.value.body


def assert_healthy(server) -> None:
    health = raw_request(server.url, "GET", "/health")
    assert health.status == 200 and health.json()["status"] == "ok"


def test_bad_images_get_400_naming_the_message_and_part(server, client, tmp_path):
    outside = tmp_path / "outside.png"
    outside.write_bytes(png_bytes(1))
    big = png_bytes(2, (101, 100))  # 10,100 pixels > MAX_PIXELS
    cases = {
        "remote URL": ("https://example.com/scene.png", "remote image URLs are refused"),
        "not base64": ("data:image/png;base64,@@@not-base64@@@", "does not decode"),
        "not an image": (data_url_of(b"this is not an image at all"), "cannot decode the image"),
        "truncated image": (data_url_of(png_bytes(3)[:60]), "cannot decode the image"),
        "too many pixels": (data_url_of(big), f"over the limit of {MAX_PIXELS:,}"),
        "path outside allow-dir": (str(outside), "outside --allow-dir"),
        "missing file": ("no-such-scene.png", "not found"),
        "not a data URL": ("data:image/png,abc", "not base64-encoded"),
    }
    for name, (url, message) in cases.items():
        status, body = status_of(lambda: client.chat.completions.create(model="aerith-tiny", messages=image_message(url), max_tokens=4))
        assert status == 400, name
        assert message in body["message"], (name, body)
        assert body["param"] == "messages[0].content[1]", (name, body)
        assert "messages[0].content[1]" in body["message"]
    assert_healthy(server)


def test_bad_conversations_and_settings_get_400_or_422_naming_the_field(server, client):
    img = data_url_of(png_bytes(4))
    create = client.chat.completions.create
    cases = [
        (lambda: create(model="aerith-tiny", messages=image_message(img, "look at <image> here"), max_tokens=4), 400, "messages[0].content[0]", "<image>"),
        (lambda: create(model="aerith-tiny", messages=[*image_message(img), {"role": "assistant", "content": "x"}], max_tokens=4), 400, "messages", "end with a user message"),
        (lambda: create(model="aerith-tiny", messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], max_tokens=4), 400, "messages[1].role", "alternate"),
        (lambda: create(model="aerith-tiny", messages=[{"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": img}}]}], max_tokens=4), 400, "messages[0].content[0]", "only user messages"),
        (lambda: create(model="aerith-tiny", messages=image_message(img), max_tokens=100_000), 400, "max_tokens", "context"),
        (lambda: create(model="aerith-tiny", messages=image_message(img), max_tokens=4, n=2), 400, "n", "one choice"),
        (lambda: create(model="gpt-4o", messages=image_message(img), max_tokens=4), 404, "model", "not served here"),
        (lambda: create(model="aerith-tiny", messages=image_message(img), max_tokens=0), 422, "max_tokens", "greater than or equal to 1"),
        (lambda: create(model="aerith-tiny", messages=image_message(img), temperature=5), 422, "temperature", "less than or equal to 2"),
        (lambda: create(model="aerith-tiny", messages=[], max_tokens=4), 422, "messages", "at least 1"),
        (lambda: create(model="aerith-tiny", messages=[{"role": "tool", "content": "x"}], max_tokens=4), 422, "messages[0].role", "'user'"),
        (lambda: create(model="aerith-tiny", messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]), 422, "messages[0].content[0]", "input_audio"),
        (lambda: create(model="aerith-tiny", messages=image_message(img), stop=["a", "b", "c", "d", "e"]), 400, "stop", "up to 4"),
    ]
    for call, status, param, message in cases:
        got, body = status_of(call)
        assert (got, body["param"]) == (status, param), body
        assert message in body["message"], body
    assert_healthy(server)


def test_malformed_json_and_schema_over_raw_http(server):
    bad = raw_request(server.url, "POST", "/v1/chat/completions", b'{"model": "aerith-tiny", "messages": [', AUTH)
    assert bad.status == 400 and "not valid JSON" in bad.json()["error"]["message"]
    missing = raw_request(server.url, "POST", "/v1/chat/completions", b'{"model": "aerith-tiny"}', AUTH)
    assert missing.status == 422 and missing.json()["error"]["param"] == "messages"
    task = raw_request(server.url, "POST", "/v1/classify", json.dumps({"classes": ["a"]}).encode(), AUTH)
    assert task.status == 422 and "exactly one of 'image'" in task.json()["error"]["message"]
    bad_image = raw_request(server.url, "POST", "/v1/caption", json.dumps({"images": [data_url_of(png_bytes(1)), "http://x/y.png"]}).encode(), AUTH)
    assert bad_image.status == 400 and bad_image.json()["error"]["param"] == "images[1]"
    unknown = raw_request(server.url, "GET", "/v1/nothing-here", headers=AUTH)
    assert unknown.status == 404 and "error" in unknown.json()
    wrong_method = raw_request(server.url, "GET", "/v1/chat/completions", headers=AUTH)
    assert wrong_method.status == 405 and wrong_method.json()["error"]["type"] == "invalid_request_error"  # not a server error
    assert_healthy(server)


def test_body_over_the_limit_gets_413(server):
    # declared too large: refused before the body is read
    declared = raw_request(server.url, "POST", "/v1/chat/completions", b"{}", {**AUTH, "content-length": str(2 * 1024 * 1024)})
    assert declared.status == 413 and "--max-body-mb 1" in declared.json()["error"]["message"]
    # chunked, with no length: counted while read
    payload = json.dumps({"model": "aerith-tiny", "messages": [], "pad": "x" * (1024 * 1024 + 100)}).encode()
    chunked = raw_request(server.url, "POST", "/v1/chat/completions", payload, AUTH, chunked=True)
    assert chunked.status == 413 and "over the limit" in chunked.json()["error"]["message"]
    assert_healthy(server)


def test_more_images_than_the_queue_holds_is_a_400_not_a_retry(server):
    tiny = data_url_of(png_bytes(5, (8, 8)))
    body = json.dumps({"images": [tiny] * (MAX_QUEUE + 1), "max_tokens": 2}).encode()
    reply = raw_request(server.url, "POST", "/v1/caption", body, AUTH)
    assert reply.status == 400 and "retry-after" not in reply.headers
    error = reply.json()["error"]
    assert error["param"] == "images" and f"{MAX_QUEUE + 1} images, over the {MAX_QUEUE}" in error["message"]
    assert_healthy(server)


def post(server, path: str, body: dict) -> tuple[int, dict]:
    reply = raw_request(server.url, "POST", path, json.dumps(body).encode(), AUTH)
    return reply.status, reply.json().get("error") or {}


def test_image_paths_the_standard_library_refuses_are_400s_naming_the_part(server, client):
    for url in ["a\x00.png", "file:///scenes/a%00.png", "file://[bad/a.png"]:
        status, body = status_of(lambda: client.chat.completions.create(model="aerith-tiny", messages=image_message(url), max_tokens=2))
        assert (status, body["param"]) == (400, "messages[0].content[1]"), (url, body)
        assert post(server, "/v1/caption", {"image": url})[1]["param"] == "image"
    assert_healthy(server)


def test_task_requests_name_the_field_that_is_wrong_before_generating(server):
    img = data_url_of(png_bytes(6))
    registry = server.state.metrics.registry
    generated = registry.get_sample_value("aerith_generated_tokens_total")
    cases = [
        ("/v1/classify", {"image": img, "classes": ["Beach", "beach"]}, 422, "classes[1]", "same class as 'Beach'"),
        ("/v1/classify", {"image": img, "classes": ["forest", "!!!"]}, 422, "classes[1]", "no letters or digits"),
        ("/v1/classify", {"image": img, "classes": [""]}, 422, "classes[0]", "no letters or digits"),
        ("/v1/classify", {"image": img, "classes": [f"class{i}" for i in range(3000)]}, 400, "classes", "context"),
        ("/v1/classify", {"image": img, "classes": ["forest", "<image> beach"]}, 400, "classes[1]", "<image>"),
        ("/v1/answer", {"image": img, "question": "  "}, 400, "question", "empty"),
        ("/v1/answer", {"images": [img, img], "questions": ["what?", ""]}, 400, "questions[1]", "empty"),
        ("/v1/answer", {"image": img, "question": "word " * 2000}, 400, "question", "context"),
        ("/v1/ground", {"image": img, "expression": "the <image>"}, 400, "expression", "<image>"),
        ("/v1/ground", {"images": [img, img], "expressions": ["a road", "<image>"]}, 400, "expressions[1]", "<image>"),
    ]
    for path, body, status, param, message in cases:
        got, error = post(server, path, body)
        assert (got, error.get("param")) == (status, param), (path, error)
        assert message in error["message"], error
    assert registry.get_sample_value("aerith_generated_tokens_total") == generated  # all refused before generating
    assert_healthy(server)


def test_task_endpoints_refuse_fields_they_do_not_use_and_integers_are_strict(server):
    img = data_url_of(png_bytes(6))
    for field, value in (("temperature", 0.7), ("seed", 1), ("stop", ["x"]), ("messages", [])):
        status, error = post(server, "/v1/caption", {"image": img, field: value})
        assert (status, error["param"]) == (422, field), error
    chat = {"model": "aerith-tiny", "messages": [{"role": "user", "content": "hi"}]}
    for value in (True, "5", 5.0):
        assert post(server, "/v1/caption", {"image": img, "max_tokens": value})[0] == 422
        status, error = post(server, "/v1/chat/completions", {**chat, "max_tokens": value})
        assert (status, error["param"]) == (422, "max_tokens"), error
    assert_healthy(server)


def test_a_seed_beyond_what_torch_takes_is_a_422(server):
    chat = {"model": "aerith-tiny", "messages": [{"role": "user", "content": "hi"}]}
    for value in (2**64, -(2**63) - 1):
        status, error = post(server, "/v1/chat/completions", {**chat, "seed": value, "temperature": 1.0, "max_tokens": 2})
        assert (status, error["param"]) == (422, "seed"), error
    status, _ = post(server, "/v1/chat/completions", {**chat, "seed": 2**64 - 1, "temperature": 1, "max_tokens": 2})
    assert status == 200  # the largest seed torch takes; an integer temperature is a number
    assert_healthy(server)


def test_missing_or_wrong_key_gets_401(server):
    for headers, message in (({}, "missing API key"), ({"authorization": "Bearer nope"}, "wrong API key"), ({"authorization": "Basic " + base64.b64encode(b"a:b").decode()}, "wrong API key")):
        reply = raw_request(server.url, "GET", "/v1/models", headers=headers)
        assert reply.status == 401 and message in reply.json()["error"]["message"]
    wrong = openai.OpenAI(base_url=server.url + "/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    assert raw_request(server.url, "GET", "/health").status == 200  # health needs no key


def test_metrics_count_requests_errors_and_queue(server):
    assert raw_request(server.url, "GET", "/v1/models").status == 401
    text = raw_request(server.url, "GET", "/metrics", headers=AUTH).body.decode()
    for name in ("aerith_requests_total", "aerith_request_errors_total", "aerith_queue_depth", "aerith_batch_size_bucket", "aerith_request_latency_seconds_bucket", "aerith_model_ready 1.0"):
        assert name in text, name
    assert re.search(r'aerith_request_errors_total\{status="401"\} [1-9]', text)
    assert re.search(r'aerith_requests_total\{endpoint="/v1/models",status="401"\} [1-9]', text)


def test_bad_requests_among_good_ones_fail_alone(server, client, tiny_vlm):
    from concurrent.futures import ThreadPoolExecutor

    good = [data_url_of(png_bytes(50 + i)) for i in range(6)]
    bad = [data_url_of(b"garbage"), "https://example.com/x.png", data_url_of(png_bytes(9, (200, 200)))]

    def ask(url: str):
        try:
            reply = client.chat.completions.create(model="aerith-tiny", messages=image_message(url), max_tokens=5)
            return reply.choices[0].message.content
        except openai.APIStatusError as err:
            return err.status_code

    with ThreadPoolExecutor(max_workers=9) as pool:
        answers = list(pool.map(ask, good + bad))
    assert answers[len(good):] == [400, 400, 400]
    sequential = [ask(url) for url in good]
    assert answers[: len(good)] == sequential and all(isinstance(a, str) for a in sequential)


def test_health_says_loading_until_the_model_is_loaded(tiny_vlm):
    import threading
    import time

    from aerith.serve.server import BackgroundServer
    from aerith.serve.settings import ServeSettings

    release = threading.Event()

    def slow_load():
        release.wait(60)
        return tiny_vlm

    srv = BackgroundServer(ServeSettings("aerith-tiny"), load=slow_load)
    srv.thread.start()
    try:
        while not srv.server.started:
            time.sleep(0.01)
        health = raw_request(srv.url, "GET", "/health")
        assert health.status == 503 and health.json()["status"] == "loading"
        models = raw_request(srv.url, "GET", "/v1/models")
        assert models.status == 503 and "still loading" in models.json()["error"]["message"] and models.headers["retry-after"]
        release.set()
        while srv.state.service is None:
            time.sleep(0.01)
        assert raw_request(srv.url, "GET", "/health").status == 200
    finally:
        release.set()
        srv.stop()


def test_serve_command_refuses_unknown_models_and_bad_settings(tmp_path):
    from typer.testing import CliRunner

    from aerith.cli import app

    unknown = CliRunner().invoke(app, ["serve", "no-such-model"])
    assert unknown.exit_code == 2 and "neither a preset" in unknown.output
    bad = CliRunner().invoke(app, ["serve", "aerith-tiny", "--max-batch", "0"])
    assert bad.exit_code == 2 and "max_batch=0" in bad.output
    missing_dir = CliRunner().invoke(app, ["serve", "aerith-tiny", "--allow-dir", str(tmp_path / "nope")])
    assert missing_dir.exit_code == 2 and "not a folder" in missing_dir.output


def test_a_warning_naming_a_non_latin1_folder_still_answers_every_request(tiny_vlm, tmp_path):
    import aerith
    from aerith.serve.server import BackgroundServer
    from aerith.serve.settings import ServeSettings

    folder = tmp_path / "模型-tiny"
    tiny_vlm.save_pretrained(folder)
    vlm = aerith.load_vlm(folder, device="cpu")
    assert "模型" in vlm.random_weights_warning
    with BackgroundServer(ServeSettings(str(folder), max_tokens=2), load=lambda: vlm) as srv:
        health = raw_request(srv.url, "GET", "/health")
        assert health.status == 200 and "模型" in health.json()["warning"]
        assert "RANDOM weights" in health.headers["x-aerith-warning"] and "\\u6a21\\u578b-tiny" in health.headers["x-aerith-warning"]
        chat = {"model": str(folder), "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        reply = raw_request(srv.url, "POST", "/v1/chat/completions", json.dumps(chat).encode(), {"content-type": "application/json"})
        assert reply.status == 200 and "x-aerith-warning" in reply.headers


def test_an_unexpected_error_is_a_500_with_the_warning_header(server, monkeypatch):
    def broken() -> dict:
        raise RuntimeError("a bug")

    monkeypatch.setattr(server.state.service, "describe", broken)
    reply = raw_request(server.url, "GET", "/v1/models", headers=AUTH)
    assert reply.status == 500
    assert reply.json()["error"]["message"] == "internal error: RuntimeError: a bug"
    assert "RANDOM weights" in reply.headers["x-aerith-warning"]
    monkeypatch.undo()
    assert_healthy(server)


def test_more_images_than_the_context_holds_are_refused_before_any_is_decoded(server, tiny_vlm):
    per_image, context = tiny_vlm.processor.num_image_tokens, tiny_vlm.model.config.text_config.max_position_embeddings
    n = context // per_image + 1
    garbage = data_url_of(b"not decoded: the count is refused first")  # a decoded one would fail as 'cannot decode'
    body = {"model": "aerith-tiny", "max_tokens": 2, "messages": image_message(garbage)}
    body["messages"][0]["content"] += [{"type": "image_url", "image_url": {"url": garbage}}] * (n - 1)
    status, error = post(server, "/v1/chat/completions", body)
    assert (status, error["param"]) == (400, "messages"), error
    assert f"{n} images take {n * per_image} tokens" in error["message"] and f"context of {context}" in error["message"]
    assert_healthy(server)
