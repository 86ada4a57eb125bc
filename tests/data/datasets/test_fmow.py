import json
import shutil
from pathlib import Path

import pytest

from aerith.data import DatasetNotFoundError, RecordError, SkippedRecordsWarning, load_dataset
from aerith.data.datasets.fmow import FMoW
from tests.fakes.fmow.data import CATEGORIES, write_fake

TRAIN_IMAGES = len(CATEGORIES) + len(CATEGORIES[::2])  # even-numbered categories have two timestamps


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_fake(tmp_path_factory.mktemp("fmow"))


def _json(path):
    return json.loads(path.read_text())


def test_counts_classes_and_rgb_only(root):
    train, val = FMoW(root, "train"), FMoW(root, "val")
    assert (len(train), len(val)) == (TRAIN_IMAGES, len(CATEGORIES))
    assert FMoW.classes == CATEGORIES and len(FMoW.classes) == 62
    assert all(s.image.stem.endswith("_rgb") and "_msrgb" not in s.image.name for s in train)
    assert all(s.targets == (FMoW.classes[s.meta["label"]],) for s in train)
    assert "official" in train.split_source


def test_boxes_visible_and_meta_from_json(root):
    train = FMoW(root, "train")
    kinds = set()
    for s in train:
        data = _json(Path(s.meta["json"]))
        boxes = data["bounding_boxes"]
        kinds.add(type(boxes).__name__)
        box = next(b for b in (boxes if isinstance(boxes, list) else [boxes]) if b["category"] == s.targets[0])
        x, y, w, h = box["box"]
        assert s.box == (x, y, x + w, y + h)
        assert s.meta["visible"] is (box["visible"] == "True")
        assert s.meta["gsd"] == data["gsd"] and s.meta["img_width"] == data["img_width"]
        assert s.meta["instance"] == s.image.parent.name
    assert kinds == {"list", "dict"}  # both shapes of bounding_boxes were read
    assert {s.meta["visible"] for s in train} == {True, False}
    port = next(s for s in train if s.targets == ("port",))
    assert port.meta["n_boxes"] == 2 and port.meta["box_id"] != 999  # the shipyard box is passed over


def test_hidden_splits_need_the_separate_labels(root):
    for split in ("test", "seq"):
        with pytest.raises(DatasetNotFoundError) as info:
            FMoW(root, split)
        message = str(info.value)
        assert f"{split}_gt_mapping.json" in message and "ship" in message and "separately" in message


def test_test_split_with_ground_truth(root):
    with pytest.warns(UserWarning, match="left out 2 'false_detection'"):
        test = FMoW(root, "test", labels=root.parent / "groundtruth")
    assert len(test) == 4
    assert {s.targets[0] for s in test} == {"dam", "zoo"}
    dam = next(s for s in test if s.targets == ("dam",))
    assert dam.image.parent.name == "0000007" and dam.meta["instance"] == "dam_5"
    assert Path(dam.meta["json"]).parent == root.parent / "groundtruth" / "test_gt" / "dam" / "dam_5"


def test_ground_truth_extracted_beside_the_splits(tmp_path):
    base = write_fake(tmp_path)
    for name in ("test_gt", "test_gt_mapping.json"):
        shutil.move(tmp_path / "groundtruth" / name, base / name)
    with pytest.warns(UserWarning, match="false_detection"):
        assert len(load_dataset("fmow", tmp_path, "test")) == 4  # download folder as root


def test_split_file_restricts(root, tmp_path):
    listed = tmp_path / "subset.txt"
    listed.write_text("airport_0_0_rgb.jpg\nzoo_61_0_rgb.jpg\n")
    assert [s.image.name for s in FMoW(root, "val", split_file=listed)] == ["airport_0_0_rgb.jpg", "zoo_61_0_rgb.jpg"]
    with pytest.raises(ValueError, match="official.*`ratios` does not apply"):
        FMoW(root, "val", ratios=(0.7, 0.1, 0.2))
    with pytest.raises(ValueError, match="official.*`seed` does not apply"):
        FMoW(root, "val", seed=3)


def _corrupt(base, category, edit):
    path = next((base / "train" / category).glob("*/*_0_rgb.json"))
    if edit is None:
        path.write_text("{not json")
    else:
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))
    return path


def _set_box(box, key="box"):
    def edit(data):
        boxes = data["bounding_boxes"]
        (boxes[-1] if isinstance(boxes, list) else boxes)[key] = box

    return edit


@pytest.mark.parametrize(
    "edit, field, words",
    [
        (None, None, "invalid JSON"),
        (lambda d: d.pop("bounding_boxes"), "bounding_boxes", "missing"),
        (_set_box([20, 10, 8, 8]), "box", "outside"),
        (_set_box([2, 2, 0, 5]), "box", "zero-area"),
        (_set_box([2, 2, "5"]), "box", "[x, y, width, height]"),
    ],
)
def test_bad_records_name_file_record_and_field(tmp_path, edit, field, words):
    base = write_fake(tmp_path)
    path = _corrupt(base, "dam", edit)
    with pytest.raises(RecordError) as info:
        FMoW(base, "train")
    message = str(info.value)
    assert str(path) in message and path.with_suffix(".jpg").name in message and words in message
    if field is not None:
        assert field in message
    with pytest.warns(SkippedRecordsWarning, match="skipped 1"):
        ds = FMoW(base, "train", on_bad="skip")
    assert len(ds) == TRAIN_IMAGES - 1 and ds.skipped == 1


def test_missing_json_and_bad_visible(tmp_path):
    base = write_fake(tmp_path)
    _corrupt(base, "zoo", _set_box("maybe", key="visible"))
    with pytest.raises(RecordError, match="visible"):
        FMoW(base, "train")
    missing = next((base / "val" / "barn").glob("*/*_rgb.json"))
    missing.unlink()
    with pytest.raises(RecordError, match="metadata JSON missing"):
        FMoW(base, "val")


def test_missing_split_folder_named(tmp_path):
    base = write_fake(tmp_path)
    shutil.rmtree(base / "val")
    with pytest.raises(DatasetNotFoundError, match="val"):
        FMoW(base, "val")
