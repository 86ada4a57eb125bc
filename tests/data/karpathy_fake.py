"""Writer of fake Karpathy-format caption sets (RSICD, UCM-Captions, Sydney-Captions, RSITMD)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

SPLITS = ("train", "train", "train", "val", "test", "test")
WORDS = ("many", "green", "trees", "buildings", "a", "river", "planes", "are", "near", "the", "road")


def write_karpathy(
    folder: Path,
    *,
    json_name: str,
    image_dir: str,
    ext: str,
    seed: int,
    duplicate_to_five: bool = True,
    empty_raw: bool = False,
) -> Path:
    """Write six images with captions; returns ``folder``. Quirks: " ." endings, duplicates, an empty raw."""
    rng = np.random.default_rng(seed)
    (folder / image_dir).mkdir(parents=True, exist_ok=True)
    images, sentid = [], 0
    for i, split in enumerate(SPLITS):
        filename = f"{i + 1}{ext}" if ext == ".tif" else f"scene_{i + 1}{ext}"
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / image_dir / filename)
        unique = [" ".join(rng.choice(WORDS, 5)) + " ." for _ in range(2 if duplicate_to_five else 5)]
        raws = (unique * 3)[:5] if duplicate_to_five else unique
        if empty_raw and i == 0:
            raws[1] = ""
        sentences = [{"tokens": r.split(), "raw": r, "imgid": i, "sentid": sentid + j} for j, r in enumerate(raws)]
        images.append({"filename": filename, "imgid": i, "split": split, "sentids": [s["sentid"] for s in sentences], "sentences": sentences})
        sentid += len(raws)
    (folder / json_name).write_text(json.dumps({"images": images, "dataset": "fake"}))
    return folder
