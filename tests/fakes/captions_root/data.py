"""A root holding UCM-Captions and Sydney-Captions side by side: both name their file ``dataset.json``.

``size="release"`` writes each file with the release's record count and
numbered names (2,100 ``N.tif`` for UCM, 613 for Sydney, split 80/10/10; the
images are hard links to one small TIFF, so it stays fast), which identifies
each file by its content alone; ``size="small"`` writes six records each, as
the per-dataset fakes do, so only the ``dataset`` field or the folder names
can tell them apart. ``dataset_field=False`` leaves the field out (whether the
released files carry one, and its value, is unconfirmed).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from tests.fakes.rsicd.data import fake_records, write_karpathy

RELEASE_SIZES = {"ucm": 2100, "sydney": 613}


def _release_file(folder: Path, json_name: str, image_dir: str, n: int, field: str | None) -> None:
    """``n`` numbered images (hard links to one TIFF) with one caption each, split 80/10/10 by number."""
    images = folder / image_dir
    images.mkdir(parents=True, exist_ok=True)
    source = folder / "source.tif"
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(source)
    records = []
    for i in range(1, n + 1):
        os.link(source, images / f"{i}.tif")
        split = "train" if i % 10 < 8 else ("val" if i % 10 == 8 else "test")
        sentence = {"tokens": ["image", str(i)], "raw": f"image {i} of {folder.name} .", "imgid": i - 1, "sentid": i - 1}
        records.append({"filename": f"{i}.tif", "imgid": i - 1, "split": split, "sentids": [i - 1], "sentences": [sentence]})
    source.unlink()
    data: dict = {"images": records}
    if field is not None:
        data["dataset"] = field
    (folder / json_name).write_text(json.dumps(data))


def write_fake(
    root: Path, seed: int = 0, *, folders: tuple[str, str] = ("UCM_captions", "Sydney_captions"), size: str = "small", dataset_field: bool = True
) -> Path:
    """Write ``root/<folders[0]>`` (UCM-Captions, ``imgs/``) and ``root/<folders[1]>`` (Sydney-Captions, ``images/``); returns ``root``."""
    root = Path(root)
    ucm, sydney = root / folders[0], root / folders[1]
    if size == "release":
        _release_file(ucm, "dataset.json", "imgs", RELEASE_SIZES["ucm"], "ucm" if dataset_field else None)
        _release_file(sydney, "dataset.json", "images", RELEASE_SIZES["sydney"], "sydney" if dataset_field else None)
        return root
    names = [f"{i}.tif" for i in range(1, 7)]
    write_karpathy(ucm, json_name="dataset.json", image_dir="imgs", records=fake_records(seed, names, unique=2), dataset="ucm" if dataset_field else None)
    write_karpathy(
        sydney, json_name="dataset.json", image_dir="images", records=fake_records(seed + 1, names, unique=5), dataset="sydney" if dataset_field else None
    )
    return root
