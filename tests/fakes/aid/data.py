"""Fake AID in its real layout: ``AID/<ClassFolder>/<lowercaseclass>_<n>.jpg``.

Three 16x16 JPEGs per class, ``n`` from 1, CamelCase folders and lower-case
files. Quirk: ``Airport/airport_3.jpg`` is a PNG behind a ``.jpg`` name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = (
    "Airport", "BareLand", "BaseballField", "Beach", "Bridge", "Center", "Church", "Commercial",
    "DenseResidential", "Desert", "Farmland", "Forest", "Industrial", "Meadow", "MediumResidential",
    "Mountain", "Park", "Parking", "Playground", "Pond", "Port", "RailwayStation", "Resort", "River",
    "School", "SparseResidential", "Square", "Stadium", "StorageTanks", "Viaduct",
)  # fmt: skip
PER_CLASS = 3
PNG_AS_JPG = ("Airport", "airport_3.jpg")


def write_fake(root: Path, seed: int = 0) -> Path:
    """Write the fake dataset under ``root`` and return ``root / "AID"`` (the dataset folder itself)."""
    rng = np.random.default_rng(seed)
    base = root / "AID"
    for cls in CLASSES:
        (base / cls).mkdir(parents=True, exist_ok=True)
        for n in range(1, PER_CLASS + 1):
            name = f"{cls.lower()}_{n}.jpg"
            pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            fmt = "PNG" if (cls, name) == PNG_AS_JPG else "JPEG"
            Image.fromarray(pixels, "RGB").save(base / cls / name, format=fmt)
    return base
