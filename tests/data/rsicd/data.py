"""Fake RSICD in its real layout (Karpathy JSON); see tests/data/karpathy_fake.py for the quirks."""

from pathlib import Path

from tests.data.karpathy_fake import write_karpathy


def write_fake(root: Path, seed: int = 0) -> Path:
    """Write the fake under ``root/RSICD`` and return ``root`` (the folder a user passes)."""
    write_karpathy(Path(root) / "RSICD", json_name="dataset_rsicd.json", image_dir="RSICD_images", ext=".jpg", seed=seed, duplicate_to_five=True, empty_raw=False)
    return Path(root)
