"""Fake RSVG in the line-file layout (``{split}.csv`` + ``images/``); the XML layout is DIOR-RSVG's."""

from pathlib import Path

import numpy as np
from PIL import Image


def write_fake(root: Path, seed: int = 0) -> Path:
    folder = Path(root) / "RSVG"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / "images" / f"{i:05d}.jpg")
    (folder / "train.csv").write_text(
        "image,xmin,ymin,xmax,ymax,expression\n"
        "00000.jpg,1,2,10,12,the vehicle on the left\n"
        "00001.jpg,4,4,20,20,a storage tank, round and white\n"
    )
    (folder / "val.csv").write_text("00002.jpg,0,0,5,5,the small bridge\n")
    (folder / "test.csv").write_text("00002.jpg,6,6,30,30,the large harbor\n")
    return Path(root)
