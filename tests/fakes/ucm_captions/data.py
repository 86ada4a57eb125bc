"""Fake UCM-Captions: ``UCM_captions/dataset.json`` with ``imgs/N.tif`` (the variant some copies have), padded captions."""

from pathlib import Path

from tests.fakes.rsicd.data import fake_records, write_karpathy


def write_fake(root: Path, seed: int = 0) -> Path:
    """Write ``root/UCM_captions`` (6 TIFF images split 3/1/2) and return ``root``."""
    records = fake_records(seed, [f"{i}.tif" for i in range(1, 7)], unique=2)
    write_karpathy(Path(root) / "UCM_captions", json_name="dataset.json", image_dir="imgs", records=records)
    return Path(root)
