"""Fake RSIEval: ``dataset/RSIEval/annotations.json`` with a caption and QA pairs per image ("Yes." / "yes")."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

QAPair = tuple[str, str, str]  # (question, answer, type)


def write_rsieval(root: Path, records: Sequence[tuple[str, np.ndarray, str, Sequence[QAPair]]]) -> Path:
    """Write ``root/dataset/RSIEval`` from ``(filename, pixels, caption, qa_pairs)`` records."""
    folder = Path(root) / "dataset" / "RSIEval"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    annotations = []
    for filename, pixels, caption, pairs in records:
        Image.fromarray(pixels).save(folder / "images" / filename)
        qa = [{"question": q, "answer": a, "type": t} for q, a, t in pairs]
        annotations.append({"filename": filename, "caption": caption, "qa_pairs": qa})
    (folder / "annotations.json").write_text(json.dumps({"annotations": annotations}, indent=1))
    return Path(root)


def write_fake(root: Path, seed: int = 0) -> Path:
    """Write two 16x16 images with a caption and two QA pairs each and return ``root``."""
    rng = np.random.default_rng(seed)
    records = [
        (
            f"P{1000 + i}_0002.png",
            rng.integers(0, 256, (16, 16, 3), dtype=np.uint8),
            f"An airport {i}.",
            [("Is there a ship?", "Yes." if i == 0 else "yes", "presence"), ("How many planes are there?", str(3 + i), "quantity")],
        )
        for i in range(2)
    ]
    return write_rsieval(root, records)
