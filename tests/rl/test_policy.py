import numpy as np
import pytest
import torch
from PIL import Image

from aerith.infer.vlm import AerithVLM
from aerith.rl.policy import (
    BadEndingLogitsProcessor,
    BanTokensLogitsProcessor,
    CausalPolicy,
    NoRepeatTrigramLogitsProcessor,
    bad_ending_token_ids,
    generation_mask,
    images_without_signal,
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


def test_loo_baseline_gives_tied_rewards_exactly_zero_advantage():
    """(sum - r) / (k - 1) rounds: k = 3 samples all rewarded 0.7 got advantages of +6e-8 each, and AdamW's first step
    moved the weights by 0.96 lr towards samples no better than their siblings."""
    rewards = (torch.rand(200, generator=torch.Generator().manual_seed(0)) * 3).tolist() + [0.7, 0.1, 1 / 3]
    for k in (2, 3, 4, 5, 7, 8, 16):
        tied = torch.tensor(rewards, dtype=torch.float32).repeat_interleave(k)
        assert bool((tied - loo_baseline(tied, k) == 0).all()), k
    mixed = torch.tensor([0.7, 0.7, 0.1, 2.0, 2.0, 2.0])
    expected = torch.tensor([0.4, 0.4, 0.7, 2.0, 2.0, 2.0])  # each sample: the mean of its image's other samples
    torch.testing.assert_close(loo_baseline(mixed, 3), expected)


def test_images_without_signal_counts_images_whose_samples_all_tie():
    rewards = torch.tensor([0.7, 0.7, 0.7, 0.1, 0.5, 0.5, 2.0, 2.0, 2.0])
    assert images_without_signal(rewards - loo_baseline(rewards, 3), 3) == 2
    greedy = torch.tensor([0.7, 0.5, 1.0]).repeat_interleave(3)  # the greedy baseline: ties with the greedy caption
    assert images_without_signal(rewards - greedy, 3) == 1  # the first: every sample scored as the greedy one
    assert images_without_signal(torch.zeros(6), 2) == 3


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


def test_processors_leave_the_logits_they_are_given():
    """generate reports its unprocessed logits (output_logits) from the tensor it hands the processors."""
    ids = torch.tensor([[7, 8, 7, 8], [1, 7, 7, 7]])
    for proc in (BadEndingLogitsProcessor([8], eos_token_id=2), NoRepeatTrigramLogitsProcessor(0), BanTokensLogitsProcessor([3])):
        scores = torch.zeros(2, 10)
        assert torch.isinf(proc(ids, scores)).any() and not torch.isinf(scores).any(), type(proc).__name__


def _peak_with_likely_ending(model, policy, inputs, feats, tok) -> None:
    """Peaked distributions (the head x 20), with the end-of-sequence as likely as the commonest greedy token."""
    with torch.no_grad():
        head = model.language_model.lm_head.weight
        head.mul_(20)
        greedy, _ = policy.sample(inputs, feats, k=1, do_sample=False, max_new_tokens=6)
        head[tok.eos_token_id] = head[torch.mode(greedy.flatten()).values]


def test_teacher_forced_logprobs_are_the_models_at_the_sampling_temperature(tiny):
    """Token by token, first token and end-of-sequence included, prompts of three lengths left-padded together:
    the loss's log-probabilities are log_softmax(logits / T) of the logits the sampler saw; the sampler's own
    (renormalised over what blocking left) are never lower, and equal where blocking removed nothing."""
    import copy

    model, tok = copy.deepcopy(tiny.model).eval(), tiny.processor.tokenizer
    policy = CausalPolicy(model, tok)
    images = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8)) for i in range(3)]
    prompts = ["[CAP] Describe this image.", "[CAP] Describe this image in great detail now please.", "[CAP] Hi."]
    inputs = tiny.processor(images=images, text=[tiny.processor.format_prompt(p) for p in prompts], padding_side="left")
    assert len(set(inputs["attention_mask"].sum(1).tolist())) == 3
    feats = policy.encode(inputs)
    _peak_with_likely_ending(model, policy, inputs, feats, tok)
    k, temperature = 4, 0.7
    kwargs = dict(k=k, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, max_new_tokens=12, temperature=temperature,
                  bad_ending_ids=bad_ending_token_ids(tok), banned_ids=policy.banned_ids)  # fmt: skip
    with torch.random.fork_rng():
        torch.manual_seed(1)
        batch = sample_captions(model, inputs["input_ids"], inputs["attention_mask"], feats, **kwargs)
    # the same draw, keeping what generate saw: its raw logits and the processed scores it sampled from
    processors = [BanTokensLogitsProcessor(policy.banned_ids), NoRepeatTrigramLogitsProcessor(batch.prompt_ids.shape[1]),
                  BadEndingLogitsProcessor(kwargs["bad_ending_ids"], tok.eos_token_id)]  # fmt: skip
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(1)
        gen = model.generate(
            input_ids=batch.prompt_ids, attention_mask=batch.prompt_mask, image_features=feats.repeat_interleave(k, 0),
            max_new_tokens=12, do_sample=True, temperature=temperature, top_k=0, top_p=1.0, logits_processor=processors,
            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, return_dict_in_generate=True, output_logits=True,
            output_scores=True,
        )  # fmt: skip
    assert torch.equal(gen.sequences[:, batch.prompt_ids.shape[1] :], batch.sample_ids)
    ids, mask = batch.sample_ids, batch.sample_mask.bool()
    ends = (ids == tok.eos_token_id) & mask
    assert ends[:, 0].any() and ends[:, 1:].any() and (~mask).any()  # captions ending at once, later, and padding

    def picked(steps, scale=1.0):
        return torch.stack([torch.log_softmax(x.float() / scale, -1) for x in steps], 1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)

    with torch.no_grad():
        logprobs = sequence_logprobs(model, batch, temperature)
    model_lp, sampler_lp = picked(gen.logits, temperature), picked(gen.scores)
    torch.testing.assert_close(logprobs[mask], model_lp[mask], atol=1e-4, rtol=1e-4)
    assert bool((logprobs[~mask] == 0).all())
    assert bool((sampler_lp[mask] >= logprobs[mask] - 1e-4).all())
    blocked = torch.stack([torch.isinf(x).sum(-1) > len(policy.banned_ids) for x in gen.scores], 1)
    assert (blocked & mask).any() and (~blocked & mask).any()
    torch.testing.assert_close(sampler_lp[~blocked & mask], logprobs[~blocked & mask], atol=1e-3, rtol=0)
    # each image's captions score the same alone (no left padding)
    for i in range(3):
        alone = tiny.processor(images=[images[i]], text=[tiny.processor.format_prompt(prompts[i])])
        with torch.no_grad():
            single = policy.logprobs(alone, policy.encode(alone), ids[i * k : (i + 1) * k], batch.sample_mask[i * k : (i + 1) * k], k, temperature)
        torch.testing.assert_close(single, logprobs[i * k : (i + 1) * k], atol=1e-4, rtol=1e-4)


