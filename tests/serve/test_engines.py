"""The in-process API front ends share (ModelService + Batcher), for both model kinds, without HTTP."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from aerith.serve.engine import GenerationSettings
from aerith.serve.service import ModelService
from tests.serve.conftest import png_bytes


def image(seed: int) -> Image.Image:
    return Image.open(io.BytesIO(png_bytes(seed))).convert("RGB")


@pytest.fixture(scope="module")
def instructblip():
    import aerith

    return aerith.load_vlm("instructblip-tiny", seed=0, device="cpu")


def test_instructblip_is_served_as_its_facade_answers(instructblip):
    service = ModelService(instructblip, name="instructblip-tiny", max_batch=8, window_ms=50).start()
    try:
        images = [image(i) for i in range(3)]
        prompts = ["[CAP] Describe this image.", "[VQA] Is there a road?", "[CAP] Describe this image."]
        expected = [instructblip.generate(im, p, max_new_tokens=6) for im, p in zip(images, prompts)]
        messages = [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": p}]}] for p in prompts]
        prepared = [service.prepare_chat(m, [im]) for m, im in zip(messages, images)]
        futures = service.batcher.submit_many([(p, service.settings_for(p, 6), None) for p in prepared])
        assert [f.result(60).text for f in futures] == expected
        streamed = "".join(service.batcher.stream(prepared[0], service.settings_for(prepared[0], 6)))
        assert streamed == expected[0]
        task = service.prepare_task("classify", images[1], ["forest", "beach"])
        completion = service.batcher.generate(task, service.settings_for(task, 6))
        result = service.parse_task("classify", completion, ["forest", "beach"], images[1].size)
        assert (result["label"] or result["text"]) == instructblip.classify(images[1], ["forest", "beach"], max_new_tokens=6)
        with pytest.raises(ValueError, match="one user message"):
            service.prepare_chat([*messages[0], {"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}], [images[0]])
    finally:
        service.close()


def test_rows_of_one_batch_keep_their_own_lengths(tiny_vlm):
    service = ModelService(tiny_vlm, name="aerith-tiny", max_batch=8, window_ms=100).start()
    try:
        prepared = [service.prepare_task("caption", image(i)) for i in range(3)]
        settings = [GenerationSettings(max_tokens=n, min_tokens=n) for n in (3, 9, 5)]
        futures = service.batcher.submit_many([(p, s, None) for p, s in zip(prepared, settings)])
        completions = [f.result(60) for f in futures]
        assert [c.completion_tokens for c in completions] == [3, 9, 5]
        assert all(c.finish_reason == "length" for c in completions)
        alone = [service.batcher.generate(p, s) for p, s in zip(prepared, settings)]
        assert [c.text for c in completions] == [c.text for c in alone]
    finally:
        service.close()
