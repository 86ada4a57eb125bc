"""Fake RSVG (Sun et al. 2022) in the three layouts the loader accepts.

``layout="pth"`` (the default): the release as its authors ship it and their
data loader (a TransVG fork) reads it: ``rsvg/images/<n>.jpg`` and
``rsvg/rsvg_{train,val,test}.pth``, each a ``torch.save``d list of
``(image file, [x1, y1, x2, y2], phrase, extra)``; the boxes are written as a
list (train), a numpy array (val) and a tensor (test), all of which
``torch.load(weights_only=True)`` reads back.
``layout="xml"``: VOC XML as DIOR-RSVG (written by the DIOR-RSVG fake's
writer) with split files that list image names, with and without extension.
``layout="lines"``: per-split files of headerless lines
``image,xmin,ymin,xmax,ymax,expression``, one expression holding commas.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from tests.fakes.dior_rsvg.data import VGObject, write_voc_tree

OBJECTS: list[list[VGObject]] = [
    [("vehicle", (4, 4, 12, 10), "the vehicle 20 meters north of the bridge")],
    [("bridge", (0, 10, 32, 16), "the bridge"), ("ship", (20, 2, 28, 8), "the ship to the right of the bridge")],
    [("storagetank", (3, 3, 9, 9), "the storage tank, the one at the top left")],
    [("airplane", (10, 10, 20, 22), "the airplane in the centre")],
]
IMAGE_SPLITS = {"train": ["00001", "00002.jpg"], "val": ["00003"], "test": ["00004.xml"]}
LINE_SPLITS = {"train": [0, 1], "val": [2], "test": [3]}  # images of each split's lines


def write_lines(path: Path, rows: Sequence[tuple[str, tuple[float, float, float, float], str]]) -> Path:
    """Write headerless ``image,xmin,ymin,xmax,ymax,expression`` lines (expressions unquoted, as in the wild)."""
    path.write_text("".join(f"{image},{b[0]},{b[1]},{b[2]},{b[3]},{expr}\n" for image, b, expr in rows), encoding="utf-8")
    return path


def write_pth(path: Path, records: Sequence[tuple]) -> Path:
    """``torch.save`` a list of records, as the authors' release does."""
    import torch

    torch.save(list(records), path)
    return path


def write_fake(root: Path, seed: int = 0, *, layout: str = "pth") -> Path:
    """Write ``root/rsvg`` (``pth``) or ``root/RSVG`` (``xml``, ``lines``) and return ``root``."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / ("rsvg" if layout == "pth" else "RSVG")
    pixels = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in OBJECTS]
    if layout == "pth":
        import torch

        (folder / "images").mkdir(parents=True, exist_ok=True)
        for i, px in enumerate(pixels):
            Image.fromarray(px).save(folder / "images" / f"{i + 1:05d}.jpg")
        as_box = {"train": list, "val": lambda b: np.array(b, dtype=np.int64), "test": lambda b: torch.tensor(b)}
        for split, image_indices in LINE_SPLITS.items():
            rows = [
                (f"{i + 1:05d}.jpg", as_box[split](box), expr, category)
                for i in image_indices
                for category, box, expr in OBJECTS[i]
            ]
            write_pth(folder / f"rsvg_{split}.pth", rows)
    elif layout == "xml":
        write_voc_tree(folder, [(f"{i + 1:05d}", px, objs) for i, (px, objs) in enumerate(zip(pixels, OBJECTS))])
        for split, names in IMAGE_SPLITS.items():
            (folder / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
    elif layout == "lines":
        (folder / "images").mkdir(parents=True, exist_ok=True)
        for i, px in enumerate(pixels):
            Image.fromarray(px).save(folder / "images" / f"{i + 1:05d}.png")
        for split, image_indices in LINE_SPLITS.items():
            rows = [(f"{i + 1:05d}.png", box, expr) for i in image_indices for _, box, expr in OBJECTS[i]]
            write_lines(folder / f"{split}.txt", rows)
    else:
        raise ValueError(f"layout must be 'pth', 'xml' or 'lines', got {layout!r}")
    return Path(root)
