"""Fake RSVQA-HR: ``USGS_split_*`` json triplets of both test sets (``test``, ``test_phili``) and ``Data/<id>.tif``."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.rsvqa_lr.data import fake_splits, write_rsvqa

TYPES = ("presence", "comp", "count", "area")


def write_fake(root: Path, seed: int = 0) -> Path:
    """Write the triplets in ``root`` itself (as the HR download unpacks) and return ``root``."""
    splits = fake_splits(("train", "val", "test", "test_phili"), TYPES, seed)
    return write_rsvqa(Path(root), prefix="USGS", image_dir="Data", splits=splits)
