"""A box head for grounding: reads a patch grid, steered by the language model's reading of the prompt.

The pooled image tokens the language model sees do not say where a named object is
(benchmarks/RESULTS.md, ``grounding_experiments``: a probe loses half the per-patch
object information in the pooler, and a language model trained on box text learns the
region words, never the object). So, as OWL-ViT (Minderer et al. 2022) does for
detection, every patch of the grid (CLIP's patch tokens, or the fused grid:
``AerithConfig.box_head_input``) proposes a box and a score; as LISA (Lai et
al. 2024) does for masks, the query is the language model's last hidden state at the
end of the grounding prompt, so the expression is read by the language model, not by
a second text encoder.

Each patch's box is a sigmoid around the patch (OWL-ViT's box bias: the patch's centre
and size in inverse-sigmoid space), so a fresh head already proposes one box per patch
and learns offsets and sizes below the patch. Trained with cross-entropy over patches
(the target: the patch holding the box centre) and L1 + generalised IoU on that
patch's box (DETR's losses and weights).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from aerith.models.pooler import GridPositionEmbedding, grid_points

L1_WEIGHT, GIOU_WEIGHT = 5.0, 2.0  # DETR's


@functools.lru_cache(maxsize=8)
def box_bias(grid_tokens: int) -> torch.Tensor:
    """``(N, 4)``: inverse sigmoid of each patch's ``(cx, cy, w, h)`` in [0, 1] (OWL-ViT's ``compute_box_bias``)."""
    side = math.isqrt(grid_tokens)
    centres = grid_points(grid_tokens)
    sizes = torch.full_like(centres, 1.0 / side)
    cxcywh = torch.cat([centres, sizes], dim=1).clamp(1e-4, 1 - 1e-4)
    return torch.log(cxcywh) - torch.log1p(-cxcywh)


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def generalized_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise generalised IoU of ``(M, 4)`` xyxy boxes (Rezatofighi et al. 2019)."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt, rb = torch.maximum(a[:, :2], b[:, :2]), torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    union = area_a + area_b - inter
    iou = inter / union.clamp(min=1e-9)
    hull = (torch.maximum(a[:, 2:], b[:, 2:]) - torch.minimum(a[:, :2], b[:, :2])).clamp(min=0).prod(dim=1)
    return iou - (hull - union) / hull.clamp(min=1e-9)


def target_patches(boxes: torch.Tensor, grid_tokens: int) -> torch.Tensor:
    """``(M,)``: the index of the patch holding each ``(M, 4)`` xyxy box's centre (row by row)."""
    side = math.isqrt(grid_tokens)
    cx = ((boxes[:, 0] + boxes[:, 2]) / 2 * side).long().clamp(0, side - 1)
    cy = ((boxes[:, 1] + boxes[:, 3]) / 2 * side).long().clamp(0, side - 1)
    return cy * side + cx


class BoxHead(nn.Module):
    """Per-patch boxes and scores for one query vector.

    Args:
        input_dim: width of the patch grid it reads (the fused grid's, or CLIP's).
        dim: the head's own width.
        query_dim: width of the language model's hidden state.
        grid_tokens: patches in the (square) grid.
        layers, heads: the transformer over ``[query; patches]`` that lets each patch read the
            expression and its neighbours (a region phrase needs to know where the river is).
    """

    def __init__(self, input_dim: int, dim: int, query_dim: int, grid_tokens: int, layers: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.grid_tokens = grid_tokens
        self.input_proj = nn.Linear(input_dim, dim)
        self.query_proj = nn.Linear(query_dim, dim)
        self.position = GridPositionEmbedding(grid_tokens, dim)
        block = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.score = nn.Linear(dim, 1)
        self.box = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, 4))

    def forward(self, grid: torch.Tensor, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``grid (B, N, input_dim)``, ``query (B, query_dim)`` -> scores ``(B, N)`` and xyxy boxes in [0, 1] ``(B, N, 4)``."""
        if grid.shape[1] != self.grid_tokens:
            raise ValueError(f"the box head was built for {self.grid_tokens} patches, got a grid of {grid.shape[1]}")
        q = self.query_proj(query.to(self.query_proj.weight.dtype)).unsqueeze(1)
        x = torch.cat([q, self.position(self.input_proj(grid.to(q.dtype)))], dim=1)
        x = self.norm(self.blocks(x))[:, 1:]
        bias = box_bias(self.grid_tokens).to(x)
        boxes = cxcywh_to_xyxy(torch.sigmoid(self.box(x) + bias)).clamp(0, 1)
        return self.score(x).squeeze(-1), boxes

    @staticmethod
    def best(scores: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """``(B, 4)``: the box of each row's highest-scoring patch."""
        pick = scores.argmax(dim=1)
        return boxes[torch.arange(len(pick), device=boxes.device), pick]

    def loss(self, scores: torch.Tensor, boxes: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Summed over rows: cross-entropy towards the patch holding the target's centre, plus
        L1 (x5) and 1 - generalised IoU (x2) of that patch's box. ``targets (B, 4)`` xyxy in [0, 1]."""
        targets = targets.float()  # a bf16 target is off by up to two grid units and may name the next patch
        patch = target_patches(targets, self.grid_tokens)
        pointer = F.cross_entropy(scores.float(), patch, reduction="sum")
        chosen = boxes[torch.arange(len(patch), device=boxes.device), patch].float()
        l1 = (chosen - targets.float()).abs().sum()
        giou = (1 - generalized_iou(chosen, targets.float())).sum()
        return pointer + L1_WEIGHT * l1 + GIOU_WEIGHT * giou
