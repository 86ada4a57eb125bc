from aerith.data.datasets.whu_rs19 import WHURS19
from tests.fakes.whu_rs19.data import FOLDERS, PER_CLASS, write_fake


def test_mixed_casing_and_separators(tmp_path):
    root = write_fake(tmp_path)
    ds = WHURS19(root, ratios=(1, 0, 0))
    assert len(ds) == len(FOLDERS) * PER_CLASS  # Thumbs.db and .DS_Store are not images
    assert len(WHURS19.classes) == 19
    by_folder = {s.meta["folder"]: s.targets[0] for s in ds}
    assert by_folder["railwaystation"] == "railwayStation"
    assert by_folder["footballField"] == "footballField"
    assert by_folder["beach"] == "Beach"
    assert all(s.targets == (WHURS19.classes[s.meta["label"]],) for s in ds)
    assert {"airport_01.jpg", "beach-01.jpg"} <= {s.image.name for s in ds}


def test_other_copy_spellings(tmp_path):
    root = write_fake(tmp_path)
    (root / "railwaystation").rename(root / "Railway-Station")
    (root / "footballField").rename(root / "football_field")
    names = {s.targets[0] for s in WHURS19(root.parent, ratios=(1, 0, 0))}
    assert {"railwayStation", "footballField"} <= names


def test_split_determinism(tmp_path):
    root = write_fake(tmp_path)
    a = [s.image for s in WHURS19(root, "test", seed=3)]
    b = [s.image for s in WHURS19(root, "test", seed=3)]
    assert a == b and len(a) == 19
