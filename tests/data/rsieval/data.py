"""Fake RSIEval: ``dataset/RSIEval/annotations.json`` with captions and QA pairs ("Yes." / "yes")."""

import json
from pathlib import Path

import numpy as np
from PIL import Image


def write_fake(root: Path, seed: int = 0) -> Path:
    folder = Path(root) / "dataset" / "RSIEval"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    anns = []
    for i in range(2):
        name = f"P{1000 + i}_0002.png"
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / "images" / name)
        pairs = [
            {"question": "Is there a ship?", "answer": "Yes." if i == 0 else "yes", "type": "presence"},
            {"question": "How many planes are there?", "answer": "3", "type": "quantity"},
        ]
        anns.append({"filename": name, "caption": f"An airport {i}.", "qa_pairs": pairs})
    (folder / "annotations.json").write_text(json.dumps({"annotations": anns}))
    return Path(root)
