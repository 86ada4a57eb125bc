"""Aerith in transformers' Auto classes and pipeline, and the chat template against the trained format."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

ASSET = Path(__file__).resolve().parents[2] / "aerith" / "assets" / "sample.png"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def saved(tiny_vlm, tmp_path_factory) -> Path:
    return tiny_vlm.save_pretrained(tmp_path_factory.mktemp("hf") / "tiny")


def test_auto_classes_load_a_saved_checkpoint_to_identical_logits(tiny_vlm, saved):
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    from aerith.models.modeling_aerith import AerithForConditionalGeneration
    from aerith.models.processing_aerith import AerithProcessor

    assert json.loads((saved / "config.json").read_text())["architectures"] == ["AerithForConditionalGeneration"]
    assert AutoConfig.from_pretrained(saved).model_type == "aerith"
    model = AutoModelForImageTextToText.from_pretrained(saved).eval()
    processor = AutoProcessor.from_pretrained(saved)
    assert type(model) is AerithForConditionalGeneration and type(processor) is AerithProcessor
    image = Image.open(ASSET)
    text = [processor.format_prompt("[CAP] Describe this image.")]
    ours, theirs = tiny_vlm.processor(images=[image], text=text), processor(images=[image], text=text)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    with torch.inference_mode():
        expected = tiny_vlm.model(**ours).logits
        got = model(**theirs).logits
    assert torch.equal(expected, got)


def test_import_aerith_alone_registers_them_in_a_fresh_interpreter(saved):
    code = (
        "import sys, aerith\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'import aerith stays light'\n"
        "from transformers import AutoModelForImageTextToText, AutoProcessor\n"
        f"m = AutoModelForImageTextToText.from_pretrained({str(saved)!r})\n"
        f"p = AutoProcessor.from_pretrained({str(saved)!r})\n"
        "print(type(m).__name__, type(p).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300,
                         env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["AerithForConditionalGeneration", "AerithProcessor"]


def test_pipeline_answers_a_chat_as_the_library_does(tiny_vlm, saved):
    from transformers import pipeline

    pipe = pipeline("image-text-to-text", model=str(saved))
    image = Image.open(ASSET).convert("RGB")
    messages = [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "[CAP] Describe this image."}]}]
    out = pipe(text=messages, max_new_tokens=6, return_full_text=False)
    assert out[0]["generated_text"] == tiny_vlm.generate(image, "[CAP] Describe this image.", max_new_tokens=6)


def test_chat_template_renders_exactly_the_trained_prompt(tiny_vlm):
    from aerith.train.collate import collate_aerith_sft

    processor = tiny_vlm.processor
    image = Image.open(ASSET)
    for content in (
        [{"type": "image"}, {"type": "text", "text": "[VQA] Is there a road?"}],
        [{"type": "text", "text": "  [VQA] Is there a road? "}, {"type": "image"}],  # images go first, as trained
    ):
        assert processor.apply_chat_template([{"role": "user", "content": content}]) == processor.format_prompt("[VQA] Is there a road?")
    # a conversation is the trained examples of its turns, back to back, token for token
    first = SimpleNamespace(prompt="[VQA] Is there a road?", target="yes", sample=SimpleNamespace(image=image))
    trained = collate_aerith_sft(processor, [first], max_length=512)
    second_prompt = processor.tokenizer("[INST] [VQA] How many ships? [/INST]")["input_ids"]
    conversation = [
        {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "[VQA] Is there a road?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "yes"}]},
        {"role": "user", "content": "[VQA] How many ships?"},
    ]
    ids = processor.apply_chat_template(conversation, tokenize=True, return_dict=True)
    assert ids["input_ids"][0].tolist() == trained["input_ids"][0].tolist() + second_prompt
    assert torch.equal(ids["pixel_values"], trained["pixel_values"])
    for bad in ([{"role": "assistant", "content": "x"}], [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]):
        with pytest.raises(Exception, match="alternate"):
            processor.apply_chat_template(bad)
