"""Fake RSICD in its real layout, and the Karpathy-JSON writer the other caption fakes share.

Quirks written: captions padded to five with duplicates, ``raw`` strings
ending in ``" ."``, ``tokens`` beside ``raw``, and the split in each record.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

# (filename, HxWx3 uint8 pixels, split, raw captions)
CaptionRecord = tuple[str, np.ndarray, str, Sequence[str]]

SPLITS = ("train", "train", "train", "val", "test", "test")
WORDS = ("many", "green", "trees", "buildings", "a", "river", "planes", "are", "near", "the", "road")


def write_karpathy(
    folder: Path, *, json_name: str, image_dir: str, records: Sequence[CaptionRecord], dataset: str | None = ""
) -> Path:
    """Write ``folder/<json_name>`` and ``folder/<image_dir>/<filename>`` (format from the extension); returns ``folder``.

    ``dataset``: the file's ``dataset`` field (``""``: the folder's name; ``None``: no field).
    """
    (folder / image_dir).mkdir(parents=True, exist_ok=True)
    images, sentid = [], 0
    for imgid, (filename, pixels, split, raws) in enumerate(records):
        Image.fromarray(pixels).save(folder / image_dir / filename)
        sentences = [
            {"tokens": raw.replace(".", " ").split(), "raw": raw, "imgid": imgid, "sentid": sentid + j} for j, raw in enumerate(raws)
        ]
        images.append({"filename": filename, "imgid": imgid, "split": split, "sentids": [s["sentid"] for s in sentences], "sentences": sentences})
        sentid += len(raws)
    data: dict = {"images": images}
    if dataset is not None:
        data["dataset"] = dataset or folder.name
    (folder / json_name).write_text(json.dumps(data))
    return folder


def fake_records(seed: int, names: Sequence[str], *, unique: int) -> list[CaptionRecord]:
    """One 16x16 image per name over :data:`SPLITS`; ``unique`` distinct captions ending in " .", padded to five."""
    rng = np.random.default_rng(seed)
    records = []
    for name, split in zip(names, SPLITS, strict=True):
        distinct = [" ".join(rng.choice(WORDS, 5)) + " ." for _ in range(unique)]
        records.append((name, rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), split, (distinct * 5)[:5]))
    return records


def write_fake(root: Path, seed: int = 0) -> Path:
    """Write ``root/RSICD`` (6 images split 3/1/2, two distinct captions each padded to five) and return ``root``."""
    names = ["airport_1.jpg", "airport_2.jpg", "beach_1.jpg", "beach_2.jpg", "river_1.jpg", "00001.jpg"]  # both kinds of names
    write_karpathy(Path(root) / "RSICD", json_name="dataset_rsicd.json", image_dir="RSICD_images", records=fake_records(seed, names, unique=2))
    return Path(root)
