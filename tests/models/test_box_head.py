"""config.box_head: per-patch boxes from the fused grid, steered by the language model's reading of the prompt."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from aerith.infer.vlm import AerithVLM
from aerith.models.box_head import BoxHead, box_bias, generalized_iou, target_patches
from aerith.models.build import build_processor
from aerith.models.configuration_aerith import AerithConfig
from aerith.models.modeling_aerith import AerithForConditionalGeneration
from aerith.models.presets import get_preset
from aerith.models.tokenizer import build_tiny_tokenizer
from aerith.train.backbones import Backbone
from aerith.train.collate import IGNORE, collate_aerith_sft
from aerith.train.sft import CausalSFTObjective


def _tiny(**overrides) -> AerithVLM:
    config = get_preset("aerith-tiny").make_config().to_dict()
    config.update(overrides)
    torch.manual_seed(0)
    model = AerithForConditionalGeneration(AerithConfig(**config)).eval()
    return AerithVLM(model, build_processor(model.config, build_tiny_tokenizer()), name="tiny-box-head")


def _image(seed: int, size=(64, 64)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def _instruction(task: str, prompt: str, target: str, image) -> SimpleNamespace:
    return SimpleNamespace(task=task, prompt=prompt, target=target, sample=SimpleNamespace(image=image))


def test_a_fresh_head_proposes_each_patch_as_its_box():
    side = 8
    boxes = torch.sigmoid(box_bias(side * side))
    assert torch.allclose(boxes[:, 2:], torch.full((side * side, 2), 1 / side))
    assert torch.allclose(boxes[10, :2], torch.tensor([2.5 / side, 1.5 / side]))  # row 1, column 2: x first
    head = BoxHead(input_dim=16, dim=16, query_dim=8, grid_tokens=side * side)
    torch.nn.init.zeros_(head.box[2].weight)
    torch.nn.init.zeros_(head.box[2].bias)
    _, out = head(torch.randn(2, side * side, 16), torch.randn(2, 8))
    assert torch.allclose(out[0, 10], torch.tensor([2, 1, 3, 2]) / side, atol=1e-5)


def test_target_patch_holds_the_box_centre():
    boxes = torch.tensor([[0.0, 0.0, 0.1, 0.1], [0.5, 0.26, 0.76, 0.5], [0.9, 0.9, 1.0, 1.0]])
    assert target_patches(boxes, 64).tolist() == [0, 3 * 8 + 5, 63]  # centre (0.63, 0.38): row 3, column 5


def test_generalized_iou_is_one_for_equal_boxes_and_negative_for_far_ones():
    a = torch.tensor([[0.1, 0.1, 0.3, 0.3], [0.0, 0.0, 0.1, 0.1]])
    b = torch.tensor([[0.1, 0.1, 0.3, 0.3], [0.8, 0.8, 1.0, 1.0]])
    giou = generalized_iou(a, b)
    assert giou[0].item() == pytest.approx(1.0)
    assert giou[1].item() < -0.5


def test_the_head_learns_to_find_the_patch_the_query_names():
    # Each patch carries one of four "colours"; the query names a colour; exactly one patch has it.
    # Colour one-hots alone do not say which patch: the head must match the query to the patches.
    gen = torch.Generator().manual_seed(0)
    n, side, dim = 256, 8, 16
    head = BoxHead(input_dim=dim, dim=dim, query_dim=4, grid_tokens=side * side, layers=1)
    colours = torch.eye(4)

    def batch():
        target_colour = torch.randint(0, 4, (n,), generator=gen)
        grid = torch.zeros(n, side * side, dim)
        others = (target_colour.unsqueeze(1) + torch.randint(1, 4, (n, side * side), generator=gen)) % 4
        grid[:, :, :4] = colours[others]
        where = torch.randint(0, side * side, (n,), generator=gen)
        grid[torch.arange(n), where, :4] = colours[target_colour]
        cx, cy = (where % side + 0.5) / side, (where // side + 0.5) / side
        half = 0.3 / side
        targets = torch.stack([cx - half, cy - half, cx + half, cy + half], dim=1)
        return grid, colours[target_colour], targets, where

    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    for _ in range(150):
        grid, query, targets, _ = batch()
        scores, boxes = head(grid, query)
        loss = head.loss(scores, boxes, targets) / n
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        grid, query, targets, where = batch()
        scores, boxes = head(grid, query)
        found = (scores.argmax(dim=1) == where).float().mean().item()
        iou = generalized_iou(BoxHead.best(scores, boxes), targets)
    assert found > 0.9
    assert (iou > 0.5).float().mean().item() > 0.8


def test_collate_marks_the_prompts_last_token_and_reads_the_box_from_the_target():
    vlm = _tiny(box_head=True)
    rows = [
        _instruction("vg", "[VG] Locate: the red car", "[100, 200, 300, 400]", _image(0)),
        _instruction("cap", "[CAP] Describe this image.", "A red car.", _image(1)),
    ]
    batch = collate_aerith_sft(vlm.processor, rows, 256, with_boxes=True)
    first_answer = int((batch["labels"][0] != IGNORE).nonzero()[0])
    assert batch["box_query_index"].tolist() == [first_answer - 1, -1]
    assert batch["box_targets"][0].tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert "box_query_index" not in collate_aerith_sft(vlm.processor, rows, 256)


@pytest.mark.parametrize("target", ["[100, 200, 300]", "the car", "[100, 200, 1300, 400]", "[300, 200, 100, 400]"])
def test_collate_refuses_a_grounding_target_that_is_not_one_box(target):
    vlm = _tiny(box_head=True)
    rows = [_instruction("vg", "[VG] Locate: the red car", target, "scenes/0042.png")]
    with pytest.raises(ValueError, match=r"scenes/0042\.png: grounding target"):
        collate_aerith_sft(vlm.processor, rows, 256, with_boxes=True)


def test_sft_loss_adds_the_weighted_box_loss():
    vlm = _tiny(box_head=True)
    rows = [
        _instruction("vg", "[VG] Locate: the red car", "[100, 200, 300, 400]", _image(0)),
        _instruction("vqa", "[VQA] How many cars?", "2", _image(1)),
    ]
    batch = collate_aerith_sft(vlm.processor, rows, 256, with_boxes=True)
    objective = CausalSFTObjective(vlm.model)
    with torch.no_grad():
        box_loss = vlm.model(**{k: v for k, v in batch.items() if k != "labels"}).box_loss
        vlm.model.config.box_loss_weight = 0.0
        plain = objective(batch)
        vlm.model.config.box_loss_weight = 2.0
        weighted = objective(batch)
    assert box_loss.item() > 0
    assert weighted.item() == pytest.approx(plain.item() + 2.0 * box_loss.item(), rel=1e-5)
    # a batch without grounding rows still gives every head parameter a gradient (DDP needs them all in every step)
    no_vg = collate_aerith_sft(vlm.processor, rows[1:], 256, with_boxes=True)
    out = vlm.model(**{k: v for k, v in no_vg.items() if k != "labels"})
    assert out.box_loss.item() == 0
    out.box_loss.backward()
    assert all(p.grad is not None for p in vlm.model.box_head.parameters())
    # a frozen head's loss is left out of the objective
    vlm.model.box_head.requires_grad_(False)
    with torch.no_grad():
        assert objective(batch).item() == pytest.approx(plain.item(), rel=1e-5)


def test_training_and_inference_read_the_same_query_state():
    # training: right padding, the query at the prompt's last token; inference: left padding, the last position
    vlm = _tiny(box_head=True)
    images = [_image(0), _image(1)]
    prompts = ["[VG] Locate: the red car", "[VG] Find the region that matches: the small white building at the top left"]
    rows = [_instruction("vg", p, "[100, 200, 300, 400]", im) for p, im in zip(prompts, images)]
    batch = collate_aerith_sft(vlm.processor, rows, 256, with_boxes=True)
    assert batch["attention_mask"][0].sum() < batch["attention_mask"][1].sum()  # different lengths
    with torch.no_grad():
        out = vlm.model(**{k: v for k, v in batch.items() if k not in ("labels", "box_targets")})
        trained = BoxHead.best(out.box_scores, out.pred_boxes)
        inputs = vlm.processor(images=images, prompts=prompts, padding_side="left")
        located = vlm.model.locate(inputs["input_ids"], inputs["pixel_values"], inputs["dino_pixel_values"], inputs["attention_mask"])
        torch.testing.assert_close(located, trained, rtol=1e-4, atol=1e-5)
        right = vlm.processor(images=images, prompts=prompts, padding_side="right")
        with pytest.raises(ValueError, match="pad the batch on the left"):
            vlm.model.locate(right["input_ids"], right["pixel_values"], right["dino_pixel_values"], right["attention_mask"])


def test_grounding_prompts_are_answered_by_the_head_in_box_text():
    vlm = _tiny(box_head=True)
    images = [_image(0), _image(1, (80, 48)), _image(2)]
    prompts = ["[VG] Locate: the red car", "[CAP] Describe this image.", "[VG] Locate: the tree"]
    mixed = vlm.generate(images, prompts, max_new_tokens=4)
    alone = [vlm.generate(im, p, max_new_tokens=4) for im, p in zip(images, prompts)]
    assert mixed == alone  # order kept; a batch of one gives the same answer
    inputs = vlm.processor(images=images[:1], prompts=prompts[:1], padding_side="left")
    box = vlm.model.locate(inputs["input_ids"], inputs["pixel_values"], inputs["dino_pixel_values"], inputs["attention_mask"])
    assert mixed[0] == "[" + ", ".join(str(round(float(v) * 1000)) for v in box[0]) + "]"
    assert vlm.ground(images[0], "the red car") and len(vlm.ground(images[0], "the red car")) == 1
    # the head answers without the language model generating; other prompts still generate
    def no_generation(*args, **kwargs):
        raise AssertionError("generate was called")

    vlm.model.generate = no_generation
    assert vlm.generate(images[0], prompts[0]) == mixed[0]
    with pytest.raises(AssertionError, match="generate was called"):
        vlm.generate(images[1], prompts[1])


@pytest.mark.parametrize("source", ["clip", "fused"])
def test_the_head_reads_the_grid_its_config_names(source):
    vlm = _tiny(box_head=True, box_head_input=source)
    inputs = vlm.processor(images=[_image(0)], prompts=["[VG] Locate: the red car"], padding_side="left")
    fused, grid = vlm.model.grids_and_box_input(inputs["pixel_values"], inputs["dino_pixel_values"])
    clip = vlm.model.clip_patch_features(inputs["pixel_values"])[0]
    torch.testing.assert_close(grid, clip if source == "clip" else fused[0])
    torch.testing.assert_close(fused[0], vlm.model.image_grids(inputs["pixel_values"], inputs["dino_pixel_values"])[0])
    assert vlm.model.box_head.input_proj.in_features == grid.shape[-1]
    assert isinstance(vlm.generate(_image(0), "[VG] Locate: the red car"), str)


def test_box_head_saves_and_reloads_to_identical_boxes(tmp_path):
    vlm = _tiny(box_head=True)
    image = _image(3)
    before = vlm.generate(image, "[VG] Locate: the red car")
    vlm.save_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["box_head"] is True
    loaded = AerithVLM.from_pretrained(tmp_path / "m", device="cpu")
    assert loaded.model.box_head is not None
    assert loaded.generate(image, "[VG] Locate: the red car") == before


def test_bad_box_head_settings_are_refused():
    config = get_preset("aerith-tiny").make_config().to_dict()
    with pytest.raises(TypeError, match="box_head must be bool"):
        AerithConfig(**{**config, "box_head": "true"})
    with pytest.raises(ValueError, match="box_head_input must be one of"):
        AerithConfig(**{**config, "box_head_input": "dino"})
    with pytest.raises(ValueError, match="fusion 'dino' does not compute"):
        AerithConfig(**{**config, "fusion": "dino", "box_head": True})
    assert AerithConfig(**{**config, "fusion": "dino"}).box_head is False  # no head, nothing to refuse
    for weight in (-1, float("nan")):
        with pytest.raises(ValueError, match="box_loss_weight must be a finite number >= 0"):
            AerithConfig(**{**config, "box_loss_weight": weight})
    plain = _tiny()
    inputs = plain.processor(images=[_image(0)], prompts=["[VG] Locate: x"], padding_side="left")
    with pytest.raises(ValueError, match="no box head"):
        plain.model.locate(inputs["input_ids"], inputs["pixel_values"], inputs["dino_pixel_values"])
    with pytest.raises(ValueError, match="build the model with one"):
        Backbone("aerith", plain.model, plain.processor).set_trainable(["box_head"])
    assert Backbone("aerith", _tiny(box_head=True).model, None).set_trainable(["box_head"]) == sum(
        p.numel() for p in _tiny(box_head=True).model.box_head.parameters()
    )


def test_a_grounding_prompt_longer_than_the_model_holds_is_refused_naming_it():
    vlm = _tiny(box_head=True)
    limit = vlm.model.config.text_config.max_position_embeddings
    long = "[VG] Locate: " + " ".join(["the red car"] * limit)
    with pytest.raises(ValueError, match=rf"prompt 1: \d+ tokens .* exceed the language model's {limit} positions; shorten the prompt$"):
        vlm.generate([_image(0), _image(1)], ["[VG] Locate: the red car", long])
