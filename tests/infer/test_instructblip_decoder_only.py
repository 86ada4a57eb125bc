"""InstructBLIP with a decoder-only language model (Vicuna-style) behind the facade."""

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import InstructBlipConfig, InstructBlipForConditionalGeneration

from aerith.infer.instructblip import InstructBlipVLM
from aerith.models.instructblip import _tiny_processor, encode_inputs, tiny_instructblip_config


@pytest.fixture(scope="module")
def vicuna_style():
    processor = _tiny_processor()
    tok = processor.tokenizer
    image_token = tok.convert_tokens_to_ids("<image>")
    t5 = tiny_instructblip_config(len(tok), image_token)
    config = InstructBlipConfig(
        vision_config=t5.vision_config.to_dict(),
        qformer_config=t5.qformer_config.to_dict(),
        text_config=dict(
            model_type="llama", vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        ),
        num_query_tokens=t5.num_query_tokens,
        image_token_index=image_token,
    )
    config.training_state = "random-init"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = InstructBlipForConditionalGeneration(config).eval()
        torch.nn.init.normal_(model.query_tokens, std=0.02)
    return InstructBlipVLM(model, processor, name="vicuna-style")


def _images(n):
    return [Image.fromarray(np.random.default_rng(i).integers(0, 255, (20 + 7 * i, 30, 3), dtype=np.uint8)) for i in range(n)]


PROMPTS = ["[CAP] Describe this image in great detail, please.", "[VQA] Any ship?", "[CLS] Choose from: a, b"]


def test_left_padding_puts_the_pads_before_the_image_tokens(vicuna_style):
    vlm = vicuna_style
    inputs = encode_inputs(vlm.processor, vlm.model.config, _images(2), PROMPTS[:2], padding_side="left")
    queries = vlm.model.config.num_query_tokens
    short = inputs["attention_mask"][1]
    pads = int((short == 0).sum())
    assert pads > 0 and (short[:pads] == 0).all() and (short[pads:] == 1).all()
    assert (inputs["input_ids"][1, pads : pads + queries] == vlm.model.config.image_token_index).all()
    alone = encode_inputs(vlm.processor, vlm.model.config, _images(2)[1:], PROMPTS[1:2])
    assert torch.equal(inputs["input_ids"][1, pads:], alone["input_ids"][0])


def test_batched_answers_equal_one_by_one_and_hold_no_prompt(vicuna_style):
    # the batch was right-padded (the shorter prompts' answers followed their padding) and the decoded
    # text began with the prompt, which a decoder-only model's generate returns before the answer
    vlm = vicuna_style
    images = _images(3)
    batched = vlm.generate(images, PROMPTS, batch_size=3, max_new_tokens=6)
    single = [vlm.generate(im, p, max_new_tokens=6) for im, p in zip(images, PROMPTS)]
    assert batched == single
    assert all(a and not a.startswith(p) for a, p in zip(batched, PROMPTS))
