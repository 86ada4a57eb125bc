"""The attention pooler: learned queries read the fused patch grid by cross-attention."""

from __future__ import annotations

import math

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
        """queries ``(B, Q, D)``, keys ``(B, N, D)``; mask ``(Q, N)``: bool (True = may attend) or additive float."""
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

        # strength of the locality prior (see AttentionPooler); learnable, so training can drop it
        # 1-D, not 0-dim: FSDP shards only parameters of at least one dimension (checkpoints saved
        # before 2026-11-30 hold it 0-dim; see LOCALITY_CONVERSION in modeling_aerith)
        self.locality = nn.Parameter(torch.ones(1))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # torch's load_state_dict (training resume) of a state saved while the strength was 0-dim
        key = prefix + "locality"
        if key in state_dict and state_dict[key].dim() == 0:
            state_dict[key] = state_dict[key].reshape(1)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, queries: torch.Tensor, tokens: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        mask = None
        if bias is not None:
            # only the finite part (the locality prior) is scaled: the -inf of the level groups times the
            # strength would give a NaN gradient (0 * -inf) that one optimizer step spreads to every weight
            allowed = torch.isfinite(bias)
            mask = (bias.masked_fill(~allowed, 0.0) * self.locality).masked_fill(~allowed, float("-inf"))
        queries = queries + self.attn(self.norm_q(queries), self.norm_kv(tokens), mask)
        return queries + self.mlp(self.norm_mlp(queries))


class GridPositionEmbedding(nn.Module):
    """A learned position embedding ``(N, D)`` added to a fused patch grid (the MLP connector's, with
    ``config.position_code``)."""

    def __init__(self, grid_tokens: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(grid_tokens, dim))

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        return grid + self.weight.to(grid.dtype)


class AttentionPooler(nn.Module):
    """``num_queries`` learned queries pool one or several fused patch grids.

    With ``queries_per_level`` the queries are split into groups, group ``i``
    attending only to level ``i`` (LHRS-Bot's multi-level design); otherwise
    every query sees every level.

    With ``locality_prior`` each query gets a centre on the patch grid (queries
    spread over a square grid, per level) and its attention logits a Gaussian
    bias ``-d^2 / (2 sigma^2)`` towards it, scaled by a learnable strength per
    layer. Freshly initialised cross-attention is nearly uniform, i.e. global
    average pooling, which erases where things are; the prior keeps position
    from the first step, so boxes can be learned (grounding from scratch).
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
        locality_prior: bool = False,
    ) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.zeros(num_queries, dim))
        self.pos_embed = nn.Parameter(torch.zeros(grid_tokens, dim)) if pos_embed else None
        self.level_embed = nn.Parameter(torch.zeros(num_levels, dim)) if num_levels > 1 else None
        self.layers = nn.ModuleList(PoolerLayer(dim, heads, mlp_ratio) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self._layout = (num_queries, grid_tokens, num_levels, queries_per_level, locality_prior)
        self.groups = queries_per_level if queries_per_level is not None and num_levels > 1 else None
        # persistent: from_pretrained builds the model on the meta device, where a computed buffer would be lost
        self.register_buffer("attn_bias", attention_bias(*self._layout), persistent=True)

    def reset_attn_bias(self) -> None:
        """Recompute the attention bias in place (after the module was materialised from the meta device)."""
        if self.attn_bias is not None:
            with torch.no_grad():
                self.attn_bias.copy_(attention_bias(*self._layout).to(self.attn_bias.device))

    @property
    def level_mask(self) -> torch.Tensor | None:
        """``(Q, levels*N)`` bool: which tokens each query may attend to (None: all)."""
        return None if self.attn_bias is None else torch.isfinite(self.attn_bias)

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
            queries = layer(queries, kv, None if self.attn_bias is None else self.attn_bias.to(kv.dtype))
        return self.norm(queries)


def attention_bias(
    num_queries: int, grid_tokens: int, num_levels: int, queries_per_level: list[int] | None, locality_prior: bool
) -> torch.Tensor | None:
    """Additive bias ``(Q, levels*N)``: -inf outside a query's level group, plus the locality prior."""
    groups = queries_per_level if queries_per_level is not None and num_levels > 1 else None
    bias = None
    if groups is not None:
        bias = torch.full((num_queries, num_levels * grid_tokens), float("-inf"))
        start = 0
        for level, count in enumerate(groups):
            bias[start : start + count, level * grid_tokens : (level + 1) * grid_tokens] = 0.0
            start += count
    if locality_prior:
        prior = locality_bias(num_queries, grid_tokens, num_levels, groups)
        bias = prior if bias is None else bias + prior
    return bias


def _centres(count: int) -> torch.Tensor:
    """``count`` points spread over the unit square, row by row on the smallest square grid that holds them."""
    side = math.ceil(math.sqrt(count))
    idx = torch.arange(count)
    return torch.stack([(idx % side + 0.5) / side, (idx // side + 0.5) / side], dim=1)


def locality_bias(num_queries: int, grid_tokens: int, num_levels: int, groups: list[int] | None) -> torch.Tensor:
    """Additive attention bias ``(Q, levels*N)`` pulling each query towards its centre on the patch grid."""
    tokens = grid_points(grid_tokens)  # (N, 2)
    counts = groups if groups is not None else [num_queries]
    centres = torch.cat([_centres(c) for c in counts])  # (Q, 2)
    sigma = 1.0 / math.ceil(math.sqrt(max(counts)))  # about one query cell
    d2 = ((centres[:, None, :] - tokens[None, :, :]) ** 2).sum(-1)  # (Q, N)
    return (-d2 / (2 * sigma**2)).repeat(1, num_levels)


def position_code(points: torch.Tensor, dim: int) -> torch.Tensor:
    """``(N, dim)``: the Fourier code of each point's x and y (``(N, 2)`` in [0, 1]) on the coordinate
    tokens' 0-1000 grid, x in the first half of the dimensions, y in the second; unit norm per point."""
    from aerith.models.coordinate_tokens import GRID, fourier_code

    code = fourier_code(dim // 2).float()
    idx = (points.clamp(0, 1) * GRID).round().long()
    out = torch.zeros(len(points), dim)
    out[:, : 2 * (dim // 2)] = torch.cat([code[idx[:, 0]], code[idx[:, 1]]], dim=1) / math.sqrt(2)
    return out


def grid_points(grid_tokens: int) -> torch.Tensor:
    """``(N, 2)``: the centre of each patch of a square grid, row by row, in [0, 1]."""
    side = math.isqrt(grid_tokens)
    ys, xs = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    return torch.stack([(xs.flatten() + 0.5) / side, (ys.flatten() + 0.5) / side], dim=1)


def query_points(num_queries: int, groups: list[int] | None) -> torch.Tensor:
    """``(Q, 2)``: each query's centre, as the locality prior places them (per level group)."""
    return torch.cat([_centres(c) for c in (groups or [num_queries])])
