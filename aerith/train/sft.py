"""Stage 2, ``sft``: multi-task instruction tuning with the loss on answer tokens only.

AerithVLM trains the pooler, the projector and LoRA on the language model (the
recipe names the groups; ``aerith-tiny`` also trains its random towers).
InstructBLIP trains the Q-Former, the query tokens and the language projection.
Both read the same datasets and the same instructions
(``aerith.data.instructions.to_instruction``; the canonical prompts of
:mod:`aerith.prompts` until that module is installed).

Launching::

    aerith sft configs/sft-aerith-tiny.yaml --set optim.lr=5e-4           # one process
    accelerate launch --multi_gpu --num_processes 8 -m aerith.cli sft configs/sft-aerith-7b.yaml
    # several CPU processes (gloo): accelerate 1.15's `launch --cpu --num_processes N` starts
    # one process unless MPI is set up; the torchrun launcher with ACCELERATE_USE_CPU=1 works:
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 -m aerith.cli sft RECIPE
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from aerith.train.collate import IGNORE


class CausalSFTObjective(nn.Module):
    """Summed next-token cross-entropy on the answer tokens of an AerithVLM batch."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        logits = self.model(**inputs).logits[:, :-1]
        labels = batch["labels"][:, 1:]
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE, reduction="sum")


class Seq2SeqSFTObjective(nn.Module):
    """Summed cross-entropy of an encoder-decoder (InstructBLIP-T5) on its decoder labels."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self.model(**batch).logits
        labels = batch["labels"]
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE, reduction="sum")


def run_sft(config: Any, *, resume: bool = False, **kwargs: Any):
    """Run stage 2 with ``config`` (a :class:`aerith.train.config.TrainConfig` with ``stage="sft"``)."""
    from aerith.train.loop import train

    if config.stage != "sft":
        raise ValueError(f"the recipe is for stage {config.stage!r}, not 'sft'")
    return train(config, resume=resume, **kwargs)
