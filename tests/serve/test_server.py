"""The live server, driven by the official openai client: answers, streaming, batching, history, tasks."""

from __future__ import annotations

import io
import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from PIL import Image

from tests.serve.conftest import API_KEY, data_url_of, png_bytes, raw_request

openai = pytest.importorskip("openai")

CAPTION = "[CAP] Describe this image."


def user(url: str | None, text: str) -> dict:
    parts = [{"type": "image_url", "image_url": {"url": url}}] if url else []
    return {"role": "user", "content": [*parts, {"type": "text", "text": text}]}


def pil(raw: bytes) -> Image.Image:
    return Image.open(io.BytesIO(raw)).convert("RGB")


def direct_chat_answer(vlm, messages: list[dict], images: list[Image.Image], max_new_tokens: int) -> tuple[str, int]:
    """transformers alone: the processor's chat template, the model's generate, greedy (no serving code)."""
    text = vlm.processor.apply_chat_template(messages)
    inputs = vlm.processor(images=images or None, text=[text])
    with torch.inference_mode():
        out = vlm.model.generate(
            **inputs, max_new_tokens=max_new_tokens, do_sample=False,
            pad_token_id=vlm.processor.tokenizer.pad_token_id, eos_token_id=vlm.processor.tokenizer.eos_token_id,
        )
    new = out[0, inputs["input_ids"].shape[1] :]
    return vlm.processor.tokenizer.decode(new, skip_special_tokens=True).strip(), int(inputs["input_ids"].shape[1])


def test_chat_completion_with_an_image_equals_the_library(client, tiny_vlm):
    raw = png_bytes(1)
    reply = client.chat.completions.with_raw_response.create(
        model="aerith-tiny", messages=[user(data_url_of(raw), CAPTION)], max_tokens=8
    )
    completion = reply.parse()
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    expected = tiny_vlm.generate(pil(raw), CAPTION, max_new_tokens=8)
    assert completion.choices[0].message.content == expected
    assert completion.choices[0].finish_reason in ("stop", "length")
    n_prompt = len(tiny_vlm.processor(images=[pil(raw)], text=[tiny_vlm.processor.format_prompt(CAPTION)])["input_ids"][0])
    assert completion.usage.prompt_tokens == n_prompt
    assert 1 <= completion.usage.completion_tokens <= 8
    assert completion.usage.total_tokens == n_prompt + completion.usage.completion_tokens
    # the random-weights warning reaches the client: a header on every answer, and /v1/models metadata
    assert "RANDOM weights" in reply.headers["x-aerith-warning"]
    models = client.models.list().data
    assert [m.id for m in models] == ["aerith-tiny"]
    meta = models[0].model_extra["aerith"]
    assert meta["random_weights"] is True and "RANDOM weights" in meta["warning"]


def test_streaming_text_equals_the_non_streamed_text(client):
    for seed, stop in ((2, None), (3, None), (4, "stop-me")):
        messages = [user(data_url_of(png_bytes(seed)), CAPTION)]
        full = client.chat.completions.create(model="aerith-tiny", messages=messages, max_tokens=12, stop=stop)
        chunks = list(
            client.chat.completions.create(
                model="aerith-tiny", messages=messages, max_tokens=12, stop=stop, stream=True,
                stream_options={"include_usage": True},
            )
        )
        assert all(c.object == "chat.completion.chunk" for c in chunks)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == full.choices[0].message.content
        assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2  # really streamed in pieces
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert finish == [full.choices[0].finish_reason]
        assert chunks[-1].usage.completion_tokens == full.usage.completion_tokens


def test_stop_strings_cut_the_answer(client):
    messages = [user(data_url_of(png_bytes(5)), CAPTION)]
    full = client.chat.completions.create(model="aerith-tiny", messages=messages, max_tokens=12).choices[0].message.content
    assert len(full) >= 6, full
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    cut = client.chat.completions.create(model="aerith-tiny", messages=messages, max_tokens=12, stop=[stop])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == full[: full.find(stop)].strip()
    streamed = client.chat.completions.create(model="aerith-tiny", messages=messages, max_tokens=12, stop=[stop], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == cut.choices[0].message.content


def _batch_sizes(server) -> dict[str, float]:
    text = raw_request(server.url, "GET", "/metrics", headers={"authorization": f"Bearer {API_KEY}"}).body.decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r'aerith_batch_size_bucket\{le="([^"]+)"\} (\S+)', text)}


