"""The run folder's figures are drawn without pyplot, so a notebook's inline backend survives an evaluation."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image

from aerith.eval.benchmarks import Context
from aerith.eval.report import confusion_png, grounding_png

SCORES = {"classes": ["forest", "beach"], "confusion_matrix": [[3, 1], [0, 2]], "unmatched": 1, "n": 7}


def test_figures_keep_the_callers_backend_and_open_no_pyplot_figure(tmp_path: Path):
    import matplotlib.pyplot as plt

    before = matplotlib.get_backend()
    matplotlib.use("svg")  # stands in for a notebook's inline backend: anything but Agg
    try:
        image = tmp_path / "scene.png"
        Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(image)
        records = [{"image": str(image), "reference": [2, 2, 20, 20], "parsed": [[4, 4, 18, 18]], "status": "ok", "expression": "a tank"}]
        confusion_png(tmp_path / "cm.png", SCORES, "t")
        grounding_png(tmp_path / "vg.png", records, Context(), "t")
        assert matplotlib.get_backend() == "svg"
        assert plt.get_fignums() == []
    finally:
        matplotlib.use(before)
    for name in ("cm.png", "vg.png"):
        with Image.open(tmp_path / name) as png:
            assert png.format == "PNG" and png.size[0] > 100


def test_boxes_are_drawn_on_the_pixels_they_name(tmp_path: Path, monkeypatch):
    # boxes are edge coordinates; imshow's default extent put the image half a pixel up and left of them
    import aerith.eval.report as report

    drawn = []
    monkeypatch.setattr(report, "_save", lambda fig, path: drawn.append(fig))
    image = tmp_path / "scene.png"
    Image.fromarray(np.full((24, 40, 3), 90, np.uint8)).save(image)
    records = [{"image": str(image), "reference": [0, 0, 40, 24], "parsed": [[0, 0, 20, 12]], "status": "ok", "expression": "x"}]
    grounding_png(tmp_path / "vg.png", records, Context(), "t")
    ax = next(a for a in drawn[0].axes if a.images)
    assert list(ax.images[0].get_extent()) == [0, 40, 24, 0]
    reference = ax.patches[0]
    assert (reference.get_x(), reference.get_y(), reference.get_width(), reference.get_height()) == (0, 0, 40, 24)
