import pytest

from aerith.data import DatasetNotFoundError, RecordError, SkippedRecordsWarning, load_dataset
from tests.data.dior_rsvg.data import write_fake


def test_split_lines_are_object_indices_over_all_files(tmp_path):
    root = write_fake(tmp_path)
    train = load_dataset("dior-rsvg", root, "train")
    # objects in order: 0 ship, 1 harbor | 2 vehicle | 3 tank TL, 4 tank BR, 5 chimney
    assert [s.meta["object_index"] for s in train] == [0, 2, 3, 5]
    assert [s.prompt for s in train] == ["the ship on the left", "the small white vehicle", "the storage tank at the top left", "the tall chimney"]
    assert train[0].box == (2.0, 3.0, 10.0, 12.0) and train[0].meta["category"] == "ship"
    assert train[0].meta["image_size"] == (32, 32) and train[0].image.name == "00001.jpg"
    (test,) = load_dataset("dior-rsvg", root / "DIOR_RSVG", "test")
    assert test.meta["object_index"] == 4 and test.prompt.endswith("bottom right") and test.image.name == "00003.jpg"


def test_bad_boxes_and_fields(tmp_path):
    root = write_fake(tmp_path) / "DIOR_RSVG"
    xml = root / "Annotations" / "00003.xml"
    text = xml.read_text().replace("<xmax>6</xmax>", "<xmax>1</xmax>").replace("<description>the tall chimney</description>", "")
    xml.write_text(text)
    with pytest.raises(RecordError, match=r"00003.xml: record 'object 3', field 'bndbox'.*zero"):
        load_dataset("dior-rsvg", root, "train")
    with pytest.warns(SkippedRecordsWarning, match="skipped 2"):
        ds = load_dataset("dior-rsvg", root, "train", on_bad="skip")
    assert [s.meta["object_index"] for s in ds] == [0, 2]


def test_index_beyond_the_objects_and_missing_files(tmp_path):
    root = write_fake(tmp_path) / "DIOR_RSVG"
    (root / "val.txt").write_text("1\n99\n")
    with pytest.raises(RecordError, match="beyond the 6 objects"):
        load_dataset("dior-rsvg", root, "val")
    (root / "test.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="test.txt"):
        load_dataset("dior-rsvg", root, "test")
    (root / "JPEGImages" / "00002.jpg").unlink()
    with pytest.raises(RecordError, match="00002.jpg not found"):
        load_dataset("dior-rsvg", root, "train")
