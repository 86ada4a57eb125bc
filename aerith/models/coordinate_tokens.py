"""An ordinal start for the coordinate tokens of a tokenizer that spells every integer 0-1000 as one token.

A box on the 0-1000 grid is four such tokens. Initialised at random, token 512
is as far from 513 as from 7: a model must learn the order of a thousand
numbers from box targets alone before a near miss costs less than a far one,
which a small model trained from scratch on a CPU does not get to. Here the
input and output embeddings of the number ``v`` start as a Fourier code of
``v`` (sines and cosines from one period over the grid down to a few units),
so neighbouring values start with similar embeddings and similar logits and
one gradient step toward a target value also lifts its neighbours. The
spellings with and without a leading space share the code and differ by one
random direction each (the model must still choose the right one).

Only the offline tiny tokenizer (:func:`aerith.models.tokenizer.build_tiny_tokenizer`)
has such tokens; Llama-2's tokenizer spells numbers digit by digit, so the
hub presets are left as they are.
"""

from __future__ import annotations

import math

import torch

GRID = 1000


def number_token_ids(tokenizer) -> dict[str, list[int]]:
    """``{"bare": ids of "0".."1000", "spaced": ids of " 0".." 1000"}``; raises if one is not a single token."""
    out: dict[str, list[int]] = {"bare": [], "spaced": []}
    for v in range(GRID + 1):
        for key, text in (("bare", str(v)), ("spaced", f" {v}")):
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(ids) != 1:
                raise ValueError(f"the tokenizer spells {text!r} as {len(ids)} tokens; coordinate tokens need one each")
            out[key].append(ids[0])
    return out


def fourier_code(dim: int, grid: int = GRID, shortest_period: float = 4.0) -> torch.Tensor:
    """``(grid + 1, dim)``: sin/cos of ``v`` at ``dim // 2`` periods, geometric from ``2 * grid`` down to ``shortest_period``."""
    if dim < 2:
        raise ValueError(f"dim must be >= 2, got {dim}")
    half = dim // 2
    periods = torch.logspace(math.log10(2 * grid), math.log10(shortest_period), half, dtype=torch.float64)
    values = torch.arange(grid + 1, dtype=torch.float64).unsqueeze(1)
    angles = 2 * math.pi * values / periods
    code = torch.zeros(grid + 1, dim, dtype=torch.float64)
    code[:, 0 : 2 * half : 2] = torch.sin(angles)
    code[:, 1 : 2 * half : 2] = torch.cos(angles)
    return code / math.sqrt(half)  # unit norm per value


@torch.no_grad()
def init_coordinate_embeddings(model, tokenizer, generator: torch.Generator | None = None) -> None:
    """Set the number tokens' input and output embedding rows of ``model`` (an Aerith model) to the Fourier code.

    The rows keep the norm of the model's other rows (the code is rescaled to their
    mean norm); each spelling adds its own random direction at a quarter of that norm.
    """
    ids = number_token_ids(tokenizer)
    for matrix in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
        dim = matrix.shape[1]
        code = fourier_code(dim).to(matrix.dtype)
        others = torch.ones(matrix.shape[0], dtype=torch.bool)
        others[ids["bare"] + ids["spaced"]] = False
        norm = matrix[others].norm(dim=1).mean()
        for key in ("bare", "spaced"):
            direction = torch.randn(dim, generator=generator, dtype=torch.float64).to(matrix.dtype)
            direction = direction / direction.norm() * 0.25
            matrix[ids[key]] = ((code + direction) * norm).to(matrix.device)
