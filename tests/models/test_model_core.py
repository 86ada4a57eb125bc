import json

import numpy as np
import pytest
import torch
from PIL import Image

from aerith.data.errors import ImageReadError
from aerith.infer.vlm import AerithVLM
from aerith.models.build import build_from_preset, build_meta_model, check_4bit_available
from aerith.models.configuration_aerith import AerithConfig
from aerith.models.lora import LoraSettings
from aerith.models.modeling_aerith import AerithForConditionalGeneration
from aerith.models.presets import get_preset


@pytest.fixture(scope="module")
def tiny():
    return AerithVLM.from_preset("aerith-tiny", seed=0, device="cpu")


def _images(n):
    return [Image.fromarray(np.random.default_rng(i).integers(0, 255, (40 + 9 * i, 48, 3), dtype=np.uint8)) for i in range(n)]


def _inputs(vlm, images, prompts):
    texts = [vlm.processor.format_prompt(p) for p in prompts]
    return vlm.processor(images=images, text=texts, padding_side="right")


def test_save_then_load_gives_identical_logits(tiny, tmp_path):
    inputs = _inputs(tiny, _images(2), ["[CAP] Describe this image.", "[VQA] Is there a ship?"])
    with torch.no_grad():
        before = tiny.model(**inputs).logits
    tiny.save_pretrained(tmp_path / "ckpt")
    saved = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert {"clip_config", "dino_config", "text_config"} <= saved.keys()
    assert saved["clip_config"]["model_type"] == "clip_vision_model"
    assert saved["dino_config"]["model_type"] == "dinov3_vit"
    assert saved["text_config"]["model_type"] == "llama"
    loaded = AerithVLM.from_pretrained(tmp_path / "ckpt", device="cpu")
    with torch.no_grad():
        after = loaded.model(**_inputs(loaded, _images(2), ["[CAP] Describe this image.", "[VQA] Is there a ship?"])).logits
    torch.testing.assert_close(before, after, rtol=0, atol=0)
    assert loaded.is_random_init


def test_batched_greedy_equals_one_by_one(tiny):
    images = _images(4)
    prompts = [
        "[CAP] Describe this image.",
        "[VQA] How many buildings are there? Answer with a single word or phrase.",
        "[VG] Locate: the white storage tank at the top left.",
        "[CLS] Choose the category that best describes the image from: airport, beach, forest.",
    ]
    batched = tiny.generate(images, prompts, batch_size=4, max_new_tokens=10)
    single = [tiny.generate(im, p, max_new_tokens=10) for im, p in zip(images, prompts)]
    assert batched == single
    assert all(isinstance(s, str) and s for s in batched)


def test_image_token_mismatch_raises(tiny):
    inputs = _inputs(tiny, _images(1), ["[CAP] Describe this image."])
    ids = inputs["input_ids"].clone()
    ids[0, (ids[0] == tiny.model.config.image_token_id).nonzero()[0]] = tiny.processor.tokenizer.eos_token_id
    with pytest.raises(ValueError, match="do not match"):
        tiny.model(input_ids=ids, pixel_values=inputs["pixel_values"], dino_pixel_values=inputs["dino_pixel_values"])


def test_towers_get_no_gradients(tiny):
    model = tiny.model
    inputs = _inputs(tiny, _images(2), ["[CAP] a", "[CAP] b"])
    labels = inputs["input_ids"].clone()
    model.zero_grad(set_to_none=True)
    loss = model(**inputs, labels=labels).loss
    loss.backward()
    assert all(p.grad is None for p in model.clip_tower.parameters())
    assert all(p.grad is None for p in model.dino_tower.parameters())
    assert model.pooler.queries.grad is not None and model.projector.weight.grad is not None
    model.zero_grad(set_to_none=True)


