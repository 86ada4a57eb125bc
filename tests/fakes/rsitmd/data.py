"""Fake RSITMD: the lower-case ``dataset_rsitmd.json`` of some copies, ``images/``, and one empty ``raw`` caption."""

from pathlib import Path

from tests.fakes.rsicd.data import fake_records, write_karpathy


def write_fake(root: Path, seed: int = 0) -> Path:
    """Write ``root/RSITMD`` (6 images split 3/1/2; the first image's second caption is empty) and return ``root``."""
    records = fake_records(seed, [f"scene_{i}.tif" for i in range(1, 7)], unique=5)
    name, pixels, split, raws = records[0]
    records[0] = (name, pixels, split, [raws[0], "", *raws[2:]])
    write_karpathy(Path(root) / "RSITMD", json_name="dataset_rsitmd.json", image_dir="images", records=records)
    return Path(root)
