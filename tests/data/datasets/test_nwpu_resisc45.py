import pytest

from aerith.data.datasets.nwpu_resisc45 import NWPURESISC45
from tests.fakes.nwpu_resisc45.data import CLASSES, PER_CLASS, write_fake


def test_counts_classes_and_labels(tmp_path):
    root = write_fake(tmp_path)
    parts = [NWPURESISC45(root, s) for s in ("train", "val", "test")]
    assert sum(map(len, parts)) == len(CLASSES) * PER_CLASS
    assert NWPURESISC45.classes == CLASSES and len(CLASSES) == 45
    assert all(s.targets == (CLASSES[s.meta["label"]],) for p in parts for s in p)


def test_torchgeo_split_files(tmp_path):
    root = write_fake(tmp_path, split_files=True)
    parts = {s: NWPURESISC45(root, s) for s in ("train", "val", "test")}
    assert [len(p) for p in parts.values()] == [45, 45, 45]
    assert all(s.image.name.endswith("_002.jpg") for s in parts["val"])
    assert "resisc45-val.txt" in parts["val"].split_source


@pytest.mark.parametrize("folder", ["NWPU_RESISC45", "nwpu-resisc45", "RESISC45"])
def test_dataset_folder_spellings(tmp_path, folder):
    root = write_fake(tmp_path)
    (root / "NWPU-RESISC45").rename(root / folder)
    assert len(NWPURESISC45(root, ratios=(1, 0, 0))) == 135
