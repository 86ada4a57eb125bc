"""Fake RSVQA-HR: ``USGS_split_*`` json triplets (both test sets) and ``Data/<id>.tif``."""

from pathlib import Path

from tests.data.rsvqa_fake import write_rsvqa


def write_fake(root: Path, seed: int = 0) -> Path:
    splits = ("train", "val", "test", "test_phili")
    return write_rsvqa(Path(root), prefix="USGS", image_dir="Data", splits=splits, seed=seed)