def test_seq2seq_policy_refuses_a_decoder_only_instructblip():
    """InstructBLIP-Vicuna loads like any InstructBLIP; its SCST was an AttributeError (no decoder start token)."""
    from types import SimpleNamespace

    from transformers import InstructBlipConfig, InstructBlipForConditionalGeneration

    from aerith.models.instructblip import tiny_instructblip_config
    from aerith.rl.policy import Seq2SeqPolicy

    tiny = tiny_instructblip_config(64, 4)
    text = dict(model_type="llama", vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                num_attention_heads=2, num_key_value_heads=2, pad_token_id=0, eos_token_id=2)  # fmt: skip
    config = InstructBlipConfig(
        vision_config=tiny.vision_config.to_dict(), qformer_config=tiny.qformer_config.to_dict(), text_config=text,
        num_query_tokens=tiny.num_query_tokens, image_token_index=4,
    )  # fmt: skip
    model = InstructBlipForConditionalGeneration(config)
    with pytest.raises(ValueError, match="needs an encoder-decoder .T5. language model; this model's is decoder-only .llama"):
        Seq2SeqPolicy(model, SimpleNamespace(eos_token_id=2, pad_token_id=0))


def test_decoder_only_instructblip_policy_scores_its_samples_at_the_sampling_temperature():
    """InstructBLIP-Vicuna's SCST (Seq2SeqPolicy refused it): one encoding per image shared by its k samples, the
    draw that the model's own generate makes from left-padded prompts of three lengths, and teacher-forced
    log-probabilities equal to log_softmax(logits / T) of the sampled tokens (0 after the first end), alone or batched."""
    import copy

    from aerith.infer.load import load_vlm
    from aerith.models.instructblip import encode_inputs
    from aerith.rl.policy import DecoderOnlyInstructBlipPolicy, caption_processors, instructblip_policy

    vlm = load_vlm("instructblip-vicuna-tiny")
    model, tok = copy.deepcopy(vlm.model).eval(), vlm.processor.tokenizer
    policy = instructblip_policy(model, tok)
    assert isinstance(policy, DecoderOnlyInstructBlipPolicy)
    images = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8)) for i in range(3)]
    prompts = ["[CAP] Describe this image.", "[CAP] Describe this image in great detail now please.", "[CAP] Hi."]
    inputs = encode_inputs(vlm.processor, model.config, images, prompts, padding_side="left")
    assert len(set(inputs["attention_mask"].sum(1).tolist())) == 3
    feats = policy.encode(inputs)
    _peak_with_likely_ending(model, policy, inputs, feats, tok)
    k, temperature, bad = 4, 0.7, bad_ending_token_ids(tok)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        ids, mask = policy.sample(inputs, feats, k=k, temperature=temperature, max_new_tokens=12, bad_ending_ids=bad)
    prompt_length = inputs["input_ids"].shape[1]
    with torch.random.fork_rng(), torch.no_grad():  # the model's generate, encoding every sample's image again
        torch.manual_seed(1)
        gen = model.generate(
            **{n: v.repeat_interleave(k, 0) for n, v in inputs.items()}, max_new_tokens=12, do_sample=True,
            temperature=temperature, top_k=0, top_p=1.0,
            logits_processor=caption_processors(prompt_length, tok.eos_token_id, True, bad, policy.banned_ids),
            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, return_dict_in_generate=True, output_logits=True,
        )  # fmt: skip
    assert torch.equal(gen.sequences[:, prompt_length:], ids) and feats.shape[0] == 3
    m = mask.bool()
    ends = (ids == tok.eos_token_id) & m
    assert ends[:, 0].any() and ends[:, 1:].any() and (~m).any()  # captions ending at once, later, and padding
    with torch.no_grad():
        logprobs = policy.logprobs(inputs, feats, ids, mask, k, temperature)
    expected = torch.stack([torch.log_softmax(x.float() / temperature, -1) for x in gen.logits], 1)
    expected = expected.gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(logprobs[m], expected[m], atol=1e-4, rtol=1e-4)
    assert bool((logprobs[~m] == 0).all())
    for i in range(3):  # each image's captions score the same alone (no left padding)
        alone = encode_inputs(vlm.processor, model.config, [images[i]], [prompts[i]], padding_side="left")
        with torch.no_grad():
            single = policy.logprobs(alone, policy.encode(alone), ids[i * k : (i + 1) * k], mask[i * k : (i + 1) * k], k, temperature)
        torch.testing.assert_close(single, logprobs[i * k : (i + 1) * k], atol=1e-4, rtol=1e-4)


