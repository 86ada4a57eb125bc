"""The SCST policy: the pieces of self-critical sequence training (Rennie et al. 2017) that touch the model.

One SCST step for a batch of images:

1. encode each image once (:meth:`get_image_features`) and share the features
   across its ``k`` samples;
2. sample ``k`` captions per image autoregressively (KV cache, temperature,
   repeated-trigram blocking within the caption, bad-ending blocking);
3. recompute the samples' log-probabilities in one teacher-forced pass, with
   everything after the first end-of-sequence masked: the model's own at the sampling
   temperature, over the whole vocabulary (see :func:`sequence_logprobs` for how they
   differ from those of the blocked sampler);
4. weight them by reward minus baseline: the leave-one-out mean of the other
   samples of the same image (Luo 2020, default) or the greedy caption's reward.

:class:`CausalPolicy` (AerithVLM), :class:`Seq2SeqPolicy` (InstructBLIP-T5) and
:class:`DecoderOnlyInstructBlipPolicy` (InstructBLIP-Vicuna) put steps 1-3 behind one
interface (``encode``, ``sample``, ``logprobs``); the training stage
(:mod:`aerith.train.scst`) picks the one of its backbone (:func:`instructblip_policy`
chooses between the two InstructBLIP ones).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import LogitsProcessor, LogitsProcessorList
from transformers.modeling_outputs import BaseModelOutput

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
        scores = scores.clone()  # not in place: generate reports the unprocessed logits (output_logits) from it
        scores[last_is_bad, self.eos] = float("-inf")
        return scores


class NoRepeatTrigramLogitsProcessor(LogitsProcessor):
    """Forbid a token that would repeat a trigram of the *generated* text (the prompt is ignored).

    transformers' ``no_repeat_ngram_size=3`` also scans the prompt, in a Python loop per
    row and step (about 7x slower sampling on the tiny model); this one looks only at
    what follows ``prompt_length`` and runs as a few tensor operations per step.
    """

    def __init__(self, prompt_length: int) -> None:
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids[:, self.prompt_length :]
        if generated.shape[1] < 3:
            return scores
        first, second = generated[:, -2:-1], generated[:, -1:]
        # earlier positions i whose bigram (i, i+1) equals the last one: token i+2 would repeat a trigram
        seen = (generated[:, :-2] == first) & (generated[:, 1:-1] == second)
        rows, cols = seen.nonzero(as_tuple=True)
        scores = scores.clone()  # not in place (see BadEndingLogitsProcessor)
        scores[rows, generated[rows, cols + 2]] = float("-inf")
        return scores


class BanTokensLogitsProcessor(LogitsProcessor):
    """Never sample these ids (image placeholder, padding): they cannot be part of a caption."""

    def __init__(self, token_ids: Sequence[int]) -> None:
        self.ids = torch.tensor(sorted(set(token_ids)), dtype=torch.long)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = scores.clone()  # not in place (see BadEndingLogitsProcessor)
        scores[:, self.ids.to(scores.device)] = float("-inf")
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


def caption_processors(
    prompt_length: int, eos_token_id: int, block_trigrams: bool, bad_ending_ids: Sequence[int], banned_ids: Sequence[int]
) -> LogitsProcessorList:
    """The sampler's blocking, in order: banned ids, repeated trigrams after ``prompt_length``, bad endings."""
    processors = LogitsProcessorList()
    if banned_ids:
        processors.append(BanTokensLogitsProcessor(banned_ids))
    if block_trigrams:
        processors.append(NoRepeatTrigramLogitsProcessor(prompt_length))
    if bad_ending_ids:
        processors.append(BadEndingLogitsProcessor(bad_ending_ids, eos_token_id))
    return processors


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
    banned_ids: Sequence[int] = (),
) -> SampledBatch:
    """Sample ``k`` continuations per prompt from shared image features (one encoding per image).

    Args:
        input_ids / attention_mask: ``(B, P)`` left-padded prompts, each with its image tokens.
        image_features: ``(B, Q, H)`` from ``model.get_image_features``.
        banned_ids: ids never sampled (the policies ban the image token and padding).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    ids = input_ids.repeat_interleave(k, dim=0)
    mask = attention_mask.repeat_interleave(k, dim=0)
    feats = image_features.repeat_interleave(k, dim=0)
    processors = caption_processors(ids.shape[1], eos_token_id, block_trigrams, bad_ending_ids, banned_ids)
    out = model.generate(
        input_ids=ids,
        attention_mask=mask,
        image_features=feats,
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        temperature=temperature if do_sample else None,
        top_k=0 if do_sample else None,
        top_p=1.0 if do_sample else None,
        logits_processor=processors,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
    )
    samples = out[:, ids.shape[1] :]
    return SampledBatch(ids, mask, samples, generation_mask(samples, eos_token_id), image_features, k)


def sequence_logprobs(model, batch: SampledBatch, temperature: float = 1.0) -> torch.Tensor:
    """Per-token log-probabilities ``(B*k, L)`` of the samples, in one teacher-forced pass (masked to 0).

    They are ``log_softmax(logits / temperature)`` over the whole vocabulary, with ``temperature`` that of
    the sampling. The sampler drew from that distribution renormalised over the tokens its processors
    left (banned ids, repeated trigrams, bad endings), so where blocking removed probability mass its
    log-probability of the token is higher by ``-log(kept mass)``; elsewhere the two agree (to the
    negligible mass of the banned ids). The loss thus takes the gradient of the model's own distribution,
    not of the blocked sampler's.
    """
    ids = torch.cat([batch.prompt_ids, batch.sample_ids], dim=1)
    mask = torch.cat([batch.prompt_mask, batch.sample_mask], dim=1)
    feats = batch.image_features.repeat_interleave(batch.k, dim=0)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=_positions(mask), image_features=feats).logits
    return _sample_logprobs(logits[:, -batch.sample_ids.shape[1] - 1 : -1], batch.sample_ids, batch.sample_mask, temperature)


def _positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that follow the attention mask, so that left padding does not shift them."""
    return (mask.cumsum(1) - 1).clamp(min=0)


