"""Stage 1, ``align``: the DINOv3 -> CLIP linear head, label-free.

Loss per patch of CLIP's grid: ``1 - cos(dino_head(DINOv3 patch), clip_proj(CLIP patch))``,
averaged over patches and feature levels. The target is CLIP's patch features through
CLIP's *frozen* projection (``clip_proj``, detached): CLIP's projected space is the space
the language side already reads, so DINOv3 is mapped into it, and a fixed target cannot
drift towards the prediction (no collapse). Only ``dino_head`` trains (a recipe may add
``dino_tower``); asking for anything else is an error.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class AlignObjective(nn.Module):
    """Summed cosine distance between the aligned DINOv3 patches and CLIP's projected patches."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
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


def run_align(config: Any, *, resume: bool = False, **kwargs: Any):
    """Run stage 1 with ``config`` (a :class:`aerith.train.config.TrainConfig` with ``stage="align"``)."""
    from aerith.train.loop import train

    if config.stage != "align":
        raise ValueError(f"the recipe is for stage {config.stage!r}, not 'align'")
    return train(config, resume=resume, **kwargs)
