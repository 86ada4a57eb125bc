import pytest

from aerith.data import DataError, DatasetNotFoundError, RecordError, SkippedRecordsWarning, load_dataset
from tests.fakes.rsvg.data import write_fake


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


def test_a_stray_quote_costs_no_other_line(tmp_path):
    folder = write_fake(tmp_path, layout="lines") / "RSVG"
    (folder / "train.txt").write_text('00001.png,1,1,5,5,"the ship\n00002.png,2,2,8,8,the bridge\n00003.png,3,3,9,9,the tank\n')
    train = load_dataset("rsvg", folder, "train")
    assert [(s.meta["line"], s.prompt) for s in train] == [(1, "the ship"), (2, "the bridge"), (3, "the tank")]


def test_a_file_that_is_not_utf8_is_named_with_its_line(tmp_path):
    folder = write_fake(tmp_path, layout="lines") / "RSVG"
    (folder / "train.txt").write_bytes("00001.png,1,1,5,5,the car\n00002.png,2,2,8,8,the caf\xe9\n".encode("latin-1"))
    with pytest.raises(RecordError, match=r"train.txt: record 'line 2': not UTF-8 text \(byte 0xe9\)"):
        load_dataset("rsvg", folder, "train")


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


# --- the authors' release: rsvg/images + rsvg_{train,val,test}.pth --------------------------------


def test_pth_release_reads_every_split(tmp_path):
    root = write_fake(tmp_path)  # rsvg/images/*.jpg + rsvg_{train,val,test}.pth; boxes as list, numpy array, tensor
    train = load_dataset("rsvg", root, "train")
    assert [s.prompt for s in train] == [
        "the vehicle 20 meters north of the bridge", "the bridge", "the ship to the right of the bridge",
    ]  # fmt: skip
    assert train[1].box == (0.0, 10.0, 32.0, 16.0) and train[1].task == "vg" and train[1].image.name == "00002.jpg"
    assert train[1].meta == {"object_index": 1, "image_id": "00002", "image_size": (32, 32), "extra": ["bridge"]}
    (val,) = load_dataset("rsvg", root / "rsvg", "val")  # the folder itself as root; numpy box
    assert val.box == (3.0, 3.0, 9.0, 9.0) and val.prompt == "the storage tank, the one at the top left"
    (test,) = load_dataset("rsvg", root, "test")  # tensor box
    assert test.box == (10.0, 10.0, 20.0, 22.0)


def test_pth_folder_and_file_names_in_either_case(tmp_path):
    root = write_fake(tmp_path)
    (root / "rsvg").rename(root / "RSVG")
    (root / "RSVG" / "rsvg_val.pth").rename(root / "RSVG" / "RSVG_VAL.pth")
    (root / "RSVG" / "images").rename(root / "RSVG" / "Images")
    assert len(load_dataset("rsvg", root, "val")) == 1 and len(load_dataset("rsvg", root, "train")) == 3


def test_pth_is_never_unpickled_unrestricted(tmp_path):
    import pickle

    root = write_fake(tmp_path)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (root / "rsvg" / "rsvg_train.pth").write_bytes(pickle.dumps([("00001.jpg", [1, 1, 5, 5], "x", Payload())], protocol=2))
    with pytest.raises(RecordError, match=r"rsvg_train.pth: record None: cannot be read with torch.load\(weights_only=True\)"):
        load_dataset("rsvg", root, "train")
    assert not marker.exists()


def test_pth_bad_records_name_file_record_and_field(tmp_path):
    from tests.fakes.rsvg.data import write_pth

    root = write_fake(tmp_path)
    rows = [
        ("00001.jpg", [4, 4, 12, 10], "good", "vehicle"),
        ("00001.jpg", [4, 4, 12], "three numbers", "vehicle"),
        ("gone.jpg", [1, 1, 5, 5], "no image", "ship"),
        ("00002.jpg", [20, 2, 40, 8], "beyond the 32 px image", "ship"),
        ("00002.jpg", [20, 2, 28, 8], "", "ship"),
        ("00002.jpg", [20, 2, 28, 8]),
    ]
    write_pth(root / "rsvg" / "rsvg_train.pth", rows)
    with pytest.raises(RecordError, match=r"rsvg_train.pth: record 1, field 'box': expected \[x1, y1, x2, y2\]"):
        load_dataset("rsvg", root, "train")
    with pytest.warns(SkippedRecordsWarning, match="skipped 5 bad record") as caught:
        ds = load_dataset("rsvg", root, "train", on_bad="skip")
    assert [s.prompt for s in ds] == ["good"]
    message = str(caught[0].message)
    assert "record 2, field 'image': image 'gone.jpg' not found" in message
    write_pth(root / "rsvg" / "rsvg_train.pth", rows[3:4])
    with pytest.raises(RecordError, match=r"record 0, field 'box': .* lies outside the 32x32 image"):
        load_dataset("rsvg", root, "train")
    write_pth(root / "rsvg" / "rsvg_train.pth", rows[5:])
    with pytest.raises(RecordError, match=r"record 0: expected \(image file, \[x1, y1, x2, y2\], phrase, ...\)"):
        load_dataset("rsvg", root, "train")
    (root / "rsvg" / "rsvg_val.pth").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"rsvg_val.pth: not found; expected the RSVG val split"):
        load_dataset("rsvg", root, "val")


def test_rsvg_and_dior_rsvg_point_to_each_other(tmp_path):
    from tests.fakes.dior_rsvg.data import write_fake as fake_dior

    dior = fake_dior(tmp_path / "dior")
    with pytest.raises(DataError, match=r"DIOR_RSVG: is a DIOR-RSVG folder .* load it with 'dior-rsvg'"):
        load_dataset("rsvg", dior / "DIOR_RSVG", "train")
    with pytest.raises(DatasetNotFoundError, match=r"DIOR_RSVG is DIOR-RSVG: load it with 'dior-rsvg'"):
        load_dataset("rsvg", dior, "train")
    rsvg = write_fake(tmp_path / "rsvg")
    with pytest.raises(DatasetNotFoundError, match=r"holds rsvg_<split>.pth files: that is RSVG \(Sun et al.\), load it with 'rsvg'"):
        load_dataset("dior-rsvg", rsvg / "rsvg", "train")
