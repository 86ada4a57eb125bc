"""Stage 3, ``scst``: self-critical sequence training of captions (Rennie et al. 2017).

Runs in the same loop as align and SFT (:func:`aerith.train.loop.train`: accelerate,
checkpoints, resume, logging) as the stage :data:`SCST`. Its items are caption Samples.
Each micro-batch first goes through :meth:`SCSTObjective.prepare` (the rollout), under
``no_grad`` on the unwrapped model in eval mode:

1. each image is encoded once (AerithVLM: pooled image features; InstructBLIP-T5: the T5
   encoder's states; InstructBLIP-Vicuna: the projected Q-Former output) and the encoding
   is shared by its ``k`` samples;
2. ``k`` captions per image are sampled (temperature, repeated-trigram and bad-ending
   blocking), plus the greedy caption when ``baseline: greedy``;
3. :class:`aerith.rl.rewards.CaptionReward` scores them with every term of the reward
   table (CIDEr-D with document frequencies fitted once on the training references and
   saved as ``cider_df.json`` in the run folder, SG-F1, hallucinated and missing objects);
4. advantage = reward - baseline (leave-one-out mean of the image's other samples,
   default, or the greedy caption's reward).

The loop then counts the sampled tokens of the global batch (:meth:`SCSTObjective.count`)
and calls the objective,
whose forward encodes each image once WITH gradients (pooler, projector, Q-Former ...
train), repeats the encoding ``k`` times, recomputes the samples' log-probabilities in
one teacher-forced pass (padding after the first EOS masked; in the rollout's eval mode,
so dropout does not change them, while activation checkpointing stays on) and returns the summed
``-advantage * log p``; the loop's normalisation by the global token count makes it the
token mean. With ``scst.kl > 0`` the loss pass also scores the samples under a frozen copy of
the starting model (without gradients, under the same autocast as the policy's scoring), and
the loss adds ``kl`` times the per-token KL estimate to it. Every
reward term (mean over samples), ``no_signal_share`` (the share of images whose samples all had
advantage 0, so taught nothing: a captioner that samples one sentence per image does not learn) and the
rollout's sampling and reward seconds go to ``metrics.jsonl``; validation decodes the val captions greedily
and logs ``val_reward`` and ``val_<term>`` for every term.

Sampling draws from torch's global RNG only, which the checkpoints save and restore,
so a resumed run samples what the uninterrupted one would have.

Launching::

    aerith scst configs/scst-aerith-tiny.yaml --init runs/sft-aerith-tiny/checkpoint-final
    accelerate launch --multi_gpu --num_processes 8 -m aerith.cli scst configs/scst-aerith-7b.yaml
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from aerith.infer.facade import RANDOM_INIT
from aerith.rl.policy import (
    CausalPolicy,
    bad_ending_token_ids,
    decode_samples,
    images_without_signal,
    instructblip_policy,
    loo_baseline,
)
from aerith.rl.rewards import REWARDS, CaptionReward
from aerith.train.data import load_sources
from aerith.train.stage import Batch, Stage, StageObjective, StageSetup

CIDER_DF_FILE = "cider_df.json"
REFERENCES_KEY = "references"
# each makes the policy of a model: InstructBLIP's depends on its language model (T5 or decoder-only Vicuna)
POLICIES = {"aerith": CausalPolicy, "instructblip": instructblip_policy}


# -- data -----------------------------------------------------------------------------------------------
def check_caption_samples(samples: Sequence[Any], where: str) -> None:
    """Every item must be a caption Sample with references; the error names the data source."""
    for s in samples:
        if getattr(s, "task", None) != "cap":
            raise ValueError(
                f"data source {where} yields {getattr(s, 'task', type(s).__name__)!r} samples; scst trains on "
                "captions only (a caption dataset, or options: {task: cap} for SynthRS)"
            )
        if not s.targets:
            raise ValueError(f"data source {where}: {s.image} has no reference captions")


def collate_scst(backbone: Any, samples: Sequence[Any], max_length: int) -> Batch:
    """Caption Samples -> the canonical caption prompt per image, pixels, references.

    Prompts are left-padded for a decoder-only language model (AerithVLM, InstructBLIP-Vicuna), so that
    every row ends with its prompt; right-padded for InstructBLIP's T5 encoder.
    """
    from aerith.prompts import caption_prompt

    check_caption_samples(samples, "of this batch")
    images = [s.image for s in samples]
    processor = backbone.processor
    if backbone.kind == "aerith":
        texts = [processor.format_prompt(caption_prompt())] * len(samples)
        batch = dict(processor(images=images, text=texts, padding_side="left"))
    else:
        from aerith.models.instructblip import encode_inputs, is_decoder_only

        config = backbone.model.config
        side = "left" if is_decoder_only(config) else "right"
        batch = encode_inputs(processor, config, images, [caption_prompt()] * len(samples), padding_side=side)
    if batch["input_ids"].shape[1] >= max_length:
        raise ValueError(f"the caption prompt takes {batch['input_ids'].shape[1]} tokens, data.max_length is {max_length}")
    batch[REFERENCES_KEY] = [list(s.targets) for s in samples]
    return batch


def check_sources(config: Any, train_sets: Sequence[Any]) -> None:
    """Every training sample and the first sample of each validation source must be a caption with references.

    Runs before the model loads, so a wrong data source (a VQA or classification set, a SynthRS
    source without ``options: {task: cap}``) fails at once with the source's name.
    """
    for ds, src in zip(train_sets, config.data.train, strict=True):
        check_caption_samples(ds, f"{src.name} ({src.root}, split {src.split})")
    for src in config.data.val:
        (ds,) = load_sources([src])
        check_caption_samples([ds[0]], f"{src.name} ({src.root}, split {src.split}, validation)")


def random_start_warning(init: str, provenance: str) -> str | None:
    """What to say when SCST starts from weights whose language path is random (a preset, an aligned preset ...)."""
    if not provenance.startswith(RANDOM_INIT):
        return None
    return (
        f"SCST starts from {init!r}, whose weights are RANDOM ({provenance}): self-critical training needs a "
        "captioner that already produces captions (an SFT checkpoint, e.g. --init runs/sft/checkpoint-final); "
        "continuing anyway"
    )


def reference_documents(train_sets: Iterable[Iterable[Any]]) -> list[list[str]]:
    """CIDEr-D's documents: one per training image, holding every reference any sample of it gives
    (an instruction file may hold one record per caption of an image; the first alone left the others
    out of the document frequencies), duplicates dropped, in order."""
    refs: dict[str, dict[str, None]] = {}
    for ds in train_sets:
        for s in ds:
            refs.setdefault(str(s.image), {}).update(dict.fromkeys(s.targets))
    return [list(r) for r in refs.values()]


def prepare_reward(setup: StageSetup) -> CaptionReward:
    """CIDEr-D fitted once on the training references (saved as ``cider_df.json``; loaded on resume).

    Each training image is one document, with the references of every sample of it (several sources,
    or one record per caption, may name the same image).

    Warns when SCST starts from random weights. The sources were checked by :func:`check_sources`.
    """
    from aerith.eval.cider import CiderD
    from aerith.rl.factual import load_parser

    config, run_dir, resume = setup.config, setup.run_dir, setup.resuming
    message = None if resume else random_start_warning(config.model.init, setup.provenance)
    if message:
        warnings.warn(message, stacklevel=2)
        print(f"WARNING: {message}")
    path = run_dir / CIDER_DF_FILE
    if resume and path.is_file():
        cider = CiderD.load(path)
    else:
        if resume:
            print(f"WARNING: {path} is missing; refitting the CIDEr-D document frequencies on the training references")
        cider = CiderD.fit(reference_documents(setup.train_sets))
        if setup.main:
            run_dir.mkdir(parents=True, exist_ok=True)
            cider.save(path)
    return CaptionReward(cider, config.scst.rewards, parser=load_parser(config.scst.parser))


# -- the objective --------------------------------------------------------------------------------------
class SCSTObjective(StageObjective):
    """Rollout (no grad) + teacher-forced policy-gradient loss, for either model family.

    Args:
        model: the model (trained through this module, so DDP/FSDP wrap it here).
        policy: :class:`aerith.rl.policy.CausalPolicy`, :class:`aerith.rl.policy.Seq2SeqPolicy` or
            :class:`aerith.rl.policy.DecoderOnlyInstructBlipPolicy` over ``model``.
        reward: scores captions against their references.
        settings: the recipe's ``scst`` section (:class:`aerith.train.config.SCSTConfig`).
        reference: the same kind of policy over a frozen copy of the starting model, for the KL
            penalty (``settings.kl``); ``None`` without it.
    """

    def __init__(self, model: nn.Module, policy: Any, reward: CaptionReward, settings: Any, reference: Any = None) -> None:
        super().__init__(model)
        self.policy = policy
        # the frozen starting policy of the KL penalty (settings.kl > 0); a plain attribute, so that it
        # is neither trained nor wrapped by DDP/FSDP nor saved with the run's weights
        self.reference = reference
        self.reward = reward
        self.settings = settings
        self.bad_ending_ids = bad_ending_token_ids(policy.tokenizer) if settings.bad_endings else []
        self._stats: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    # -- rollout ---------------------------------------------------------------------------------------
    def _sample_kwargs(self) -> dict[str, Any]:
        s = self.settings
        return dict(
            max_new_tokens=s.max_new_tokens, temperature=s.temperature,
            block_trigrams=s.block_trigrams, bad_ending_ids=self.bad_ending_ids,
        )  # fmt: skip

    def _eval_mode(self):
        modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        return modes

    def _policy_mode(self) -> None:
        """Put the model in the mode the rollout sampled in, for the loss pass: eval (no dropout, no training-time jitter).

        Layers that checkpoint activations stay in training mode, since that flag is what turns checkpointing
        on; they hold no dropout of their own (their attention and MLP submodules do, and go to eval). The
        flags are not restored here: a checkpointed layer re-runs its forward in the backward pass and must
        find them as they were; the loop sets training mode again after validation.
        """
        for module in self.model.modules():
            if not (isinstance(module, GradientCheckpointingLayer) and module.gradient_checkpointing and module.training):
                module.training = False

    def _add(self, name: str, total: float, n: int) -> None:
        self._stats[name] = self._stats.get(name, 0.0) + total
        self._counts[name] = self._counts.get(name, 0) + n

    @torch.no_grad()
    def rollout(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Sample, score and weigh ``k`` captions per image; returns the tensors the forward pass needs.

        Returns:
            the batch's model inputs plus ``sample_ids`` / ``sample_mask`` ``(B*k, L)`` and
            ``advantages`` ``(B*k,)``.
        """
        s, k = self.settings, self.settings.k
        references = batch[REFERENCES_KEY]
        inputs = {n: v for n, v in batch.items() if n != REFERENCES_KEY}
        modes = self._eval_mode()
        try:
            t0 = time.perf_counter()
            encoded = self.policy.encode(inputs)
            ids, mask = self.policy.sample(inputs, encoded, k=k, do_sample=True, **self._sample_kwargs())
            greedy = None
            if s.baseline == "greedy":
                greedy = self.policy.sample(inputs, encoded, k=1, do_sample=False, **self._sample_kwargs())
            t1 = time.perf_counter()
            texts = decode_samples(self.policy.tokenizer, ids, mask)
            terms = self.reward.terms(texts, [references[i // k] for i in range(len(texts))])
            rewards = torch.tensor(terms["total"], dtype=torch.float32)
            if greedy is None:
                baseline = loo_baseline(rewards, k)
            else:
                g_terms = self.reward.terms(decode_samples(self.policy.tokenizer, *greedy), references)
                baseline = torch.tensor(g_terms["total"], dtype=torch.float32).repeat_interleave(k)
                self._add("reward_greedy", sum(g_terms["total"]), len(references))
            t2 = time.perf_counter()
        finally:
            for module, training in modes:
                module.training = training
        n = len(texts)
        self._add("reward", sum(terms["total"]), n)
        for term in REWARDS:
            self._add(f"reward_{term}", sum(terms[term]), n)
        self._add("sample_tokens", float(mask.sum()), n)
        self._add("rollout_sampling_s", t1 - t0, 1)
        self._add("rollout_reward_s", t2 - t1, 1)
        advantages = rewards - baseline
        self._add("no_signal_share", float(images_without_signal(advantages, k)), len(references))
        return {**inputs, "sample_ids": ids, "sample_mask": mask, "advantages": advantages.to(ids.device)}

    @torch.no_grad()
    def reference_logprobs(self, inputs: dict[str, Any], ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B*k, L)`` log-probabilities of the samples under the frozen starting model.

        Called from :meth:`forward`, so that it runs under the autocast the loop's accelerator puts around the
        loss pass (bf16 on a GPU by default) like the policy's log-probabilities it is compared with: scored in
        the rollout, outside that autocast, the unchanged start differed from itself by the bf16 rounding and the
        KL penalty was not 0 at the start.
        """
        ref = self.reference
        ref.model.to(ids.device)
        return ref.logprobs(inputs, ref.encode(inputs), ids, mask, self.settings.k, self.settings.temperature)

    def prepare(self, batch: Batch) -> Batch:
        """The rollout (:meth:`rollout`): the loss needs the samples and their advantages."""
        return self.rollout(batch)

    def count(self, batch: Batch) -> int:
        """Sampled tokens (up to and including each sample's first end-of-sequence)."""
        return int(batch["sample_mask"].sum())

    def pop_stats(self) -> dict[str, float]:
        """Means since the last call: reward terms per sample, rollout seconds per micro-batch."""
        out = {name: total / max(1, self._counts[name]) for name, total in self._stats.items()}
        self._stats, self._counts = {}, {}
        return out

    # -- loss ------------------------------------------------------------------------------------------
    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Summed ``-advantage * log p(token)`` over the sampled tokens (one encoding per image, with grad).

        The model runs in the mode the rollout sampled in, eval (:meth:`_policy_mode`), so dropout neither
        perturbs the log-probabilities nor makes the KL penalty non-zero at the start.
        """
        self._policy_mode()
        encoded = self.policy.encode(batch)
        s = self.settings
        logprobs = self.policy.logprobs(batch, encoded, batch["sample_ids"], batch["sample_mask"], s.k, s.temperature)
        advantages = batch["advantages"].detach().float().unsqueeze(1)
        mask = batch["sample_mask"]
        loss = -(advantages * logprobs * mask).sum()
        if self.reference is not None:  # KL(policy || start), k3 estimator: e^d - d - 1 with d = log p_ref - log p
            d = (self.reference_logprobs(batch, batch["sample_ids"], mask) - logprobs) * mask
            kl = (torch.exp(d) - d - 1) * mask
            self._add("kl", float(kl.detach().sum()), int(mask.sum()))
            loss = loss + s.kl * kl.sum()
        return loss

    # -- validation ------------------------------------------------------------------------------------
    def validation_keys(self) -> tuple[str, ...]:
        """What :meth:`validation_sums` returns, in a fixed order (``n``: captions scored)."""
        return ("reward", *REWARDS, "n")

    @torch.no_grad()
    def validation_sums(self, batch: Batch, loss: Any = None) -> dict[str, float]:
        """Greedy captions of a validation batch: summed reward terms and the caption count ``n`` (no loss)."""
        references = batch[REFERENCES_KEY]
        inputs = {n: v for n, v in batch.items() if n != REFERENCES_KEY}
        modes = self._eval_mode()
        try:
            encoded = self.policy.encode(inputs)
            ids, mask = self.policy.sample(inputs, encoded, k=1, do_sample=False, **self._sample_kwargs())
        finally:
            for module, training in modes:
                module.training = training
        terms = self.reward.terms(decode_samples(self.policy.tokenizer, ids, mask), references)
        return {"reward": sum(terms["total"]), **{t: sum(terms[t]) for t in REWARDS}, "n": float(len(references))}


def reference_policy(setup: StageSetup) -> Any:
    """The policy of a frozen copy of the starting model (``model.init``, also on resume), for the KL penalty."""
    from aerith.train.backbones import load_backbone, resolve_dtype

    m = setup.config.model
    reference = load_backbone(m.init, seed=m.seed, dtype=resolve_dtype(m.dtype), load_in_4bit=m.load_in_4bit)
    reference.model.requires_grad_(False)
    reference.model.eval()
    return POLICIES[reference.kind](reference.model, reference.processor.tokenizer)


def _objective(backbone: Any, setup: StageSetup) -> SCSTObjective:
    policy = POLICIES[backbone.kind](backbone.model, backbone.processor.tokenizer)
    settings = setup.config.scst
    reference = reference_policy(setup) if settings.kl > 0 else None
    return SCSTObjective(backbone.model, policy, prepare_reward(setup), settings, reference)


SCST = Stage(
    name="scst", takes_samples=True, collate=collate_scst, objective=_objective, check_sources=check_sources, sections=("scst",)
)
