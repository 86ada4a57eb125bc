"""Stage 1, ``align``: the DINOv3 -> CLIP linear head, label-free.

Loss per patch of CLIP's grid: ``1 - cos(dino_head(DINOv3 patch), clip_proj(CLIP patch))``,
averaged over patches and feature levels. The target is CLIP's patch features through
CLIP's *frozen* projection (``clip_proj``, detached): CLIP's projected space is the space
the language side already reads, so DINOv3 is mapped into it, and a fixed target cannot
drift towards the prediction (no collapse). Only ``dino_head`` trains (a recipe may add
``dino_tower``); asking for anything else is an error. Items are raw Samples (only the
image is read); the recipe's LoRA is not added in this stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from aerith.train.collate import collate_images
from aerith.train.stage import Batch, Stage, StageObjective, StageSetup

ALIGN_GROUPS = ("dino_head", "dino_tower")


class AlignObjective(StageObjective):
    """Summed cosine distance between the aligned DINOv3 patches and CLIP's projected patches."""

    def forward(self, batch: Batch) -> torch.Tensor:
        m = self.model
        clip = m.clip_patch_features(batch["pixel_values"])
        dino = m.dino_patch_features(batch["dino_pixel_values"])
        total = torch.zeros((), device=batch["pixel_values"].device)
        for level, (c, d) in enumerate(zip(clip, dino, strict=True)):
            with torch.no_grad():
                target = m.clip_proj[level](c.to(m.clip_proj[level].weight.dtype))
            pred = m.dino_head[level](d.to(m.dino_head[level].weight.dtype))
            total = total + (1 - F.cosine_similarity(pred.float(), target.float(), dim=-1)).sum()
        return total

    def count(self, batch: Batch) -> int:
        """Patches x feature levels."""
        cfg = self.model.config
        return batch["pixel_values"].shape[0] * cfg.clip_grid**2 * cfg.num_levels


def _collate(backbone: Any, samples: Sequence[Any], max_length: int) -> Batch:
    return collate_images(backbone.processor, [s.image for s in samples])


def _objective(backbone: Any, setup: StageSetup) -> AlignObjective:
    return AlignObjective(backbone.model)


ALIGN = Stage(
    name="align",
    takes_samples=True,
    collate=_collate,
    objective=_objective,
    trainable={"aerith": ALIGN_GROUPS},
    trainable_why="CLIP's frozen projection is the target space",
    lora=False,
    trains_language=False,
)
