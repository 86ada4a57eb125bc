"""Fake DIOR-RSVG: VOC-like XML with extra <object> children, object-index split files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

OBJECTS = [  # per image: (name, box, description)
    [("ship", (2, 3, 10, 12), "the ship on the left"), ("harbor", (0, 0, 30, 20), "the large harbor")],
    [("vehicle", (5, 5, 9, 9), "the small white vehicle")],
    [("storagetank", (1, 1, 6, 6), "the storage tank at the top left"), ("storagetank", (20, 20, 30, 30), "the storage tank at the bottom right"), ("chimney", (12, 2, 14, 20), "the tall chimney")],
]
SPLITS = {"train": [0, 2, 3, 5], "val": [1], "test": [4]}


def write_dior_rsvg(folder: Path, objects: list[list[tuple]], splits: dict[str, list[int]], size: int = 32, seed: int = 0) -> Path:
    """Write ``folder/{Annotations,JPEGImages}`` and the split files for the given objects."""
    rng = np.random.default_rng(seed)
    (folder / "Annotations").mkdir(parents=True, exist_ok=True)
    (folder / "JPEGImages").mkdir(exist_ok=True)
    for i, objs in enumerate(objects):
        stem = f"{i + 1:05d}"
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / "JPEGImages" / f"{stem}.jpg")
        body = "".join(
            f"<object><name>{n}</name><pose>Unspecified</pose><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
            f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox><difficult>0</difficult><description>{d}</description></object>"
            for n, b, d in objs
        )
        xml = f"<annotation><filename>{stem}.jpg</filename><size><width>{size}</width><height>{size}</height><depth>3</depth></size>{body}</annotation>"
        (folder / "Annotations" / f"{stem}.xml").write_text(xml)
    for split, indices in splits.items():
        (folder / f"{split}.txt").write_text("".join(f"{i}\n" for i in indices))
    return folder


def write_fake(root: Path, seed: int = 0) -> Path:
    write_dior_rsvg(Path(root) / "DIOR_RSVG", OBJECTS, SPLITS, seed=seed)
    return Path(root)
