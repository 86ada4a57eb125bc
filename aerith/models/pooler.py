"""The attention pooler: learned queries read the fused patch grid by cross-attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CrossAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """queries ``(B, Q, D)``, keys ``(B, N, D)``, mask ``(Q, N)`` bool, True where attending is allowed."""
        b, q_len, dim = queries.shape
        split = lambda x: x.view(b, -1, self.heads, dim // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q(queries)), split(self.k(keys)), split(self.v(keys))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(out.transpose(1, 2).reshape(b, q_len, dim))


class PoolerLayer(nn.Module):
    """Pre-norm cross-attention from the queries to the image tokens, then an MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = CrossAttention(dim, heads)
        self.norm_mlp = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, queries: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        queries = queries + self.attn(self.norm_q(queries), self.norm_kv(tokens), mask)
        return queries + self.mlp(self.norm_mlp(queries))


class AttentionPooler(nn.Module):
    """``num_queries`` learned queries pool one or several fused patch grids.

    With ``queries_per_level`` the queries are split into groups, group ``i``
    attending only to level ``i`` (LHRS-Bot's multi-level design); otherwise
    every query sees every level.
    """

    def __init__(
        self,
        dim: int,
        num_queries: int,
        layers: int,
        heads: int,
        mlp_ratio: float,
        grid_tokens: int,
        num_levels: int,
        queries_per_level: list[int] | None = None,
        pos_embed: bool = True,
    ) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.zeros(num_queries, dim))
        self.pos_embed = nn.Parameter(torch.zeros(grid_tokens, dim)) if pos_embed else None
        self.level_embed = nn.Parameter(torch.zeros(num_levels, dim)) if num_levels > 1 else None
        self.layers = nn.ModuleList(PoolerLayer(dim, heads, mlp_ratio) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        mask = None
        if queries_per_level is not None and num_levels > 1:
            mask = torch.zeros(num_queries, num_levels * grid_tokens, dtype=torch.bool)
            start = 0
            for level, count in enumerate(queries_per_level):
                mask[start : start + count, level * grid_tokens : (level + 1) * grid_tokens] = True
                start += count
        self.register_buffer("level_mask", mask, persistent=False)

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        """levels: one ``(B, N, D)`` fused grid per level -> pooled ``(B, num_queries, D)``."""
        tokens = []
        for i, grid in enumerate(levels):
            if self.pos_embed is not None:
                grid = grid + self.pos_embed
            if self.level_embed is not None:
                grid = grid + self.level_embed[i]
            tokens.append(grid)
        kv = torch.cat(tokens, dim=1)
        queries = self.queries.unsqueeze(0).expand(kv.shape[0], -1, -1).to(kv.dtype)
        for layer in self.layers:
            queries = layer(queries, kv, self.level_mask)
        return self.norm(queries)
