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


def serve_chats(service: ModelService, vlm, images: list, prompts: list[str], max_tokens: int):
    """The facade's answers, the service's prepared chats, and the batcher's completions for them (one batch)."""
    expected = [vlm.generate(im, p, max_new_tokens=max_tokens) for im, p in zip(images, prompts)]
    messages = [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": p}]}] for p in prompts]
    prepared = [service.prepare_chat(m, [im]) for m, im in zip(messages, images)]
    futures = service.batcher.submit_many([(p, service.settings_for(p, max_tokens), None) for p in prepared])
    return expected, prepared, [f.result(60) for f in futures]


@pytest.fixture(scope="module")
def instructblip():
    import aerith

    return aerith.load_vlm("instructblip-tiny", seed=0, device="cpu")


def test_instructblip_is_served_as_its_facade_answers(instructblip):
    service = ModelService(instructblip, name="instructblip-tiny", max_batch=8, window_ms=50).start()
    try:
        images = [image(i) for i in range(3)]
        prompts = ["[CAP] Describe this image.", "[VQA] Is there a road?", "[CAP] Describe this image."]
        expected, prepared, completions = serve_chats(service, instructblip, images, prompts, 6)
        assert [c.text for c in completions] == expected
        streamed = "".join(service.batcher.stream(prepared[0], service.settings_for(prepared[0], 6)))
        assert streamed == expected[0]
        task = service.prepare_task("classify", images[1], ["forest", "beach"])
        completion = service.batcher.generate(task, service.settings_for(task, 6))
        result = service.parse_task("classify", completion, ["forest", "beach"], images[1].size)
        assert (result["label"] or result["text"]) == instructblip.classify(images[1], ["forest", "beach"], max_new_tokens=6)
        first = {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompts[0]}]}
        with pytest.raises(ValueError, match="one user message"):
            service.prepare_chat([first, {"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}], [images[0]])
        service.check_image_count(1)
        with pytest.raises(ValueError, match="exactly one image per request, got 2"):  # refused before the images are decoded
            service.check_image_count(2)
    finally:
        service.close()


def test_instructblip_requests_are_bounded_before_they_reach_a_batch(instructblip):
    from aerith.serve.engine import SettingError

    service = ModelService(instructblip, name="instructblip-tiny")  # not started: nothing is generated here
    assert service.describe()["context_length"] == 512  # T5: relative positions, trained on 512 tokens
    prepared = service.prepare_task("caption", image(0))
    with pytest.raises(SettingError, match="exceed the model's context of 512") as bound:
        service.settings_for(prepared, 10**9)
    assert bound.value.field == "max_tokens"
    # the Q-Former reads the prompt too: over its positions the facade refuses it, and so does the server
    limit = instructblip.model.config.qformer_config.max_position_embeddings
    with pytest.raises(ValueError, match=f"Q-Former's {limit} positions"):
        instructblip.generate(image(0), "word " * 400, max_new_tokens=2)
    with pytest.raises(SettingError, match=f"of the Q-Former's {limit} positions"):
        service.prepare_task("answer", image(0), "word " * 400)


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


def test_a_box_head_answers_grounding_requests_as_the_facade_does():
    from aerith.infer.vlm import AerithVLM
    from aerith.models.build import build_from_preset

    model, processor = build_from_preset("aerith-tiny", seed=0, overrides={"box_head": True})
    vlm = AerithVLM(model.eval(), processor, name="tiny-box-head")
    service = ModelService(vlm, name="tiny-box-head", max_batch=8, window_ms=100).start()
    try:
        images = [image(i) for i in range(3)]
        prompts = ["[VG] Locate: the red car", "[CAP] Describe this image.", "[VG] Locate: the tree on the left"]
        expected, prepared, completions = serve_chats(service, vlm, images, prompts, 12)
        assert [p.grounding for p in prepared] == [True, False, True]
        assert [c.text for c in completions] == expected
        assert completions[0].finish_reason == "stop" and completions[0].text.startswith("[")
        streamed = "".join(service.batcher.stream(prepared[2], service.settings_for(prepared[2], 12)))
        assert streamed == expected[2]
        # the row's own limits still hold: two tokens of the box, then "length"
        short = service.batcher.generate(prepared[0], GenerationSettings(max_tokens=2))
        assert short.finish_reason == "length" and short.completion_tokens == 2 and expected[0].startswith(short.text)
        task = service.prepare_task("ground", images[0], "the red car")
        result = service.parse_task("ground", service.batcher.generate(task, service.settings_for(task, 12)), "the red car", images[0].size)
        assert [list(b) for b in result["boxes"]] == [list(b) for b in vlm.ground(images[0], "the red car")]
    finally:
        service.close()


from tests.infer.test_instructblip_decoder_only import vicuna_style  # noqa: E402,F401 - a fixture


def test_a_decoder_only_instructblip_is_served_as_its_facade_answers_one_by_one(vicuna_style):  # noqa: F811
    # right-padded batches made the shorter prompts' answers follow their padding
    service = ModelService(vicuna_style, name="vicuna-style", max_batch=8, window_ms=50).start()
    try:
        images = [image(i) for i in range(3)]
        prompts = ["[CAP] Describe this image in great detail, please.", "[VQA] Any ship?", "[CLS] Choose from: a, b"]
        expected, _, completions = serve_chats(service, vicuna_style, images, prompts, 6)
        assert [c.text for c in completions] == expected
    finally:
        service.close()
