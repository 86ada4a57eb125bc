"""Stage 2, ``sft``: multi-task instruction tuning with the loss on answer tokens only.

AerithVLM trains the pooler, the projector and LoRA on the language model (the
recipe names the groups; ``aerith-tiny`` also trains its random towers).
InstructBLIP trains the Q-Former, the query tokens and the language projection, with
a Flan-T5 (decoder labels) or a decoder-only Vicuna language model (labels aligned with
the whole sequence, next-token loss as for AerithVLM).
Both read the same datasets and the same instructions
(``aerith.data.instructions.to_instruction``; the canonical prompts of
:mod:`aerith.prompts` until that module is installed). The loss is normalised by
the answer tokens of the global batch.

Launching::

    aerith sft configs/sft-aerith-tiny.yaml --set optim.lr=5e-4           # one process
    accelerate launch --multi_gpu --num_processes 8 -m aerith.cli sft configs/sft-aerith-7b.yaml
    # several CPU processes (gloo): accelerate 1.15's `launch --cpu --num_processes N` starts
    # one process unless MPI is set up; the torchrun launcher with ACCELERATE_USE_CPU=1 works:
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 -m aerith.cli sft RECIPE
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from aerith.train.collate import IGNORE, collate_aerith_sft, collate_instructblip_sft
from aerith.train.stage import Batch, Stage, StageObjective, StageSetup


class CausalSFTObjective(StageObjective):
    """Summed next-token cross-entropy on the answer tokens of a decoder-only batch (AerithVLM, InstructBLIP-Vicuna).

    With a box head, plus ``config.box_loss_weight`` times the head's loss summed over the
    grounding rows (the loop divides the sum by the answer tokens, about ten per box).
    """

    def forward(self, batch: Batch) -> torch.Tensor:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        out = self.model(**inputs)
        logits = out.logits[:, :-1]
        labels = batch["labels"][:, 1:]
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE, reduction="sum")
        if out.get("box_loss") is not None and any(p.requires_grad for p in self.model.box_head.parameters()):
            # a frozen head's loss would only push its errors into the language model
            loss = loss + self.model.config.box_loss_weight * out.box_loss
        return loss

    def count(self, batch: Batch) -> int:
        """Answer tokens (each predicted from the token before it)."""
        return int((batch["labels"][:, 1:] != IGNORE).sum())


class Seq2SeqSFTObjective(StageObjective):
    """Summed cross-entropy of an encoder-decoder (InstructBLIP-T5) on its decoder labels."""

    def forward(self, batch: Batch) -> torch.Tensor:
        logits = self.model(**batch).logits
        labels = batch["labels"]
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE, reduction="sum")

    def count(self, batch: Batch) -> int:
        """Decoder label tokens."""
        return int((batch["labels"] != IGNORE).sum())


def _collate(backbone: Any, instructions: Sequence[Any], max_length: int) -> Batch:
    if backbone.kind == "aerith":
        with_boxes = getattr(backbone.model, "box_head", None) is not None
        return collate_aerith_sft(backbone.processor, instructions, max_length, with_boxes=with_boxes)
    return collate_instructblip_sft(backbone.processor, backbone.model.config, instructions, max_length)


def _objective(backbone: Any, setup: StageSetup) -> StageObjective:
    from aerith.models.instructblip import is_decoder_only

    causal = backbone.kind == "aerith" or is_decoder_only(backbone.model.config)
    return (CausalSFTObjective if causal else Seq2SeqSFTObjective)(backbone.model)


SFT = Stage(name="sft", takes_samples=False, collate=_collate, objective=_objective)
