"""Fake RSICap: ``dataset/RSICap/captions.json`` with string image ids, PNG crops in ``images/``."""

import json
from pathlib import Path

import numpy as np
from PIL import Image


def write_fake(root: Path, seed: int = 0) -> Path:
    folder = Path(root) / "dataset" / "RSICap"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    anns = []
    for i in range(3):
        name = f"P{378 + i:04d}_0001.png"
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / "images" / name)
        anns.append({"image_id": str(i), "filename": name, "text_input": "Describe the image in detail.", "text_output": f"This is scene {i} with many buildings."})
    (folder / "captions.json").write_text(json.dumps({"annotations": anns}))
    return Path(root)
