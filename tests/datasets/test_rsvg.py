import pytest

from aerith.data import DatasetNotFoundError, RecordError, SkippedRecordsWarning, load_dataset
from tests.data.dior_rsvg.data import write_fake as fake_dior
from tests.data.rsvg.data import write_fake


def test_line_files(tmp_path):
    root = write_fake(tmp_path)
    train = load_dataset("rsvg", root, "train")
    assert [s.prompt for s in train] == ["the vehicle on the left", "a storage tank, round and white"]
    assert train[1].box == (4.0, 4.0, 20.0, 20.0) and train[1].task == "vg"
    assert len(load_dataset("rsvg", root / "RSVG", "test")) == 1


def test_voc_layout_read_by_dior_rules(tmp_path):
    root = fake_dior(tmp_path) / "DIOR_RSVG"
    assert [s.meta["object_index"] for s in load_dataset("rsvg", root, "train")] == [0, 2, 3, 5]


def test_bad_lines(tmp_path):
    root = write_fake(tmp_path) / "RSVG"
    (root / "val.csv").write_text("00002.jpg,0,0,0,5,flat\n00002.jpg,x,0,5,5,bad\nmissing.jpg,0,0,5,5,gone\n00002.jpg,0,0,5,5,ok\n")
    with pytest.raises(RecordError, match=r"val.csv: record 1, field 'box'"):
        load_dataset("rsvg", root, "val")
    with pytest.warns(SkippedRecordsWarning, match="skipped 3"):
        assert len(load_dataset("rsvg", root, "val", on_bad="skip")) == 1
    with pytest.raises(DatasetNotFoundError, match="val.csv"):
        load_dataset("rsvg", tmp_path / "RSVG" / "images", "val")
