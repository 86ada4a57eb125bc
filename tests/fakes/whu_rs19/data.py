"""Fake WHU-RS19 with the quirks of the copies in circulation.

``WHU-RS19/<folder>/<name><sep>NN.jpg``, three 16x16 JPEGs per class. Folder
casing is mixed (``footballField`` camelCase, ``railwaystation`` lower case,
``Airport`` capitalised, ``beach`` lower case) and file separators alternate
between ``_`` and ``-`` (``airport_01.jpg``, ``beach-01.jpg``). A
``Thumbs.db`` and a ``.DS_Store`` sit among the images, as in copies unpacked
on Windows and macOS.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

FOLDERS = (
    "Airport", "beach", "Bridge", "commercial", "Desert", "farmland", "footballField", "Forest",
    "industrial", "Meadow", "mountain", "Park", "parking", "Pond", "port", "railwaystation",
    "Residential", "river", "Viaduct",
)  # fmt: skip
PER_CLASS = 3


def write_fake(root: Path, seed: int = 0) -> Path:
    """Write the fake dataset under ``root`` and return ``root / "WHU-RS19"``."""
    rng = np.random.default_rng(seed)
    base = root / "WHU-RS19"
    for i, folder in enumerate(FOLDERS):
        (base / folder).mkdir(parents=True, exist_ok=True)
        sep = "_" if i % 2 == 0 else "-"
        for n in range(1, PER_CLASS + 1):
            pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(base / folder / f"{folder.lower()}{sep}{n:02d}.jpg", format="JPEG")
    (base / "Airport" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0 not an image")
    (base / "beach" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    return base