def test_32_concurrent_clients_get_their_sequential_answers(client, server):
    prompts = [CAPTION, "[VQA] Is there a road? Answer with a single word or phrase.", "[VG] Locate: the storage tank", "[CLS] Choose the category that best describes the image from: forest, beach, harbor."]
    images = [data_url_of(png_bytes(10 + i)) for i in range(4)]
    combos = [(img, p) for img in images for p in prompts]  # 16 distinct requests

    def ask(combo, max_tokens=6):
        reply = client.chat.completions.create(model="aerith-tiny", messages=[user(*combo)], max_tokens=max_tokens)
        return reply.choices[0].message.content

    sequential = [ask(c) for c in combos]  # one at a time: batches of one
    before = _batch_sizes(server)

    def one_client(i: int) -> list[tuple[int, str]]:
        return [((4 * i + k) % len(combos), ask(combos[(4 * i + k) % len(combos)])) for k in range(4)]

    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = [a for per_client in pool.map(one_client, range(32)) for a in per_client]
    assert len(answers) == 128
    mismatches = [(i, a, sequential[i]) for i, a in answers if a != sequential[i]]
    assert not mismatches
    after = _batch_sizes(server)
    batches = after["+Inf"] - before["+Inf"]
    single = after["1.0"] - before["1.0"]
    assert batches < 128 and single < batches  # requests really were generated together


def test_multi_turn_history_reaches_the_prompt(client, tiny_vlm):
    raw = png_bytes(20)
    conversation = [
        user(data_url_of(raw), "[VQA] Is there a road? Answer with a single word or phrase."),
        {"role": "assistant", "content": "yes"},
        {"role": "user", "content": "[VQA] How many ships are there? Answer with a single word or phrase."},
    ]
    reply = client.chat.completions.create(model="aerith-tiny", messages=conversation, max_tokens=8)
    hf_messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": conversation[0]["content"][1]["text"]}]},
        {"role": "assistant", "content": [{"type": "text", "text": "yes"}]},
        {"role": "user", "content": [{"type": "text", "text": conversation[2]["content"]}]},
    ]
    prompt = tiny_vlm.processor.apply_chat_template(hf_messages)
    assert prompt == (
        "[INST] <image>\n[VQA] Is there a road? Answer with a single word or phrase. [/INST] yes</s>"
        "<s>[INST] [VQA] How many ships are there? Answer with a single word or phrase. [/INST]"
    )
    expected, n_prompt = direct_chat_answer(tiny_vlm, hf_messages, [pil(raw)], 8)
    assert reply.choices[0].message.content == expected
    assert reply.usage.prompt_tokens == n_prompt
    last_only = client.chat.completions.create(model="aerith-tiny", messages=[conversation[2]], max_tokens=8)
    assert reply.usage.prompt_tokens > last_only.usage.prompt_tokens + 36  # the image and the first turn are in


def test_system_message_and_local_file_under_allow_dir(client, tiny_vlm, allow_dir):
    raw = (allow_dir / "scene.png").read_bytes()
    messages = [{"role": "system", "content": "Answer briefly."}, user(str(allow_dir / "scene.png"), CAPTION)]
    reply = client.chat.completions.create(model="aerith-tiny", messages=messages, max_tokens=6)
    hf = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": CAPTION}]}]
    assert reply.choices[0].message.content == direct_chat_answer(tiny_vlm, hf, [pil(raw)], 6)[0]
    relative = client.chat.completions.create(model="aerith-tiny", messages=[user("scene.png", CAPTION)], max_tokens=6)
    file_url = client.chat.completions.create(model="aerith-tiny", messages=[user((allow_dir / "scene.png").as_uri(), CAPTION)], max_tokens=6)
    assert relative.choices[0].message.content == file_url.choices[0].message.content == tiny_vlm.generate(pil(raw), CAPTION, max_new_tokens=6)


def _post(server, path: str, body: dict) -> dict:
    reply = raw_request(
        server.url, "POST", path, json.dumps(body).encode(),
        {"content-type": "application/json", "authorization": f"Bearer {API_KEY}"},
    )
    assert reply.status == 200, reply.body
    return reply.json()


