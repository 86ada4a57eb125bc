"""Fake EuroSAT-MS in the original zip's layout.

``ds/images/remote_sensing/otherDatasets/sentinel_2/tif/<Class>/<Class>_<n>.tif``:
three 13-band 16x16 ``uint16`` GeoTIFF-like TIFFs per class with the bands
stored B01..B12 and **B8A last**, as in the real files. Most are written
pixel-interleaved ``(H, W, 13)``, ``<Class>_3.tif`` band-planar ``(13, H, W)``.

Bands carry patterns that tell them apart: B04 (index 3) rises left to right,
B03 (index 2) rises top to bottom, B02 (index 1) is a checkerboard, B08
(index 7) and B8A (index 12) fall right to left; the others are noise.
``split_files=True`` writes torchgeo's ``eurosat-{split}.txt`` (naming ``.jpg``
files) beside ``ds/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from tests.fakes.eurosat.data import CLASSES, write_split_files

PER_CLASS = 3
SIZE = 16
LAYOUT = "ds/images/remote_sensing/otherDatasets/sentinel_2/tif"


def band_stack(rng: np.random.Generator) -> np.ndarray:
    """One ``(H, W, 13)`` ``uint16`` image with the patterns described above."""
    arr = rng.integers(500, 1500, (SIZE, SIZE, 13)).astype(np.uint16)
    ramp = (np.arange(SIZE, dtype=np.uint16) * 200 + 100)[None, :].repeat(SIZE, axis=0)
    arr[:, :, 3] = ramp  # B04 along x
    arr[:, :, 2] = ramp.T  # B03 along y
    checker = (np.indices((SIZE, SIZE)).sum(axis=0) % 2).astype(np.uint16)
    arr[:, :, 1] = checker * 3000 + 100  # B02
    arr[:, :, 7] = ramp[:, ::-1]  # B08
    arr[:, :, 12] = ramp[:, ::-1]  # B8A, stored last
    return arr


def write_fake(root: Path, seed: int = 0, split_files: bool = False) -> Path:
    """Write the fake dataset under ``root`` and return ``root`` (the download folder)."""
    rng = np.random.default_rng(seed)
    base = root / LAYOUT
    for cls in CLASSES:
        (base / cls).mkdir(parents=True, exist_ok=True)
        for n in range(1, PER_CLASS + 1):
            arr = band_stack(rng)
            path = base / cls / f"{cls}_{n}.tif"
            if n == PER_CLASS:
                tifffile.imwrite(path, np.moveaxis(arr, -1, 0), photometric="minisblack", planarconfig="separate")
            else:
                tifffile.imwrite(path, arr, photometric="minisblack", planarconfig="contig")
    if split_files:
        write_split_files(root)
    return root
