"""The pieces of self-critical sequence training (Rennie et al. 2017) that touch the model.

One SCST step for a batch of images:

1. encode each image once (:meth:`get_image_features`) and share the features
   across its ``k`` samples;
2. sample ``k`` captions per image autoregressively (KV cache, temperature,
   repeated-trigram and bad-ending blocking);
3. recompute the samples' log-probabilities in one teacher-forced pass, with
   everything after the first end-of-sequence masked;
4. weight them by reward minus baseline: the leave-one-out mean of the other
   samples of the same image (Luo 2020, default) or the greedy caption's reward.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import LogitsProcessor, LogitsProcessorList

BASELINES = ("loo", "greedy")
# Words a caption should not end on ("a large building next to the").
BAD_ENDINGS = ("a", "an", "the", "of", "and", "with", "to", "in", "on", "at", "by", "next", "near", "some")


class BadEndingLogitsProcessor(LogitsProcessor):
    """Forbid end-of-sequence right after a token that cannot end a caption."""

    def __init__(self, bad_token_ids: Sequence[int], eos_token_id: int) -> None:
        self.bad = torch.tensor(sorted(set(bad_token_ids)), dtype=torch.long)
        self.eos = eos_token_id

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.bad.numel() == 0:
            return scores
        last_is_bad = torch.isin(input_ids[:, -1], self.bad.to(input_ids.device))
        scores[last_is_bad, self.eos] = float("-inf")
        return scores


def bad_ending_token_ids(tokenizer, words: Sequence[str] = BAD_ENDINGS) -> list[int]:
    """Ids of the single-token spellings (with and without a leading space) of ``words``."""
    ids = set()
    for word in words:
        for text in (word, " " + word):
            tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(tokens) == 1:
                ids.add(tokens[0])
    return sorted(ids)


@dataclass
class SampledBatch:
    """``k`` samples per image, flattened image-major: rows ``i*k .. i*k+k-1`` belong to image ``i``.

    Attributes:
        prompt_ids: ``(B*k, P)`` left-padded prompt ids; prompt_mask its attention mask.
        sample_ids: ``(B*k, L)`` generated ids (padding after the end).
        sample_mask: ``(B*k, L)`` 1 for generated tokens up to and including the first EOS.
        image_features: ``(B, Q, H)`` one encoding per image.
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    sample_ids: torch.Tensor
    sample_mask: torch.Tensor
    image_features: torch.Tensor
    k: int


def generation_mask(sample_ids: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """1 for each generated token up to and including the first EOS, 0 after it."""
    is_eos = (sample_ids == eos_token_id).long()
    after_eos = (is_eos.cumsum(dim=1) - is_eos) > 0
    return (~after_eos).long()


@torch.no_grad()
def sample_captions(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    image_features: torch.Tensor,
    *,
    k: int,
    eos_token_id: int,
    pad_token_id: int,
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    do_sample: bool = True,
    block_trigrams: bool = True,
    bad_ending_ids: Sequence[int] = (),
) -> SampledBatch:
    """Sample ``k`` continuations per prompt from shared image features (one encoding per image).

    Args:
        input_ids / attention_mask: ``(B, P)`` left-padded prompts, each with its image tokens.
        image_features: ``(B, Q, H)`` from ``model.get_image_features``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    ids = input_ids.repeat_interleave(k, dim=0)
    mask = attention_mask.repeat_interleave(k, dim=0)
    feats = image_features.repeat_interleave(k, dim=0)
    processors = LogitsProcessorList()
    if bad_ending_ids:
        processors.append(BadEndingLogitsProcessor(bad_ending_ids, eos_token_id))
    out = model.generate(
        input_ids=ids,
        attention_mask=mask,
        image_features=feats,
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        temperature=temperature if do_sample else None,
        top_k=0 if do_sample else None,
        top_p=1.0 if do_sample else None,
        no_repeat_ngram_size=3 if block_trigrams else 0,
        logits_processor=processors,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
    )
    samples = out[:, ids.shape[1] :]
    return SampledBatch(ids, mask, samples, generation_mask(samples, eos_token_id), image_features, k)


def sequence_logprobs(model, batch: SampledBatch) -> torch.Tensor:
    """Per-token log-probabilities ``(B*k, L)`` of the samples, in one teacher-forced pass (masked to 0)."""
    ids = torch.cat([batch.prompt_ids, batch.sample_ids], dim=1)
    mask = torch.cat([batch.prompt_mask, batch.sample_mask], dim=1)
    feats = batch.image_features.repeat_interleave(batch.k, dim=0)
    # positions follow the attention mask, so left padding does not shift them
    position_ids = (mask.cumsum(1) - 1).clamp(min=0)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=position_ids, image_features=feats).logits
    length = batch.sample_ids.shape[1]
    logits = logits[:, -length - 1 : -1].float()
    logprobs = torch.log_softmax(logits, dim=-1).gather(-1, batch.sample_ids.unsqueeze(-1)).squeeze(-1)
    return logprobs * batch.sample_mask


def loo_baseline(rewards: torch.Tensor, k: int) -> torch.Tensor:
    """Leave-one-out baseline: for each sample, the mean reward of the other ``k-1`` samples of its image."""
    if k < 2:
        raise ValueError("the leave-one-out baseline needs k >= 2 samples per image")
    grouped = rewards.view(-1, k)
    return ((grouped.sum(dim=1, keepdim=True) - grouped) / (k - 1)).reshape(-1)


def scst_loss(
    token_logprobs: torch.Tensor, sample_mask: torch.Tensor, rewards: torch.Tensor, baseline: torch.Tensor
) -> torch.Tensor:
    """Policy-gradient loss, token mean: ``-sum((r - b) * log p(token)) / #tokens``.

    Args:
        token_logprobs / sample_mask: ``(N, L)``.
        rewards / baseline: ``(N,)``; the advantage carries no gradient.
    """
    advantage = (rewards - baseline).detach().to(token_logprobs.dtype).unsqueeze(1)
    tokens = sample_mask.sum().clamp(min=1)
    return -(advantage * token_logprobs * sample_mask).sum() / tokens
