import numpy as np
import pytest
from PIL import Image

from aerith.infer.vlm import AerithVLM


class Scripted(AerithVLM):
    """The real facade with generate() replaced by canned answers, to test the task plumbing."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.prompts = []

    def generate(self, images, prompts, **kwargs):
        prompts = [prompts] * len(images) if isinstance(prompts, str) else list(prompts)
        if len(prompts) != len(images):
            raise ValueError("count mismatch")
        self.prompts += prompts
        return [self.answers.pop(0) for _ in images]


def _img(w=200, h=100):
    return Image.fromarray(np.zeros((h, w, 3), np.uint8))


def test_classify_maps_answer_to_class():
    vlm = Scripted(["Dense residential.", "a volcano"])
    out = vlm.classify([_img(), _img()], ["denseresidential", "forest"])
    assert out == ["denseresidential", "a volcano"]
    assert vlm.prompts[0].startswith("[CLS] Choose the category") and "denseresidential, forest" in vlm.prompts[0]


def test_ground_returns_pixel_boxes_of_the_original_image():
    vlm = Scripted(["[100, 200, 500, 1000]", "no box here"])
    boxes = vlm.ground([_img(200, 100), _img(50, 50)], ["the red roof", "a ship"])
    assert boxes == [[(20.0, 20.0, 100.0, 100.0)], []]
    assert vlm.prompts == ["[VG] Locate: the red roof", "[VG] Locate: a ship"]
    assert Scripted(["[0, 0, 1000, 1000]"]).ground(_img(10, 20), "x") == [(0.0, 0.0, 10.0, 20.0)]


def test_answer_and_caption_prompts():
    vlm = Scripted(["yes", "a harbor"])
    assert vlm.answer(_img(), "Is there a road?") == "yes"
    assert vlm.caption(_img()) == "a harbor"
    assert vlm.prompts == ["[VQA] Is there a road? Answer with a single word or phrase.", "[CAP] Describe this image."]
    with pytest.raises(ValueError):
        vlm.answer(_img(), "  ")


def test_tasks_run_on_the_tiny_model():
    vlm = AerithVLM.from_preset("aerith-tiny", device="cpu")
    img = _img(64, 64)
    assert isinstance(vlm.caption(img, max_new_tokens=4), str)
    boxes = vlm.ground([img, img], ["a", "b"], max_new_tokens=9)
    assert len(boxes) == 2 and all(isinstance(b, list) for b in boxes)
    assert vlm.classify(img, ["forest", "beach"], max_new_tokens=4)
