import pytest

from aerith.data import DatasetNotFoundError, RecordError, SkippedRecordsWarning, load_dataset
from tests.data.rsvg.data import write_fake


def test_xml_layout_with_image_name_splits(tmp_path):
    root = write_fake(tmp_path, layout="xml")
    train = load_dataset("rsvg", root, "train")  # lines "00001" and "00002.jpg": every object of both images
    assert [s.prompt for s in train] == [
        "the vehicle 20 meters north of the bridge", "the bridge", "the ship to the right of the bridge",
    ]  # fmt: skip
    assert train[2].box == (20.0, 2.0, 28.0, 8.0) and train[2].task == "vg" and train[2].targets == ()
    assert train[2].meta == {"object_index": 2, "category": "ship", "image_id": "00002", "image_size": (32, 32)}
    (test,) = load_dataset("rsvg", root / "RSVG", "test")  # the line "00004.xml"
    assert test.meta["object_index"] == 4 and test.image.name == "00004.jpg"


def test_xml_layout_with_object_index_splits(tmp_path):
    folder = write_fake(tmp_path, layout="xml") / "RSVG"
    (folder / "val.txt").write_text("0\n2\n")
    assert [s.meta["object_index"] for s in load_dataset("rsvg", folder, "val")] == [0, 2]
    (folder / "val.txt").write_text("00001\n00003\n")  # digits naming annotation files: images, unless told
    assert len(load_dataset("rsvg", folder, "val")) == 2
    assert [s.meta["object_index"] for s in load_dataset("rsvg", folder, "val", split_by="object")] == [1, 3]
    (folder / "val.txt").write_text("4\n7\n")
    with pytest.warns(SkippedRecordsWarning, match="skipped 1 .*beyond the 5 objects"):
        assert len(load_dataset("rsvg", folder, "val", on_bad="skip")) == 1
    with pytest.raises(ValueError, match="split_by"):
        load_dataset("rsvg", folder, "val", split_by="lines")


def test_line_layout_headerless_with_commas_in_expressions(tmp_path):
    root = write_fake(tmp_path, layout="lines")
    train = load_dataset("rsvg", root, "train")
    assert len(train) == 3 and train[1].prompt == "the bridge" and train[1].box == (0.0, 10.0, 32.0, 16.0)
    assert train[1].meta == {"line": 2, "image_id": "00002", "image_size": (32, 32)}
    (val,) = load_dataset("rsvg", root / "RSVG", "val")
    assert val.prompt == "the storage tank, the one at the top left" and val.image.parent.name == "images"


def test_csv_with_header_per_split_and_combined(tmp_path):
    folder = write_fake(tmp_path, layout="lines") / "RSVG"
    for split in ("train", "val", "test"):
        (folder / f"{split}.txt").unlink()
    (folder / "val.csv").write_text('filename,x1,y1,x2,y2,sentence,class\nimages/00001.png,1,2,3,4,"a car, red",vehicle\n')
    (val,) = load_dataset("rsvg", folder, "val")
    assert val.prompt == "a car, red" and val.box == (1.0, 2.0, 3.0, 4.0) and val.meta["category"] == "vehicle"
    (folder / "val.csv").unlink()
    (folder / "annotations.csv").write_text(
        "\ufeffimage\txmin\tymin\txmax\tymax\texpression\tsplit\n"
        "00001.png\t1\t1\t5\t5\tthe car\ttrain\n00002.png\t2\t2\t6\t6\tthe ship\tvalidation\n00003.png\t0\t0\t9\t9\tthe tank\ttest\n"
    )
    assert [s.prompt for s in load_dataset("rsvg", tmp_path, "val")] == ["the ship"]
    assert [s.prompt for s in load_dataset("rsvg", tmp_path, "train")] == ["the car"]


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ("00001.png,1,1,1,9,a flat box", "box", "zero or negative area"),
        ("00001.png,1,1,40,9,too wide", "box", "outside the 32x32 image"),
        ("00001.png,1,x,4,9,not a number", "ymin", "not a finite number"),
        ("00001.png,1,1,4,9,", "expression", "missing or empty"),
        ("gone.png,1,1,4,9,the lost one", "image", "'gone.png' not found"),
    ],
)
def test_bad_lines_name_file_record_and_field(tmp_path, line, field, message):
    folder = write_fake(tmp_path, layout="lines") / "RSVG"
    with (folder / "train.txt").open("a") as f:
        f.write(line + "\n00002.png,1,2\n")
    with pytest.raises(RecordError, match=rf"train.txt: record 'line 4', field '{field}': .*{message}"):
        load_dataset("rsvg", folder, "train")
    with pytest.warns(SkippedRecordsWarning, match="skipped 2 .*line 5.*got 3 field"):
        assert len(load_dataset("rsvg", folder, "train", on_bad="skip")) == 3


def test_bad_xml_layout_inputs(tmp_path):
    folder = write_fake(tmp_path, layout="xml") / "RSVG"
    (folder / "train.txt").write_text("00001\n00009\n00001\n00002\n")
    (folder / "Annotations" / "00002.xml").write_text("<annotation><object><name>x</name>")
    with pytest.raises(RecordError, match=r"train.txt: record 'line 2': no annotation file 00009.xml"):
        load_dataset("rsvg", folder, "train")
    with pytest.warns(SkippedRecordsWarning, match="skipped 3") as caught:
        assert len(load_dataset("rsvg", folder, "train", on_bad="skip")) == 1
    assert "repeats image 00001" in str(caught[0].message) and "00002.xml" in str(caught[0].message)
    (folder / "test.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="test.txt: not found; expected the RSVG test split"):
        load_dataset("rsvg", folder, "test")


def test_missing_layout_and_header_columns(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"rsvg: not found; expected .*rsvg_\{train,val,test\}.pth.*Annotations/\*.xml.*train.csv"):
        load_dataset("rsvg", tmp_path, "train")
    (tmp_path / "train.csv").write_text("image,xmin,ymin,xmax,ymax,caption_id\n")
    with pytest.raises(RecordError, match=r"train.csv: record 'line 1', field 'expression': header .* has no 'expression'"):
        load_dataset("rsvg", tmp_path, "train")