def test_task_endpoints_answer_a_batch_of_images_as_the_library_does(server, tiny_vlm):
    raws = [png_bytes(30 + i, (40 + 8 * i, 32)) for i in range(3)]
    urls = [data_url_of(r) for r in raws]
    images = [pil(r) for r in raws]
    classes = ["forest", "beach", "harbor"]
    out = _post(server, "/v1/classify", {"images": urls, "classes": classes, "max_tokens": 6})
    texts = tiny_vlm.generate(images, tiny_vlm_prompts(tiny_vlm, "classify", classes, 3), max_new_tokens=6)
    assert [r["text"] for r in out["results"]] == texts
    assert [r["label"] or r["text"] for r in out["results"]] == tiny_vlm.classify(images, classes, max_new_tokens=6)
    assert out["usage"]["completion_tokens"] > 0 and "RANDOM weights" in out["warning"]

    out = _post(server, "/v1/answer", {"images": urls, "questions": ["Is there a road?", "How many ships?", "Is it rural?"], "max_tokens": 6})
    assert [r["answer"] for r in out["results"]] == tiny_vlm.answer(images, ["Is there a road?", "How many ships?", "Is it rural?"], max_new_tokens=6)

    out = _post(server, "/v1/caption", {"image": urls[0], "max_tokens": 6})
    assert [r["caption"] for r in out["results"]] == [tiny_vlm.caption(images[0], max_new_tokens=6)]

    out = _post(server, "/v1/ground", {"images": urls, "expression": "the storage tank", "max_tokens": 12})
    assert [r["boxes"] for r in out["results"]] == [[list(b) for b in boxes] for boxes in tiny_vlm.ground(images, "the storage tank", max_new_tokens=12)]
    assert [r["image_size"] for r in out["results"]] == [[im.width, im.height] for im in images]
    assert all(isinstance(r["text"], str) for r in out["results"])


def tiny_vlm_prompts(vlm, task: str, argument, n: int) -> list[str]:
    from aerith.prompts import classify_prompt

    assert task == "classify"
    return [classify_prompt(argument)] * n


def test_unknown_fields_are_ignored(client):
    reply = client.chat.completions.create(
        model="aerith-tiny", messages=[user(data_url_of(png_bytes(40)), CAPTION)], max_tokens=4,
        frequency_penalty=0.0, user="someone", extra_body={"not_a_field": {"nested": True}},
    )
    assert reply.choices[0].message.content


def test_sampling_with_a_seed_repeats(client):
    messages = [user(data_url_of(png_bytes(41)), CAPTION)]
    a, b = (
        client.chat.completions.create(model="aerith-tiny", messages=messages, max_tokens=8, temperature=1.0, top_p=0.9, seed=3)
        .choices[0].message.content
        for _ in range(2)
    )
    assert a == b


def test_stream_on_the_wire_is_openai_sse_ending_with_done(server):
    body = {"model": "aerith-tiny", "max_tokens": 4, "stream": True, "messages": [user(data_url_of(png_bytes(42)), CAPTION)]}
    reply = raw_request(server.url, "POST", "/v1/chat/completions", json.dumps(body).encode(),
                        {"content-type": "application/json", "authorization": f"Bearer {API_KEY}"})
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/event-stream")
    assert "RANDOM weights" in reply.headers["x-aerith-warning"]
    events = [e for e in reply.body.decode().split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length") and chunks[-1]["choices"][0]["delta"] == {}
    assert len({c["id"] for c in chunks}) == 1


def _idle(server, deadline_s: float = 30.0) -> None:
    import time

    batcher = server.state.service.batcher
    deadline = time.monotonic() + deadline_s
    while (batcher.running or batcher.queue_depth) and time.monotonic() < deadline:
        time.sleep(0.01)


def _leave_mid_answer(server, path: str, body: dict, stream: bool) -> float:
    """Send ``body``, hang up once generation runs (streaming: after two pieces of text); the tokens it generated."""
    import socket
    import time

    raw = json.dumps(body).encode()
    tokens = server.state.metrics.registry.get_sample_value
    before = tokens("aerith_generated_tokens_total")
    with socket.create_connection(("127.0.0.1", server.port)) as conn:
        conn.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
            + f"Authorization: Bearer {API_KEY}\r\nContent-Length: {len(raw)}\r\n\r\n".encode() + raw
        )
        if stream:
            received = b""
            while received.count(b"data: ") < 3:  # the role chunk and two pieces of text
                received += conn.recv(4096)
        else:
            deadline = time.monotonic() + 30
            while not server.state.service.batcher.running and time.monotonic() < deadline:
                time.sleep(0.002)
    _idle(server)
    return tokens("aerith_generated_tokens_total") - before


def test_a_client_that_disconnects_mid_answer_frees_its_batch_slot(server, client):
    n = 200  # min_tokens = max_tokens: without the cancel, every one of them is generated
    chat = {"model": "aerith-tiny", "max_tokens": n, "min_tokens": n, "messages": [user(None, CAPTION)]}
    assert _leave_mid_answer(server, "/v1/chat/completions", {**chat, "stream": True}, stream=True) < n
    assert _leave_mid_answer(server, "/v1/chat/completions", chat, stream=False) < n
    reply = client.chat.completions.create(model="aerith-tiny", messages=[user(None, CAPTION)], max_tokens=2)
    assert reply.choices[0].finish_reason in ("stop", "length")
