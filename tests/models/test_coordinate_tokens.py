"""The tiny tokenizer spells every grid integer as one token, and the coordinate embeddings start ordinal."""

from __future__ import annotations

import torch

from aerith.models.coordinate_tokens import fourier_code, init_coordinate_embeddings, number_token_ids
from aerith.models.tokenizer import build_tiny_tokenizer


def test_every_integer_is_one_token_bare_and_spaced():
    tok = build_tiny_tokenizer()
    ids = number_token_ids(tok)  # raises on a number that takes two tokens
    assert len(set(ids["bare"])) == len(set(ids["spaced"])) == 1001
    assert tok("[124, 5, 124, 1000]", add_special_tokens=False).tokens() == ["[", "124", ",", "Ġ5", ",", "Ġ124", ",", "Ġ1000", "]"]


def test_fourier_code_is_ordinal():
    code = fourier_code(128)
    sim = code @ code[500]
    assert torch.allclose(code.norm(dim=1), torch.ones(1001, dtype=code.dtype))
    # similarity falls with distance from 500 (checked on a coarse ladder)
    ladder = [sim[500 + d].item() for d in (0, 2, 8, 32, 128)]
    assert ladder == sorted(ladder, reverse=True)
    assert sim[500 + 1] > sim[900]


def test_embeddings_of_neighbours_are_close_and_spellings_differ():
    from aerith.infer.vlm import AerithVLM

    vlm = AerithVLM.from_preset("aerith-tiny", seed=0)
    tok = vlm.processor.tokenizer
    ids = number_token_ids(tok)
    emb = vlm.model.get_input_embeddings().weight
    out = vlm.model.get_output_embeddings().weight
    for matrix in (emb, out):
        v = torch.nn.functional.normalize(matrix[ids["spaced"]], dim=1)
        assert (v[500] @ v[501]) > (v[500] @ v[700]) + 0.3
        bare, spaced = matrix[ids["bare"][300]], matrix[ids["spaced"][300]]
        assert not torch.allclose(bare, spaced)
    # the preset applies the code: a fresh init with the same seed gives the same rows
    again = AerithVLM.from_preset("aerith-tiny", seed=0).model.get_input_embeddings().weight
    assert torch.equal(again, emb)


def test_init_is_idempotent_in_shape_and_keeps_other_rows():
    from aerith.models.build import build_from_preset

    model, processor = build_from_preset("aerith-tiny", seed=1)
    before = model.get_input_embeddings().weight.clone()
    init_coordinate_embeddings(model, processor.tokenizer, torch.Generator().manual_seed(0))
    ids = set(sum(number_token_ids(processor.tokenizer).values(), []))
    others = [i for i in range(before.shape[0]) if i not in ids]
    assert torch.equal(model.get_input_embeddings().weight[others], before[others])
