"""config.connector: the attention pooler (default) or LLaVA-1.5's MLP over every fused patch."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from aerith.infer.vlm import AerithVLM
from aerith.models.build import build_processor
from aerith.models.configuration_aerith import AerithConfig
from aerith.models.modeling_aerith import AerithForConditionalGeneration
from aerith.models.presets import get_preset
from aerith.models.tokenizer import build_tiny_tokenizer
from aerith.train.backbones import Backbone


def _tiny(connector: str) -> AerithVLM:
    config = get_preset("aerith-tiny").make_config()
    config.connector = connector
    torch.manual_seed(0)
    model = AerithForConditionalGeneration(AerithConfig(**config.to_dict())).eval()
    return AerithVLM(model, build_processor(model.config, build_tiny_tokenizer()), name=f"tiny-{connector}")


@pytest.mark.parametrize("connector, tokens", [("pooler", 36), ("mlp", 64)])
def test_image_token_count_follows_the_connector(connector, tokens):
    vlm = _tiny(connector)
    assert vlm.model.config.num_image_tokens == tokens == vlm.processor.num_image_tokens
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    inputs = vlm.processor(images=[image], text=[vlm.processor.format_prompt("[CAP] Describe this image.")])
    assert int((inputs["input_ids"] == vlm.model.config.image_token_id).sum()) == tokens
    feats = vlm.model.get_image_features(inputs["pixel_values"], inputs["dino_pixel_values"])
    assert feats.shape == (1, tokens, vlm.model.config.text_config.hidden_size)
    assert isinstance(vlm.generate(image, "[CAP] Describe this image.", max_new_tokens=4), str)


def test_mlp_is_two_linears_with_gelu_and_no_pooler():
    model = _tiny("mlp").model
    assert model.pooler is None
    kinds = [type(m).__name__ for m in model.projector]
    assert kinds == ["Linear", "GELU", "Linear"]


def test_mlp_saves_and_reloads_to_identical_logits(tmp_path):
    vlm = _tiny("mlp")
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 56, 3), dtype=np.uint8))
    inputs = vlm.processor(images=[image], text=[vlm.processor.format_prompt("[VQA] Is there a ship?")])
    with torch.no_grad():
        before = vlm.model(**inputs).logits
    vlm.save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["connector"] == "mlp"
    loaded = AerithVLM.from_pretrained(tmp_path / "m", device="cpu")
    with torch.no_grad():
        after = loaded.model(**inputs).logits
    torch.testing.assert_close(before, after, rtol=0, atol=0)


def test_trainable_group_names_follow_the_connector():
    pooler, mlp = _tiny("pooler"), _tiny("mlp")
    b_pooler = Backbone("aerith", pooler.model, pooler.processor)
    b_mlp = Backbone("aerith", mlp.model, mlp.processor)
    assert "pooler" in b_pooler.groups() and "mlp" not in b_pooler.groups()
    assert "mlp" in b_mlp.groups() and "pooler" not in b_mlp.groups()
    n = b_mlp.set_trainable(["mlp"])
    assert n == sum(p.numel() for p in mlp.model.projector.parameters())
    assert b_pooler.set_trainable(["connector"]) == sum(
        p.numel() for part in (pooler.model.pooler, pooler.model.projector) for p in part.parameters()
    )
    with pytest.raises(ValueError, match="connector is 'mlp'"):
        b_mlp.set_trainable(["pooler"])


def test_mlp_needs_one_feature_level():
    with pytest.raises(ValueError, match="connector 'mlp' reads one feature level"):
        AerithConfig(connector="mlp", clip_feature_layers=[-2, -1], dino_feature_layers=[-2, -1])
    with pytest.raises(ValueError, match="connector must be one of"):
        AerithConfig(connector="qformer")


def test_checkpoint_saved_before_the_connector_field_still_loads(tmp_path):
    vlm = _tiny("pooler")
    vlm.save_pretrained(tmp_path / "old")
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    del config["connector"]  # as written before the field existed
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    loaded = AerithVLM.from_pretrained(tmp_path / "old", device="cpu")
    assert loaded.model.config.connector == "pooler"
    torch.testing.assert_close(loaded.model.state_dict()["projector.weight"], vlm.model.state_dict()["projector.weight"])
