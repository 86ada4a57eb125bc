"""Fake UC Merced Land Use in its real layout: ``UCMerced_LandUse/Images/<class>/<class>NN.tif``.

Four RGB TIFFs per class, 16x16 px, except ``agricultural01.tif`` at 247x256
like the few odd-sized originals. ``split_files=True`` also writes torchgeo's
``uc_merced-{train,val,test}.txt`` beside ``UCMerced_LandUse/`` (images 00 and
01 train, 02 val, 03 test).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = (
    "agricultural", "airplane", "baseballdiamond", "beach", "buildings", "chaparral",
    "denseresidential", "forest", "freeway", "golfcourse", "harbor", "intersection",
    "mediumresidential", "mobilehomepark", "overpass", "parkinglot", "river", "runway",
    "sparseresidential", "storagetanks", "tenniscourt",
)  # fmt: skip
PER_CLASS = 4
ODD_IMAGE = ("agricultural", "agricultural01.tif", (247, 256))  # class, file, (width, height)


def write_fake(root: Path, seed: int = 0, split_files: bool = False) -> Path:
    """Write the fake dataset under ``root`` and return ``root`` (the folder a user passes)."""
    rng = np.random.default_rng(seed)
    images = root / "UCMerced_LandUse" / "Images"
    lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for cls in CLASSES:
        (images / cls).mkdir(parents=True, exist_ok=True)
        for n in range(PER_CLASS):
            name = f"{cls}{n:02d}.tif"
            width, height = ODD_IMAGE[2] if (cls, name) == ODD_IMAGE[:2] else (16, 16)
            pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(images / cls / name, format="TIFF")
            lists["train" if n < 2 else "val" if n == 2 else "test"].append(name)
    if split_files:
        for split, names in lists.items():
            (root / f"uc_merced-{split}.txt").write_text("\n".join(names) + "\n")
    return root
