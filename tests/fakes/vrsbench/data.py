"""Fake VRSBench evaluation set in the released format.

``VRSBench/VRSBench_EVAL_{Cap,referring,vqa}.json`` are JSON lists written as
the authors' preparation notebook writes them (``indent=4``; the referring
``ground_truth`` is ``{<xmin><ymin><xmax><ymax>}`` from ``int(100 * v)`` of the
clipped corners; ``question_id`` counts the records of each file), and
``VRSBench/Images_val/<id>.png`` (64x64 here, 512x512 in the release). One
referring box is degenerate on the 0-100 grid (``x1 == x2``), as 13 of the
release's are.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 64
IMAGES = ("P0003_0004.png", "P0019_0002.png", "00012_0000.png")
CAPTIONS = (
    "The image shows a harbor with several white ships docked along a long pier. A road runs along the top.",
    "A parking lot with many cars sits next to a large building with a grey roof.",
    "An airport apron with two airplanes parked near the terminal; a taxiway crosses the image.",
)
# (image index, referring sentence, unique, obj_cls, corners x1 y1 x2 y2 x3 y3 x4 y4 normalised, size group)
REFERS = (
    (0, "The large ship at the top left of the harbor.", True, "ship", (0.10, 0.12, 0.40, 0.12, 0.40, 0.30, 0.10, 0.30), "large"),
    (0, "A small ship moored on the right side of the pier.", False, "ship", (0.70, 0.50, 0.82, 0.50, 0.82, 0.58, 0.70, 0.58), "small"),
    (1, "The white car at the bottom of the parking lot.", False, "vehicle", (0.45, 0.80, 0.52, 0.80, 0.52, 0.90, 0.45, 0.90), "small"),
    (2, "The airplane closest to the terminal.", True, "airplane", (0.20, 0.20, 0.55, 0.22, 0.53, 0.60, 0.18, 0.58), "medium"),
    (2, "The thin light pole at the right edge.", True, "windmill", (0.921, 0.40, 0.925, 0.40, 0.925, 0.55, 0.921, 0.55), ""),
)
# (image index, question, answer, type as in the file)
QAS = (
    (0, "Is there a ship in the image?", "Yes", "object existence"),
    (0, "How many ships are docked along the pier?", "3", "object quantity"),
    (0, "What color are the ships?", "White", "object color"),
    (1, "What type of scene is shown?", "Parking lot", "scene type"),
    (1, "Is this a rural or urban area?", "Urban", "rural or urban"),
    (2, "Where is the terminal located?", "At the top of the image", "object position"),
    (2, "What is the main feature of the image?", "An airport", "image"),
    (2, "Why are the airplanes parked near the terminal?", "For boarding passengers", "reasoning"),
)


def box100(corners: tuple[float, ...]) -> str:
    """The notebook's ``ground_truth`` of four corners: the clipped horizontal box, ``int(100 * v)``."""
    xs, ys = corners[0::2], corners[1::2]
    xmin, xmax = int(max(min(xs), 0) * 100), int(min(max(xs), 1) * 100)
    ymin, ymax = int(max(min(ys), 0) * 100), int(min(max(ys), 1) * 100)
    return "{" + f"<{xmin}><{ymin}><{xmax}><{ymax}>" + "}"


def write_fake(root: Path, seed: int = 0) -> Path:
    """Write ``root/VRSBench`` (3 images, 3 captions, 5 referring expressions, 8 questions) and return ``root``."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "VRSBench"
    (folder / "Images_val").mkdir(parents=True, exist_ok=True)
    for name in IMAGES:
        Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(folder / "Images_val" / name)
    cap = [
        {"image_id": IMAGES[i], "ground_truth": c, "question": "Describe the image in detail", "dataset": "RSBench", "question_id": i, "type": "caption"}
        for i, c in enumerate(CAPTIONS)
    ]
    ref = [
        {
            "image_id": IMAGES[i], "question": sentence, "ground_truth": box100(corners), "dataset": "RSBench",
            "question_id": qid, "type": "ref", "unique": unique, "obj_corner": list(corners), "obj_cls": cls,
            "obj_ids": [0], "size_group": size,
        }
        for qid, (i, sentence, unique, cls, corners, size) in enumerate(REFERS)
    ]  # fmt: skip
    vqa = [
        {"image_id": IMAGES[i], "question": q, "ground_truth": a, "dataset": "RSBench", "question_id": qid, "type": t}
        for qid, (i, q, a, t) in enumerate(QAS)
    ]
    for name, records in (("VRSBench_EVAL_Cap.json", cap), ("VRSBench_EVAL_referring.json", ref), ("VRSBench_EVAL_vqa.json", vqa)):
        (folder / name).write_text(json.dumps(records, indent=4))
    return Path(root)
