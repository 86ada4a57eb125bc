"""Fake RSITMD in its real layout (Karpathy JSON); see tests/data/karpathy_fake.py for the quirks."""

from pathlib import Path

from tests.data.karpathy_fake import write_karpathy


def write_fake(root: Path, seed: int = 0) -> Path:
    """Write the fake under ``root/RSITMD`` and return ``root`` (the folder a user passes)."""
    write_karpathy(Path(root) / "RSITMD", json_name="dataset_rsitmd.json", image_dir="images", ext=".jpg", seed=seed, duplicate_to_five=False, empty_raw=True)
    return Path(root)
