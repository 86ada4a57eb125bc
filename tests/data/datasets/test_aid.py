import pytest

from aerith.data import load_dataset
from aerith.data.datasets.aid import AID
from aerith.imageio import load_rgb
from tests.fakes.aid.data import CLASSES, PER_CLASS, PNG_AS_JPG, write_fake


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_fake(tmp_path_factory.mktemp("aid"))


def test_counts_classes_and_labels(root):
    ds = AID(root, ratios=(1, 0, 0))
    assert len(ds) == len(CLASSES) * PER_CLASS
    assert AID.classes == CLASSES and len(AID.classes) == 30
    assert all(s.targets == (AID.classes[s.meta["label"]],) for s in ds)
    assert {s.targets[0] for s in ds} == set(CLASSES)


def test_png_behind_jpg_name_is_read(root):
    path = root / PNG_AS_JPG[0] / PNG_AS_JPG[1]
    assert load_rgb(path).size == (16, 16)


def test_paper_protocol_ratios_and_determinism(root):
    train = AID(root, "train", ratios=(0.2, 0.0, 0.8), seed=1)
    test = AID(root, "test", ratios=(0.2, 0.0, 0.8), seed=1)
    assert (len(train), len(test)) == (30, 60)  # 3 per class: 1 train, 2 test
    assert not {s.image for s in train} & {s.image for s in test}
    assert [s.image for s in train] == [s.image for s in AID(root, "train", ratios=(0.2, 0.0, 0.8), seed=1)]


def test_parent_folder_as_root(root):
    assert len(load_dataset("aid", root.parent, "test")) == len(AID(root, "test"))
