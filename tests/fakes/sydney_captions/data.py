"""Fake Sydney-Captions: ``Sydney_captions/dataset.json`` with ``images/N.tif``, five distinct captions per image."""

from pathlib import Path

from tests.fakes.rsicd.data import fake_records, write_karpathy


def write_fake(root: Path, seed: int = 0) -> Path:
    """Write ``root/Sydney_captions`` (6 TIFF images split 3/1/2) and return ``root``."""
    records = fake_records(seed, [f"{i}.tif" for i in range(1, 7)], unique=5)
    write_karpathy(Path(root) / "Sydney_captions", json_name="dataset.json", image_dir="images", records=records)
    return Path(root)
