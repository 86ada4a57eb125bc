"""Fake RSVQA-LR: ``RSVQA_LR/LR_split_*`` json triplets and ``Images_LR/<id>.tif``."""

from pathlib import Path

from tests.data.rsvqa_fake import write_rsvqa


def write_fake(root: Path, seed: int = 0) -> Path:
    write_rsvqa(Path(root) / "RSVQA_LR", prefix="LR", image_dir="Images_LR", splits=("train", "val", "test"), seed=seed)
    return Path(root)