def test_decoder_only_instructblip_scst_steps_train_the_qformer():
    """Two SCST steps through the stage's collate, policy choice and objective: finite loss, gradients that reach
    the Q-Former through the shared encoding, no dropout in the loss pass (KL to the unchanged start is 0)."""
    import copy
    from types import SimpleNamespace

    from aerith.train.backbones import load_backbone
    from aerith.train.scst import POLICIES, SCSTObjective, collate_scst

    class LengthReward:
        def terms(self, texts, references):
            from aerith.rl.rewards import REWARDS

            return {**{t: [0.0] * len(texts) for t in REWARDS}, "total": [float(len(t)) for t in texts]}

    backbone = load_backbone("instructblip-vicuna-tiny")
    start = copy.deepcopy(backbone.model).requires_grad_(False).eval()
    backbone.set_trainable(["qformer", "query_tokens", "language_projection"])
    tok = backbone.processor.tokenizer
    settings = SimpleNamespace(k=3, temperature=1.0, max_new_tokens=6, baseline="loo", block_trigrams=True, bad_endings=True, kl=1.0)
    objective = SCSTObjective(
        backbone.model, POLICIES["instructblip"](backbone.model, tok), LengthReward(), settings, POLICIES["instructblip"](start, tok)
    )
    rng = np.random.default_rng(0)
    samples = [SimpleNamespace(image=Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)), task="cap", targets=("a road",))
               for _ in range(2)]  # fmt: skip
    batch = collate_scst(backbone, samples, 512)
    optimizer = torch.optim.SGD([p for p in backbone.model.parameters() if p.requires_grad], lr=1e-2)
    torch.manual_seed(0)
    for step in range(2):
        backbone.train_mode()  # as the loop leaves it: the Q-Former holds dropout
        prepared = objective.prepare(batch)
        assert prepared["sample_ids"].shape[0] == 6
        loss = objective(prepared)
        assert torch.isfinite(loss)
        loss.backward()
        stats = objective.pop_stats()
        if step == 0:
            assert stats["kl"] < 1e-6
            assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in backbone.model.qformer.parameters() if p.requires_grad)
            assert backbone.model.query_tokens.grad.abs().sum() > 0
        optimizer.step()
        optimizer.zero_grad()
