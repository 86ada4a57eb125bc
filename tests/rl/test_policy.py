import numpy as np
import pytest
import torch
from PIL import Image

from aerith.infer.vlm import AerithVLM
from aerith.rl.policy import (
    BadEndingLogitsProcessor,
    bad_ending_token_ids,
    generation_mask,
    loo_baseline,
    sample_captions,
    scst_loss,
    sequence_logprobs,
)


@pytest.fixture(scope="module")
def tiny():
    return AerithVLM.from_preset("aerith-tiny", seed=0, device="cpu")


def _prompts(vlm, n):
    images = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8)) for i in range(n)]
    texts = [vlm.processor.format_prompt("[CAP] Describe this image.")] * n
    return vlm.processor(images=images, text=texts, padding_side="left")


def test_generation_mask_keeps_first_eos():
    ids = torch.tensor([[5, 6, 2, 7, 2], [5, 5, 5, 5, 5]])
    assert generation_mask(ids, eos_token_id=2).tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]


def test_loo_baseline_and_loss():
    rewards = torch.tensor([1.0, 2.0, 3.0, 0.0, 0.0, 6.0])
    assert loo_baseline(rewards, k=3).tolist() == [2.5, 2.0, 1.5, 3.0, 3.0, 0.0]
    with pytest.raises(ValueError):
        loo_baseline(rewards, k=1)
    logp = torch.tensor([[-1.0, -2.0, -5.0], [-1.0, -1.0, -1.0]], requires_grad=True)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    loss = scst_loss(logp, mask, torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0]))
    # -(1*(-1-2) + (-1)*(-1)) / 3 tokens; the masked -5 does not count
    assert loss.item() == pytest.approx(-(-3.0 + 1.0) / 3)
    loss.backward()
    assert logp.grad[0, 2] == 0 and logp.grad[0, 0] < 0 and logp.grad[1, 0] > 0


def test_bad_ending_processor_blocks_eos_after_bad_token():
    proc = BadEndingLogitsProcessor([7], eos_token_id=2)
    scores = torch.zeros(2, 10)
    out = proc(torch.tensor([[1, 7], [1, 8]]), scores)
    assert out[0, 2] == float("-inf") and out[1, 2] == 0


def test_bad_ending_ids_found_in_tiny_tokenizer(tiny):
    ids = bad_ending_token_ids(tiny.processor.tokenizer)
    assert tiny.processor.tokenizer(" the", add_special_tokens=False)["input_ids"][0] in ids


def test_shared_features_match_re_encoding_and_teacher_forcing(tiny):
    model, tok = tiny.model, tiny.processor.tokenizer
    inputs = _prompts(tiny, 2)
    feats = model.get_image_features(inputs["pixel_values"], inputs["dino_pixel_values"])
    kwargs = dict(k=3, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, max_new_tokens=8)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        shared = sample_captions(model, inputs["input_ids"], inputs["attention_mask"], feats, **kwargs)
    # the same draw, encoding every sample's image again
    with torch.random.fork_rng():
        torch.manual_seed(0)
        ids = inputs["input_ids"].repeat_interleave(3, 0)
        out = model.generate(
            input_ids=ids,
            attention_mask=inputs["attention_mask"].repeat_interleave(3, 0),
            pixel_values=inputs["pixel_values"].repeat_interleave(3, 0),
            dino_pixel_values=inputs["dino_pixel_values"].repeat_interleave(3, 0),
            max_new_tokens=8, do_sample=True, temperature=1.0, top_k=0, top_p=1.0, no_repeat_ngram_size=3,
            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        )
    assert torch.equal(shared.sample_ids, out[:, ids.shape[1]:])
    assert shared.sample_ids.shape[0] == 6 and feats.shape[0] == 2

    # teacher-forced log-probs equal the greedy decoder's raw logits (the processed
    # `scores` renormalise over the tokens that trigram blocking leaves)
    greedy = sample_captions(model, inputs["input_ids"], inputs["attention_mask"], feats, **{**kwargs, "k": 1}, do_sample=False)
    logp = sequence_logprobs(model, greedy)
    with torch.no_grad():
        gen = model.generate(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], image_features=feats,
            max_new_tokens=8, do_sample=False, no_repeat_ngram_size=3, output_logits=True, return_dict_in_generate=True,
            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        )
    ref = torch.stack([torch.log_softmax(s.float(), -1) for s in gen.logits], 1)
    ref = ref.gather(-1, greedy.sample_ids[:, : ref.shape[1]].unsqueeze(-1)).squeeze(-1) * greedy.sample_mask[:, : ref.shape[1]]
    finite = torch.isfinite(ref)
    torch.testing.assert_close(logp[:, : ref.shape[1]][finite], ref[finite], atol=1e-4, rtol=1e-4)