def test_lora_merge_matches_unmerged(tmp_path):
    model, processor = build_from_preset("aerith-tiny", seed=1)
    model.add_lora(LoraSettings(r=4, alpha=8, dropout=0.0))
    trainable = {n for n, p in model.language_model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():  # LoRA B starts at zero; make the adapters do something
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.05)
    vlm = AerithVLM(model, processor)
    inputs = _inputs(vlm, _images(2), ["[CAP] a", "[VQA] b"])
    with torch.no_grad():
        unmerged = model(**inputs).logits
    # the adapters survive a save/load round trip, then merge into the base weights
    vlm.save_pretrained(tmp_path / "lora")
    reloaded = AerithVLM.from_pretrained(tmp_path / "lora", device="cpu").model
    assert reloaded.config.lora["r"] == 4
    reloaded.merge_lora()
    assert reloaded.config.lora is None
    assert not any("lora_" in n for n, _ in reloaded.named_parameters())
    with torch.no_grad():
        merged = reloaded(**inputs).logits
    torch.testing.assert_close(unmerged, merged, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(unmerged, build_from_preset("aerith-tiny", seed=1)[0](**inputs).logits, atol=1e-3)


def test_seed_preset_builds_on_meta_with_expected_shapes():
    model = build_meta_model("aerith-7b")
    cfg = model.config
    assert cfg.num_queries == 144 and cfg.pooler_layers == 6 and cfg.pooler_heads == 16
    assert cfg.clip_grid == 16 and cfg.dino_grid == 14 and cfg.dino_prefix_tokens == 5
    assert model.pooler.queries.shape == (144, 768)
    assert model.clip_proj[0].weight.shape == (768, 1024)
    assert model.dino_head[0].weight.shape == (768, 768)
    assert model.projector.weight.shape == (4096, 768)
    assert model.get_input_embeddings().weight.shape == (32002, 4096)
    assert all(p.device.type == "meta" for p in model.parameters())
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(model.clip_tower) == pytest.approx(303.2e6, rel=1e-3)  # CLIP ViT-L/14 vision tower
    assert count(model.dino_tower) == pytest.approx(85.7e6, rel=1e-3)  # DINOv3 ViT-B/16
    assert count(model.language_model) == pytest.approx(6.7384e9, rel=1e-3)  # Llama-2-7B with 2 added rows
    assert count(model) == pytest.approx(7.1746e9, rel=1e-3)
    preset = get_preset("aerith-7b")
    assert preset.llm_id == "meta-llama/Llama-2-7b-chat-hf" and preset.clip_id == "openai/clip-vit-large-patch14"
    assert preset.dino_id == "facebook/dinov3-vitb16-pretrain-lvd1689m"


def test_unknown_preset_lists_known():
    with pytest.raises(KeyError, match="aerith-tiny"):
        AerithVLM.from_preset("aerith-13b")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU error")
def test_4bit_on_cpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="CUDA GPU"):
        check_4bit_available()
    with pytest.raises(RuntimeError, match="CUDA GPU"):
        AerithVLM.from_preset("aerith-7b", load_in_4bit=True)


@pytest.mark.parametrize(
    "overrides",
    [
        dict(fusion="concat"),
        dict(clip_feature_layers=[1, -1], dino_feature_layers=[1, -1], queries_per_level=[5, 3], num_queries=8),
        dict(clip_feature_layers=[1, -1], dino_feature_layers=[1, -1]),
    ],
)
def test_fusion_and_multi_level_options(overrides):
    cfg = get_preset("aerith-tiny").make_config().to_dict()
    cfg.update(overrides)
    model = AerithForConditionalGeneration(AerithConfig(**cfg)).eval()
    feats = model.get_image_features(torch.randn(2, 3, 64, 64), torch.randn(2, 3, 56, 56))
    assert feats.shape == (2, model.config.num_queries, 128)
    if model.config.queries_per_level:
        mask = model.pooler.level_mask
        assert mask[:5, :64].all() and not mask[:5, 64:].any() and mask[5:, 64:].all()


@pytest.mark.parametrize("prior", [True, False])
def test_level_groups_give_finite_gradients_and_survive_a_training_step(prior):
    """The -inf of the level groups is not scaled by the learnable locality strength (0 * -inf = NaN)."""
    from aerith.models.pooler import AttentionPooler

    torch.manual_seed(0)
    pooler = AttentionPooler(dim=16, num_queries=8, layers=2, heads=2, mlp_ratio=2.0, grid_tokens=16, num_levels=2,
                             queries_per_level=[5, 3], locality_prior=prior)
    levels = [torch.randn(2, 16, 16), torch.randn(2, 16, 16)]
    pooler(levels).square().mean().backward()
    for layer in pooler.layers:
        assert torch.isfinite(layer.locality.grad).all()
    torch.optim.SGD(pooler.parameters(), lr=0.1).step()
    with torch.no_grad():
        assert torch.isfinite(pooler(levels)).all()


def test_config_validation():
    base = get_preset("aerith-tiny").make_config().to_dict()
    for bad in (dict(fusion="max"), dict(queries_per_level=[10, 10]), dict(clip_feature_layers=[-1, -2])):
        with pytest.raises(ValueError):
            AerithConfig(**{**base, **bad})
    for bad, message in (  # found when the config is made, not as a shape error in the first forward
        (dict(clip_feature_layers=[-5]), r"clip_feature_layers: layer -5 is not one of the tower's 2 layers \(valid: -3 to 2\)"),
        (dict(dino_feature_layers=[3]), "dino_feature_layers: layer 3"),
        (dict(pooler_heads=0), "pooler_heads must be >= 1"),
        (dict(pooler_mlp_ratio=-1.0), "pooler_mlp_ratio must be a finite number > 0"),
    ):
        with pytest.raises(ValueError, match=message):
            AerithConfig(**{**base, **bad})


