"""Fake NWPU-RESISC45 in its real layout: ``NWPU-RESISC45/<class>/<class>_NNN.jpg``.

Three 16x16 JPEGs per class. ``split_files=True`` also writes torchgeo's
``resisc45-{train,val,test}.txt`` beside ``NWPU-RESISC45/`` (001 train,
002 val, 003 test).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = (
    "airplane", "airport", "baseball_diamond", "basketball_court", "beach", "bridge", "chaparral",
    "church", "circular_farmland", "cloud", "commercial_area", "dense_residential", "desert",
    "forest", "freeway", "golf_course", "ground_track_field", "harbor", "industrial_area",
    "intersection", "island", "lake", "meadow", "medium_residential", "mobile_home_park",
    "mountain", "overpass", "palace", "parking_lot", "railway", "railway_station",
    "rectangular_farmland", "river", "roundabout", "runway", "sea_ice", "ship", "snowberg",
    "sparse_residential", "stadium", "storage_tank", "tennis_court", "terrace",
    "thermal_power_station", "wetland",
)  # fmt: skip
PER_CLASS = 3


def write_fake(root: Path, seed: int = 0, split_files: bool = False) -> Path:
    """Write the fake dataset under ``root`` and return ``root`` (the download folder)."""
    rng = np.random.default_rng(seed)
    base = root / "NWPU-RESISC45"
    lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for cls in CLASSES:
        (base / cls).mkdir(parents=True, exist_ok=True)
        for n, split in zip(range(1, PER_CLASS + 1), ("train", "val", "test"), strict=True):
            name = f"{cls}_{n:03d}.jpg"
            pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(base / cls / name, format="JPEG")
            lists[split].append(name)
    if split_files:
        for split, names in lists.items():
            (root / f"resisc45-{split}.txt").write_text("\n".join(names) + "\n")
    return root
