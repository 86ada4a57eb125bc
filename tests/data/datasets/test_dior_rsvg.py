import re
import shutil

import pytest

from aerith.data import DatasetNotFoundError, ImageReadError, RecordError, SkippedRecordsWarning, load_dataset
from aerith.imageio import load_rgb
from tests.fakes.dior_rsvg.data import write_fake


@pytest.fixture
def root(tmp_path):
    return write_fake(tmp_path) / "DIOR_RSVG"


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_split_lines_are_object_indices_over_all_files(tmp_path):
    parent = write_fake(tmp_path)
    train = load_dataset("dior-rsvg", parent, "train")
    # objects in order: 0 ship, 1 harbor | 2 vehicle | 3 tank TL, 4 tank BR, 5 chimney
    assert [s.meta["object_index"] for s in train] == [0, 2, 3, 5]
    assert [s.prompt for s in train] == [
        "the ship on the left", "the small white vehicle", "the storage tank at the top left", "the tall chimney & its shadow",
    ]  # fmt: skip
    first = train[0]
    assert first.task == "vg" and first.targets == () and first.box == (2.0, 3.0, 10.0, 12.0)
    assert first.meta == {"object_index": 0, "category": "ship", "image_id": "00001", "image_size": (32, 32)}
    assert first.image.name == "00001.jpg" and load_rgb(first.image).size == (32, 32)
    (val,) = load_dataset("dior-rsvg", parent / "DIOR_RSVG", "val")
    assert val.meta["category"] == "harbor" and val.image.name == "00001.jpg"
    (test,) = load_dataset("dior-rsvg", parent / "DIOR_RSVG", "test")
    assert test.meta["object_index"] == 4 and test.prompt.endswith("bottom right") and test.image.name == "00003.jpg"


def test_elements_are_found_by_tag_and_size_falls_back_to_the_image(root):
    xml = root / "Annotations" / "00002.xml"
    text = xml.read_text()
    # description first, a new child before <name>, no <size>: positions mean nothing
    text = text.replace("<description>the small white vehicle</description>", "")
    moved = "<truncated>0</truncated><description>the small white vehicle</description><name>vehicle</name>"
    text = re.sub(r"<size>.*?</size>", "", text.replace("<name>vehicle</name>", moved), flags=re.S)
    xml.write_text(text)
    sample = load_dataset("dior-rsvg", root, "train")[1]
    assert sample.prompt == "the small white vehicle" and sample.meta["image_size"] == (32, 32)


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ("<xmax>6</xmax>", "<xmax>1</xmax>", "bndbox", "zero or negative area"),
        ("<xmax>6</xmax>", "<xmax>40</xmax>", "bndbox", "outside the 32x32 image"),
        ("<xmin>1</xmin>", "<xmin>-3</xmin>", "bndbox", "outside"),
        ("<xmin>1</xmin>", "<xmin>one</xmin>", "xmin", "not a number"),
        ("<ymax>6</ymax>", "", "ymax", "missing"),
        ("<description>the storage tank at the top left</description>", "", "description", "missing"),
        ("<name>storagetank</name>", "<name> </name>", "name", "missing"),
    ],
)
def test_bad_objects_name_file_record_and_field(root, old, new, field, message):
    _edit(root / "Annotations" / "00003.xml", old, new)
    with pytest.raises(RecordError, match=rf"00003.xml: record 'object 3', field '{field}': .*{message}"):
        load_dataset("dior-rsvg", root, "train")
    with pytest.warns(SkippedRecordsWarning, match="skipped 1 bad record"):
        ds = load_dataset("dior-rsvg", root, "train", on_bad="skip")
    assert [s.meta["object_index"] for s in ds] == [0, 2, 5]


def test_malformed_xml_keeps_later_indices_aligned(root):
    _edit(root / "Annotations" / "00002.xml", "</annotation>", "")
    with pytest.raises(RecordError, match=r"00002.xml: record 'objects 2-2'.*malformed XML"):
        load_dataset("dior-rsvg", root, "train")
    with pytest.warns(SkippedRecordsWarning, match="skipped 1 .*1 of them in this split"):
        ds = load_dataset("dior-rsvg", root, "train", on_bad="skip")
    assert [s.meta["object_index"] for s in ds] == [0, 3, 5]  # image 3's objects keep their indices
    assert ds[1].prompt == "the storage tank at the top left"
    path = root / "Annotations" / "00002.xml"
    path.write_text('<?xml version="1.0" encoding="foo-bar"?>' + path.read_text())  # an encoding Python does not know
    with pytest.raises(RecordError, match=r"00002.xml: record 'objects 2-2'.*malformed XML .*unknown encoding"):
        load_dataset("dior-rsvg", root, "train")


