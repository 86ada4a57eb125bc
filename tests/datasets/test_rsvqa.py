import json
import shutil
import warnings

import pytest

from aerith.data import DatasetNotFoundError, RecordError, SkippedRecordsWarning, load_dataset
from tests.data.rsvqa_hr.data import write_fake as fake_hr
from tests.data.rsvqa_lr.data import write_fake as fake_lr


def test_lr_reads_only_active_records_of_the_split(tmp_path):
    root = fake_lr(tmp_path)
    for split in ("train", "val", "test"):
        ds = load_dataset("rsvqa-lr", root, split)
        assert len(ds) == 8  # 2 images x 4 types; the other splits' stubs are skipped
    ds = load_dataset("rsvqa-lr", root / "RSVQA_LR", "val")
    assert {s.kind for s in ds} == {"presence", "comp", "count", "rural_urban"}
    by_kind = {s.kind: s.targets[0] for s in ds}
    assert by_kind == {"presence": "yes", "comp": "no", "count": "3", "rural_urban": "rural"}
    assert all(s.image.is_file() and s.image.parent.name == "Images_LR" for s in ds)
    image_ids = {s.meta["image_id"] for s in ds}
    assert image_ids == {2, 3}  # the val images, by their database-wide ids


def test_hr_has_both_test_sets(tmp_path):
    root = fake_hr(tmp_path)
    test, phili = load_dataset("rsvqa-hr", root, "test"), load_dataset("rsvqa-hr", root, "test_phili")
    assert len(test) == len(phili) == 8
    assert {s.meta["image_id"] for s in test}.isdisjoint({s.meta["image_id"] for s in phili})
    assert "area" in {s.kind for s in test} and {s.targets[0] for s in test if s.kind == "area"} == {"120m2"}


def test_zipped_images_get_a_clear_hint(tmp_path):
    root = fake_lr(tmp_path) / "RSVQA_LR"
    shutil.rmtree(root / "Images_LR")
    (root / "Images_LR.zip").write_bytes(b"PK")
    with pytest.raises(DatasetNotFoundError, match="extract it"):
        load_dataset("rsvqa-lr", root, "train")


def test_bad_records_name_file_record_and_field(tmp_path):
    root = fake_lr(tmp_path) / "RSVQA_LR"
    qpath = root / "LR_split_train_questions.json"
    data = json.loads(qpath.read_text())
    del data["questions"][0]["question"]
    data["questions"][1]["answers_ids"] = [999]
    qpath.write_text(json.dumps(data))
    (root / "Images_LR" / "1.tif").unlink()
    with pytest.raises(RecordError, match=r"LR_split_train_questions.json: record 0, field 'question'"):
        load_dataset("rsvqa-lr", root, "train")
    with pytest.warns(SkippedRecordsWarning, match="skipped 6"):
        ds = load_dataset("rsvqa-lr", root, "train", on_bad="skip")
    assert len(ds) == 2  # 8 - question 0, question 1 (no answer), and image 1's four questions


def test_missing_question_file_names_path(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="LR_split_test_questions.json"):
        load_dataset("rsvqa-lr", tmp_path, "test")
    with pytest.raises(ValueError, match="test_phili"):
        load_dataset("rsvqa-lr", tmp_path, "test_phili")
