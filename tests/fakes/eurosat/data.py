"""Fake EuroSAT RGB in the original zip's layout: ``2750/<Class>/<Class>_<n>.jpg``.

Three 16x16 JPEGs per class (the real ones are 64x64), ``n`` from 1.
``split_files=True`` also writes torchgeo's ``eurosat-{train,val,test}.txt``
beside ``2750/`` (``_1`` train, ``_2`` val, ``_3`` test), naming ``.jpg`` files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = (
    "AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial",
    "Pasture", "PermanentCrop", "Residential", "River", "SeaLake",
)  # fmt: skip
PER_CLASS = 3


def write_split_files(folder: Path) -> None:
    """torchgeo-style ``eurosat-{split}.txt`` lists (``.jpg`` names) in ``folder``."""
    for n, split in enumerate(("train", "val", "test"), start=1):
        names = [f"{cls}_{n}.jpg" for cls in CLASSES]
        (folder / f"eurosat-{split}.txt").write_text("\n".join(names) + "\n")


def write_fake(root: Path, seed: int = 0, split_files: bool = False) -> Path:
    """Write the fake dataset under ``root`` and return ``root`` (the download folder)."""
    rng = np.random.default_rng(seed)
    base = root / "2750"
    for cls in CLASSES:
        (base / cls).mkdir(parents=True, exist_ok=True)
        for n in range(1, PER_CLASS + 1):
            pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(base / cls / f"{cls}_{n}.jpg", format="JPEG")
    if split_files:
        write_split_files(root)
    return root