@pytest.mark.parametrize("encoding", ["gb2312", "GBK", "shift_jis"])
def test_xml_declaring_a_multi_byte_encoding_is_read(root, encoding):
    # expat refuses multi-byte declared encodings with a bare ValueError (no file named)
    path = root / "Annotations" / "00002.xml"
    text = path.read_text(encoding="utf-8").replace('encoding="UTF-8"', f'encoding="{encoding}"')
    text = text.replace("the small white vehicle", "the small white vehicle \u8239")  # a CJK character
    path.write_bytes(text.encode(encoding))
    train = load_dataset("dior-rsvg", root, "train")
    assert [s.meta["object_index"] for s in train] == [0, 2, 3, 5]
    assert train[1].prompt == "the small white vehicle \u8239"
    path.write_bytes(text.encode(encoding).replace(b"</annotation>", b"\xff\xfe"))
    with pytest.raises(RecordError, match=rf"00002.xml: record 'objects 2-2'.*malformed XML"):
        load_dataset("dior-rsvg", root, "train")


def test_missing_image_is_reported_per_object_of_the_split(root):
    (root / "JPEGImages" / "00003.jpg").unlink()
    with pytest.raises(RecordError, match=r"00003.xml: record 'object 3', field 'filename': image .*00003.jpg not found"):
        load_dataset("dior-rsvg", root, "train")
    with pytest.warns(SkippedRecordsWarning, match="skipped 2"):
        assert len(load_dataset("dior-rsvg", root, "train", on_bad="skip")) == 2
    assert len(load_dataset("dior-rsvg", root, "val")) == 1  # the val object lives on another image


def test_bad_split_lines(root):
    (root / "val.txt").write_text("1\n\nx7\n1\n99\n")
    with pytest.raises(RecordError, match=r"val.txt: record 'line 3': not an object index: 'x7'"):
        load_dataset("dior-rsvg", root, "val")
    with pytest.warns(SkippedRecordsWarning, match="skipped 3") as caught:
        ds = load_dataset("dior-rsvg", root, "val", on_bad="skip")
    assert len(ds) == 1
    message = str(caught[0].message)
    assert "repeats object index 1 of line 1" in message and "beyond the 6 objects" in message


def test_missing_files_name_the_path(tmp_path, root):
    with pytest.raises(DatasetNotFoundError, match=r"DIOR_RSVG/Annotations: not found; expected the DIOR-RSVG folder"):
        load_dataset("dior-rsvg", tmp_path / "DIOR_RSVG" / "JPEGImages", "train")
    (root / "test.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="test.txt: not found; expected .*object index"):
        load_dataset("dior-rsvg", root, "test")
    with pytest.raises(DatasetNotFoundError, match="nowhere"):
        load_dataset("dior-rsvg", tmp_path / "nowhere", "test")


def test_unreadable_image_header_without_size_is_a_bad_record(root):
    xml = root / "Annotations" / "00002.xml"
    xml.write_text(re.sub(r"<size>.*?</size>", "", xml.read_text(), flags=re.S))
    (root / "JPEGImages" / "00002.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(RecordError, match=r"00002.xml: record 'object 2', field 'image': .*00002.jpg: cannot read image header"):
        load_dataset("dior-rsvg", root, "train")


def test_corrupt_image_is_reported_when_read(root):
    (root / "JPEGImages" / "00001.jpg").write_bytes(b"\xff\xd8 truncated")
    sample = load_dataset("dior-rsvg", root, "train")[0]  # <size> is there: the image is not opened to index
    with pytest.raises(ImageReadError, match=r"00001.jpg: cannot read image"):
        load_rgb(sample.image)
    shutil.rmtree(root / "JPEGImages")
    with pytest.raises(DatasetNotFoundError, match=r"JPEGImages: not found; expected the dior-rsvg image folder"):
        load_dataset("dior-rsvg", root, "train")
