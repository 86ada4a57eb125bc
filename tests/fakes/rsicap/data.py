"""Fake RSICap: ``dataset/RSICap/captions.json`` with string image ids, PNG crops in ``images/``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

INSTRUCTION = "Describe this image in detail."


def write_rsicap(root: Path, records: Sequence[tuple[str, np.ndarray, str]]) -> Path:
    """Write ``root/dataset/RSICap`` from ``(filename, pixels, caption)`` records; ids are strings "0", "1", ..."""
    folder = Path(root) / "dataset" / "RSICap"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    annotations = []
    for i, (filename, pixels, caption) in enumerate(records):
        Image.fromarray(pixels).save(folder / "images" / filename)
        annotations.append({"image_id": str(i), "filename": filename, "text_input": INSTRUCTION, "text_output": caption})
    (folder / "captions.json").write_text(json.dumps({"annotations": annotations}, indent=1))
    return Path(root)


def write_fake(root: Path, seed: int = 0) -> Path:
    """Write three 16x16 crops with one caption each and return ``root``."""
    rng = np.random.default_rng(seed)
    records = [
        (f"P{378 + i:04d}_0001.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), f"This is scene {i} with many buildings.")
        for i in range(3)
    ]
    return write_rsicap(root, records)
