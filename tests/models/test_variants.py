"""Variants of a random preset: single-tower fusion, config overrides, coordinate-token initialisation."""

import pytest
import torch

from aerith.models.build import build_from_preset, config_with_overrides
from aerith.models.coordinate_tokens import number_token_ids
from aerith.models.presets import get_preset


def _pixels(seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, 64, 64, generator=g), torch.randn(2, 3, 56, 56, generator=g)


@pytest.mark.parametrize("fusion, used, unused", [("clip", 0, 1), ("dino", 1, 0)])
def test_single_tower_fusion_reads_only_its_tower(fusion, used, unused):
    model, _ = build_from_preset("aerith-tiny", overrides={"fusion": fusion})
    a, b = _pixels(0), _pixels(1)
    with torch.no_grad():
        base = model.get_image_features(*a)
        other = list(a)
        other[unused] = b[unused]
        same = model.get_image_features(*other)
        other = list(a)
        other[used] = b[used]
        changed = model.get_image_features(*other)
    assert base.shape == (2, 36, 128)
    torch.testing.assert_close(base, same, rtol=0, atol=0)
    assert not torch.allclose(base, changed)


def test_sum_fusion_reads_both_towers():
    model, _ = build_from_preset("aerith-tiny")
    a, b = _pixels(0), _pixels(1)
    with torch.no_grad():
        base = model.get_image_features(*a)
        assert not torch.allclose(base, model.get_image_features(a[0], b[1]))
        assert not torch.allclose(base, model.get_image_features(b[0], a[1]))


def test_overrides_change_the_architecture_and_the_processor():
    model, processor = build_from_preset(
        "aerith-tiny", overrides={"connector": "mlp", "clip_config.image_size": 128, "dino_config.image_size": 112}
    )
    assert model.config.connector == "mlp" and model.config.clip_grid == 16
    assert model.config.num_image_tokens == 256 and processor.num_image_tokens == 256
    feats = model.get_image_features(torch.randn(1, 3, 128, 128), torch.randn(1, 3, 112, 112))
    assert feats.shape == (1, 256, 128)
    assert model.config.training_state == "random-init"


def test_bad_overrides_name_the_field():
    config = get_preset("aerith-tiny").make_config()
    with pytest.raises(ValueError, match="no field 'num_querys'"):
        config_with_overrides(config, {"num_querys": 16})
    with pytest.raises(ValueError, match="'fusion' is not a sub-config"):
        config_with_overrides(config, {"fusion.x": 1})
    with pytest.raises(ValueError, match="fusion must be one of"):
        config_with_overrides(config, {"fusion": "max"})
    with pytest.raises(ValueError, match="coordinate_init"):
        build_from_preset("aerith-tiny", coordinate_init="sorted")
    with pytest.raises(ValueError, match="random presets"):
        build_from_preset("aerith-7b", overrides={"num_queries": 16})


def test_coordinate_init_fourier_orders_the_numbers_and_random_does_not():
    def neighbour_cosine(coordinate_init):
        model, processor = build_from_preset("aerith-tiny", coordinate_init=coordinate_init)
        ids = number_token_ids(processor.tokenizer)["bare"]
        rows = model.get_input_embeddings().weight[ids]
        return torch.nn.functional.cosine_similarity(rows[:-1], rows[1:]).mean().item()

    assert neighbour_cosine("fourier") > 0.5
    assert abs(neighbour_cosine("random")) < 0.1
