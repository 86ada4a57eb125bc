"""Behaviour shared by the one-folder-per-class loaders, checked on the UCM and AID fakes."""

import shutil

import pytest
from PIL import Image

from aerith.data import DatasetNotFoundError, ImageReadError, RecordError, SkippedRecordsWarning
from aerith.data.datasets.aid import AID
from aerith.data.datasets.folder import class_key, find_child, is_image_file
from aerith.data.datasets.ucm import UCMerced
from aerith.imageio import load_rgb
from tests.fakes.aid.data import write_fake as write_aid
from tests.fakes.ucm.data import write_fake as write_ucm

ALL = (1.0, 0.0, 0.0)  # every image in "train"


def test_class_key_and_find_child(tmp_path):
    assert (
        class_key("Railway-Station") == class_key("railway_station") == class_key("railway station") == "railwaystation"
    )
    (tmp_path / "ucmerced_landuse").mkdir()
    assert find_child(tmp_path, "UCMerced_LandUse") == tmp_path / "ucmerced_landuse"
    assert find_child(tmp_path, "Images") is None


def test_missing_root_names_path(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="nowhere"):
        UCMerced(tmp_path / "nowhere")


def test_root_without_class_folders_says_what_was_expected(tmp_path):
    (tmp_path / "something").mkdir()
    with pytest.raises(DatasetNotFoundError) as info:
        UCMerced(tmp_path)
    assert str(tmp_path) in str(info.value) and "UCMerced_LandUse/Images/" in str(info.value)


def test_missing_class_folder_raises_or_counts(tmp_path):
    root = write_ucm(tmp_path)
    shutil.rmtree(root / "UCMerced_LandUse" / "Images" / "river")
    with pytest.raises(DatasetNotFoundError, match="river"):
        UCMerced(root)
    with pytest.warns(SkippedRecordsWarning, match="skipped 1"):
        ds = UCMerced(root, on_bad="skip", ratios=ALL)
    assert len(ds) == 80 and ds.skipped == 1
    assert "river" not in {s.targets[0] for s in ds}


def test_unknown_folder_raises_or_counts(tmp_path):
    root = write_ucm(tmp_path)
    (root / "UCMerced_LandUse" / "Images" / "volcano").mkdir()
    (root / "UCMerced_LandUse" / "Images" / ".thumbnails").mkdir()  # hidden: not a class folder
    (root / "UCMerced_LandUse" / "Images" / "__MACOSX").mkdir()  # zip leftover
    with pytest.raises(RecordError, match="volcano") as info:
        UCMerced(root)
    assert "unknown class folder" in str(info.value)
    with pytest.warns(SkippedRecordsWarning, match="skipped 1"):
        assert len(UCMerced(root, on_bad="skip", ratios=ALL)) == 84


def test_two_folders_for_one_class(tmp_path):
    root = write_ucm(tmp_path)
    images = root / "UCMerced_LandUse" / "Images"
    shutil.copytree(images / "beach", images / "Beach")
    with pytest.raises(RecordError, match="second folder"):
        UCMerced(root)


def test_images_taken_by_content(tmp_path):
    root = write_aid(tmp_path)
    forest = root / "Forest"
    Image.new("RGB", (8, 8)).save(forest / "no_extension", format="PNG")
    (forest / "notes.txt").write_text("collected 2016")
    (forest / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    assert is_image_file(forest / "no_extension") and not is_image_file(forest / "notes.txt")
    with pytest.warns(SkippedRecordsWarning, match=r"aid \(train\): left out 1 file\(s\) that are not TIFF, JPEG or PNG images \(1 '.txt'; e.g. .*notes.txt\)"):
        ds = AID(root, ratios=ALL)  # Thumbs.db is a system file: passed over, not counted
    assert len(ds) == 91
    names = {s.image.name for s in ds}
    assert "no_extension" in names and "notes.txt" not in names and "Thumbs.db" not in names


def test_unreadable_image_found_when_read_or_verified(tmp_path):
    root = write_ucm(tmp_path)
    bad = root / "UCMerced_LandUse" / "Images" / "beach" / "beach02.tif"
    bad.write_bytes(b"II*\x00 truncated")
    ds = UCMerced(root, ratios=ALL)  # indexing does not open images
    sample = next(s for s in ds if s.image == bad)
    with pytest.raises(ImageReadError, match="beach02.tif"):
        load_rgb(sample.image)
    with pytest.raises(RecordError) as info:
        UCMerced(root, ratios=ALL, verify_images=True)
    assert "beach02.tif" in str(info.value) and "'image'" in str(info.value)
    with pytest.warns(SkippedRecordsWarning, match="skipped 1"):
        assert len(UCMerced(root, ratios=ALL, verify_images=True, on_bad="skip")) == 83


def test_image_formats_a_loader_leaves_out_are_counted(tmp_path):
    root = write_aid(tmp_path)
    Image.new("RGB", (8, 8)).save(root / "Beach" / "beach_9.bmp")
    Image.new("RGB", (8, 8)).save(root / "Beach" / "beach_10.gif")
    Image.new("RGB", (8, 8)).save(root / "Desert" / "desert_9.bmp")
    (root / "Desert" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    with pytest.warns(SkippedRecordsWarning, match=r"left out 3 file\(s\) that are not TIFF, JPEG or PNG images \(2 '.bmp', 1 '.gif'"):
        assert len(AID(root, ratios=ALL)) == 90
    with pytest.warns(SkippedRecordsWarning, match="left out 3 file"):  # on_bad does not change it: a count, not an error
        assert len(AID(root, ratios=ALL, on_bad="skip")) == 90


def test_an_empty_class_folder_is_named_or_counted(tmp_path):
    root = write_ucm(tmp_path)
    river = root / "UCMerced_LandUse" / "Images" / "river"
    for image in river.iterdir():
        image.unlink()
    (river / "readme.txt").write_text("images removed")
    with pytest.raises(RecordError, match=r"river: record 'river': empty class folder: no TIFF, JPEG or PNG image in it"):
        UCMerced(root, ratios=ALL)
    with pytest.warns(SkippedRecordsWarning) as caught:
        ds = UCMerced(root, ratios=ALL, on_bad="skip")
    messages = " | ".join(str(w.message) for w in caught)
    assert len(ds) == 80 and "skipped 1 bad record" in messages and "empty class folder" in messages
    assert "left out 1 file(s)" in messages and "readme.txt" in messages
