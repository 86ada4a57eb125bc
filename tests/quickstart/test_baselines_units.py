"""The quickstart's in-run baselines on hand-made samples (no training)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from aerith.data.sample import Sample
from aerith.quickstart.baselines import constant_box_baseline


def test_the_best_constant_box_is_searched_not_only_the_mean_box(tmp_path):
    image = tmp_path / "scene.png"
    Image.new("RGB", (64, 64)).save(image)
    # objects in two corners: the mean (and median) box sits between them and overlaps neither,
    # while a constant box on one corner scores Acc@0.5 of about a half
    corners = [(0, 0, 16, 16), (48, 48, 64, 64)]
    train = [Sample(image, "vg", "x", box=corners[i % 2]) for i in range(20)]
    test = [Sample(image, "vg", "x", box=corners[i % 2]) for i in range(10)]
    base = constant_box_baseline(train, test)
    assert base["per_box"]["mean"]["acc@0.5"] == base["per_box"]["median"]["acc@0.5"] == 0.0
    assert base["acc@0.5"] == 0.5
    assert base["mean_iou"] >= 0.5
    searched = base["boxes"]["searched (Acc@0.5)"]
    assert np.allclose(searched, [0, 0, 0.25, 0.25]) or np.allclose(searched, [0.75, 0.75, 1, 1])