def _sample_logprobs(
    logits: torch.Tensor, sample_ids: torch.Tensor, sample_mask: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``log_softmax(logits / temperature)`` of the sampled tokens ``(B*k, L)``, 0 where masked.

    ``logits (B*k, L, V)`` are those that predict each sampled token.
    """
    logprobs = torch.log_softmax(logits.float() / temperature, dim=-1).gather(-1, sample_ids.unsqueeze(-1)).squeeze(-1)
    return logprobs * sample_mask


def loo_baseline(rewards: torch.Tensor, k: int) -> torch.Tensor:
    """Leave-one-out baseline: for each sample, the mean reward of the other ``k-1`` samples of its image.

    Computed as ``r_i - mean_j (r_i - r_j)`` over the other samples ``j``, so that samples whose rewards tie
    get exactly their own reward as the baseline (advantage 0). ``(sum - r_i) / (k - 1)`` rounds: tied rewards
    such as 0.7 then left advantages of about 1e-7 of one sign, which Adam's normalised first step turned
    into a full-size update towards the samples.
    """
    if k < 2:
        raise ValueError("the leave-one-out baseline needs k >= 2 samples per image")
    grouped = rewards.view(-1, k)
    advantage = (grouped.unsqueeze(2) - grouped.unsqueeze(1)).sum(dim=2) / (k - 1)  # the j == i term is 0
    return (grouped - advantage).reshape(-1)


def images_without_signal(advantages: torch.Tensor, k: int) -> int:
    """How many images' ``k`` samples all have advantage 0: their samples scored alike (or as the greedy caption),
    so they add nothing to the policy gradient (a captioner that samples one sentence per image learns nothing)."""
    return int((advantages.view(-1, k) == 0).all(dim=1).sum())


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


# -- one policy per model family: encode once, sample k, score in one teacher-forced pass --------------
class CausalPolicy:
    """AerithVLM (decoder-only): the image encoding is ``get_image_features``, ``(B, Q, H)``.

    Batches hold left-padded prompts (``input_ids``, ``attention_mask``) with their image
    tokens, and ``pixel_values`` / ``dino_pixel_values``.
    """

    def __init__(self, model, tokenizer) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.eos_token_id = tokenizer.eos_token_id
        self.pad_token_id = tokenizer.pad_token_id
        self.banned_ids = sorted({model.config.image_token_id, self.pad_token_id} - {self.eos_token_id, None})

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One encoding per image (with gradients when they are enabled and the parts train)."""
        return self.model.get_image_features(batch["pixel_values"], batch["dino_pixel_values"])

    @torch.no_grad()
    def sample(self, batch: dict[str, torch.Tensor], encoded: torch.Tensor, *, k: int, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B*k, L)`` sampled ids and their mask, image-major; ``kwargs`` as :func:`sample_captions`."""
        out = sample_captions(
            self.model, batch["input_ids"], batch["attention_mask"], encoded, k=k,
            eos_token_id=self.eos_token_id, pad_token_id=self.pad_token_id, banned_ids=self.banned_ids, **kwargs,
        )  # fmt: skip
        return out.sample_ids, out.sample_mask

    def logprobs(
        self, batch: dict[str, torch.Tensor], encoded: torch.Tensor, sample_ids: torch.Tensor, sample_mask: torch.Tensor,
        k: int, temperature: float = 1.0,
    ) -> torch.Tensor:
        """Per-token log-probabilities ``(B*k, L)`` under the sampling temperature, one teacher-forced pass (0 where masked)."""
        prompts = SampledBatch(
            batch["input_ids"].repeat_interleave(k, 0), batch["attention_mask"].repeat_interleave(k, 0),
            sample_ids, sample_mask, encoded, k,
        )  # fmt: skip
        return sequence_logprobs(self.model, prompts, temperature)


def _query_features(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """InstructBLIP's image encoding ``(B, Q, H)``: vision model, Q-Former and language projection, once per image."""
    return model.get_image_features(
        batch["pixel_values"], qformer_input_ids=batch["qformer_input_ids"],
        qformer_attention_mask=batch["qformer_attention_mask"], return_dict=True,
    ).pooler_output  # fmt: skip


class Seq2SeqPolicy:
    """InstructBLIP with a T5 language model: the image encoding is the T5 *encoder's* output.

    The vision model, Q-Former and language projection run once per image, their output
    replaces the image tokens of the prompt, and the T5 encoder reads that once; the ``k``
    samples of an image share the encoder states. Batches are those of
    :func:`aerith.models.instructblip.encode_inputs`.
    """

    def __init__(self, model, tokenizer) -> None:
        if getattr(model.config, "use_decoder_only_language_model", False):
            raise ValueError(
                f"SCST on InstructBLIP needs an encoder-decoder (T5) language model; this model's is decoder-only "
                f"({model.config.text_config.model_type}, e.g. InstructBLIP-Vicuna): use DecoderOnlyInstructBlipPolicy "
                "(instructblip_policy picks the right one)"
            )
        self.model = model
        self.tokenizer = tokenizer
        self.eos_token_id = tokenizer.eos_token_id
        self.pad_token_id = tokenizer.pad_token_id
        self.decoder_start_token_id = model.config.text_config.decoder_start_token_id
        self.banned_ids = sorted({model.config.image_token_id, self.pad_token_id} - {self.eos_token_id, None})

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        m = self.model
        features = _query_features(m, batch)
        embeds = m.get_input_embeddings()(batch["input_ids"])
        slots = (batch["input_ids"] == m.config.image_token_id).unsqueeze(-1).expand_as(embeds)
        embeds = embeds.masked_scatter(slots, features.to(embeds.dtype))
        return m.language_model.get_encoder()(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).last_hidden_state

    @torch.no_grad()
    def sample(
        self,
        batch: dict[str, torch.Tensor],
        encoded: torch.Tensor,
        *,
        k: int,
        max_new_tokens: int = 32,
        temperature: float = 1.0,
        do_sample: bool = True,
        block_trigrams: bool = True,
        bad_ending_ids: Sequence[int] = (),
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # the decoder's sequence is [start token, caption]: trigrams count from position 1
        processors = caption_processors(1, self.eos_token_id, block_trigrams, bad_ending_ids, self.banned_ids)
        out = self.model.language_model.generate(
            encoder_outputs=BaseModelOutput(last_hidden_state=encoded.repeat_interleave(k, 0)),
            attention_mask=batch["attention_mask"].repeat_interleave(k, 0),
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            temperature=temperature if do_sample else None,
            top_k=0 if do_sample else None,
            top_p=1.0 if do_sample else None,
            logits_processor=processors,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
            decoder_start_token_id=self.decoder_start_token_id,
        )
        samples = out[:, 1:]  # drop the decoder start token
        return samples, generation_mask(samples, self.eos_token_id)

    def logprobs(
        self, batch: dict[str, torch.Tensor], encoded: torch.Tensor, sample_ids: torch.Tensor, sample_mask: torch.Tensor,
        k: int, temperature: float = 1.0,
    ) -> torch.Tensor:
        start = torch.full_like(sample_ids[:, :1], self.decoder_start_token_id)
        decoder_input_ids = torch.cat([start, sample_ids[:, :-1]], dim=1)
        logits = self.model.language_model(
            encoder_outputs=BaseModelOutput(last_hidden_state=encoded.repeat_interleave(k, 0)),
            attention_mask=batch["attention_mask"].repeat_interleave(k, 0),
            decoder_input_ids=decoder_input_ids,
        ).logits
        return _sample_logprobs(logits, sample_ids, sample_mask, temperature)


class DecoderOnlyInstructBlipPolicy:
    """InstructBLIP with a decoder-only language model (Vicuna): the image encoding is the projected Q-Former output.

    ``encode`` runs the vision model, Q-Former and language projection once per image, ``(B, Q, H)``;
    the ``k`` samples of an image share it. Its rows replace the image tokens of the prompt's embeddings
    (as the model's own forward does), and the language model samples after the prompt. Batches are those
    of :func:`aerith.models.instructblip.encode_inputs` with ``padding_side="left"`` (the padding before
    the image tokens, so every row ends with its prompt; positions follow the attention mask). The
    log-probabilities are those of :func:`sequence_logprobs`: ``log_softmax(logits / temperature)`` of the
    sampled tokens in one teacher-forced pass, 0 after the first end-of-sequence.
    """

    def __init__(self, model, tokenizer) -> None:
        if not getattr(model.config, "use_decoder_only_language_model", False):
            raise ValueError("DecoderOnlyInstructBlipPolicy needs a decoder-only language model; use Seq2SeqPolicy for T5")
        self.model = model
        self.tokenizer = tokenizer
        self.eos_token_id = tokenizer.eos_token_id
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.banned_ids = sorted({model.config.image_token_id, self.pad_token_id} - {self.eos_token_id, None})

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return _query_features(self.model, batch)

    def _embeds(self, ids: torch.Tensor, prompt_length: int, features: torch.Tensor) -> torch.Tensor:
        """Token embeddings of ``ids`` with the image features in the prompt's image-token slots."""
        m = self.model
        embeds = m.get_input_embeddings()(ids)
        slots = ids == m.config.image_token_id
        slots[:, prompt_length:] = False  # only the prompt holds image tokens (the sampler bans them)
        slots = slots.unsqueeze(-1).expand_as(embeds)
        return embeds.masked_scatter(slots, features.to(embeds.dtype))

    @torch.no_grad()
    def sample(
        self,
        batch: dict[str, torch.Tensor],
        encoded: torch.Tensor,
        *,
        k: int,
        max_new_tokens: int = 32,
        temperature: float = 1.0,
        do_sample: bool = True,
        block_trigrams: bool = True,
        bad_ending_ids: Sequence[int] = (),
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B*k, L)`` sampled ids and their mask, image-major (the rows of an image share its encoding)."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        ids = batch["input_ids"].repeat_interleave(k, 0)
        mask = batch["attention_mask"].repeat_interleave(k, 0)
        prompt_length = ids.shape[1]
        processors = caption_processors(prompt_length, self.eos_token_id, block_trigrams, bad_ending_ids, self.banned_ids)
        out = self.model.language_model.generate(
            input_ids=ids,
            inputs_embeds=self._embeds(ids, prompt_length, encoded.repeat_interleave(k, 0)),
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            temperature=temperature if do_sample else None,
            top_k=0 if do_sample else None,
            top_p=1.0 if do_sample else None,
            logits_processor=processors,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
        )
        samples = out[:, prompt_length:]
        return samples, generation_mask(samples, self.eos_token_id)

    def logprobs(
        self, batch: dict[str, torch.Tensor], encoded: torch.Tensor, sample_ids: torch.Tensor, sample_mask: torch.Tensor,
        k: int, temperature: float = 1.0,
    ) -> torch.Tensor:
        """Per-token log-probabilities ``(B*k, L)`` under the sampling temperature, one teacher-forced pass (0 where masked)."""
        prompt_ids = batch["input_ids"].repeat_interleave(k, 0)
        ids = torch.cat([prompt_ids, sample_ids], dim=1)
        mask = torch.cat([batch["attention_mask"].repeat_interleave(k, 0), sample_mask.to(batch["attention_mask"].dtype)], dim=1)
        embeds = self._embeds(ids, prompt_ids.shape[1], encoded.repeat_interleave(k, 0))
        logits = self.model.language_model(inputs_embeds=embeds, attention_mask=mask, position_ids=_positions(mask)).logits
        return _sample_logprobs(logits[:, -sample_ids.shape[1] - 1 : -1], sample_ids, sample_mask, temperature)


def instructblip_policy(model, tokenizer) -> Seq2SeqPolicy | DecoderOnlyInstructBlipPolicy:
    """The SCST policy of an InstructBLIP model: :class:`Seq2SeqPolicy` (T5) or :class:`DecoderOnlyInstructBlipPolicy`."""
    if getattr(model.config, "use_decoder_only_language_model", False):
        return DecoderOnlyInstructBlipPolicy(model, tokenizer)
    return Seq2SeqPolicy(model, tokenizer)


def decode_samples(tokenizer, sample_ids: torch.Tensor, sample_mask: torch.Tensor) -> list[str]:
    """Sampled ids -> caption texts (special tokens and everything after the first EOS dropped)."""
    rows = [ids[: int(m.sum())].tolist() for ids, m in zip(sample_ids, sample_mask)]
    return [t.strip() for t in tokenizer.batch_decode(rows, skip_special_tokens=True)]