@pytest.mark.parametrize("prior", [True, False])
def test_locality_prior_keeps_position_at_init(prior):
    from aerith.models.pooler import AttentionPooler

    torch.manual_seed(0)
    pooler = AttentionPooler(dim=32, num_queries=16, layers=2, heads=4, mlp_ratio=2.0, grid_tokens=64, num_levels=1,
                             pos_embed=False, locality_prior=prior).eval()
    grid = torch.randn(1, 64, 32)
    near, far = grid.clone(), grid.clone()
    near[0, 0] += 5.0  # the top-left patch, at query 0's centre
    far[0, 63] += 5.0  # the bottom-right patch
    with torch.no_grad():
        base = pooler([grid])[0, 0]
        d_near = (pooler([near])[0, 0] - base).norm()
        d_far = (pooler([far])[0, 0] - base).norm()
    if prior:
        assert d_near > 20 * d_far  # query 0 reads its own neighbourhood
    else:
        assert d_near < 3 * d_far  # uniform attention: position is averaged away


def test_new_parts_materialised_from_meta_get_their_attention_bias():
    """The hub path builds the model on meta and materialises the new parts (pooler ...) itself."""
    from aerith.models.build import NEW_PARTS

    reference = AerithForConditionalGeneration(get_preset("aerith-tiny").make_config())
    meta = build_meta_model("aerith-tiny")
    for part in NEW_PARTS:
        module = getattr(meta, part)
        if module is not None:
            module.to_empty(device="cpu")
            module.apply(meta._init_weights)
    torch.testing.assert_close(meta.pooler.attn_bias, reference.pooler.attn_bias)
    assert meta.pooler.attn_bias.abs().sum() > 0
    assert all(layer.locality.item() == 1.0 for layer in meta.pooler.layers)


def test_a_checkpoint_with_0_dim_locality_strengths_loads_on_both_paths(tmp_path):
    """Checkpoints saved before the locality strength became 1-D (for FSDP) still load, values kept."""
    from safetensors.torch import load_file, save_file

    from aerith.infer.load import load_vlm

    tiny = AerithVLM.from_preset("aerith-tiny", seed=0, device="cpu")
    with torch.no_grad():
        for i, layer in enumerate(tiny.model.pooler.layers):
            layer.locality.fill_(0.25 + i)
    tiny.save_pretrained(tmp_path / "old")
    weights = tmp_path / "old" / "model.safetensors"
    state = load_file(weights)
    assert all(v.shape == (1,) for k, v in state.items() if k.endswith("locality"))
    old = {k: v.reshape(()) if k.endswith("locality") else v for k, v in state.items()}
    save_file(old, weights, metadata={"format": "pt"})

    loaded = load_vlm(tmp_path / "old", device="cpu")  # transformers' loader (a registered conversion)
    assert [layer.locality.tolist() for layer in loaded.model.pooler.layers] == [[0.25], [1.25]]
    inputs = _inputs(tiny, _images(1), ["[CAP] Describe this image."])
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(**inputs).logits, tiny.model(**inputs).logits, rtol=0, atol=0)
    loaded.save_pretrained(tmp_path / "new")  # written in the new shape
    assert load_file(tmp_path / "new" / "model.safetensors")["pooler.layers.1.locality"].shape == (1,)

    fresh = AerithForConditionalGeneration(get_preset("aerith-tiny").make_config())  # torch's load_state_dict (resume)
    fresh.load_state_dict(old, strict=False)
    assert [layer.locality.tolist() for layer in fresh.pooler.layers] == [[0.25], [1.25]]

    from aerith.infer.facade import ModelFolderError

    save_file({**old, "pooler.layers.0.locality": torch.ones(3)}, weights, metadata={"format": "pt"})
    with pytest.raises(ModelFolderError, match="weights do not load"):  # a wrong size is refused, not reshaped
        load_vlm(tmp_path / "old", device="cpu")


def test_bfloat16_preset_gives_the_logits_of_itself_saved_and_reloaded(tmp_path):
    # build_from_preset(dtype=bfloat16) rounded RoPE's float32 inv_freq buffers to bfloat16 (a plain
    # model.to(dtype)); from_pretrained keeps them float32, so the reloaded model answered differently
    vlm = AerithVLM.from_preset("aerith-tiny", seed=0, device="cpu", dtype=torch.bfloat16)
    assert vlm.model.dtype == torch.bfloat16
    assert vlm.model.language_model.model.rotary_emb.inv_freq.dtype == torch.float32
    inputs = _inputs(vlm, _images(2), ["[CAP] Describe this image.", "[VQA] Is there a ship?"])
    for key in ("pixel_values", "dino_pixel_values"):
        inputs[key] = inputs[key].to(torch.bfloat16)
    with torch.no_grad():
        before = vlm.model(**inputs).logits
    vlm.save_pretrained(tmp_path / "bf16")
    loaded = AerithVLM.from_pretrained(tmp_path / "bf16", device="cpu", dtype=torch.bfloat16)
    assert loaded.model.dtype == torch.bfloat16
    with torch.no_grad():
        after = loaded.model(**inputs).logits
    torch.testing.assert_close(before, after, rtol=0, atol=0)
