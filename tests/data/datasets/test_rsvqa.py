import json
import shutil

import pytest

from aerith.data import DatasetNotFoundError, ImageReadError, RecordError, SkippedRecordsWarning, load_dataset
from aerith.data.datasets.rsvqa import normalise_type
from aerith.imageio import load_rgb
from tests.fakes.rsvqa_hr.data import write_fake as fake_hr
from tests.fakes.rsvqa_lr.data import write_fake as fake_lr


@pytest.fixture
def lr(tmp_path):
    return fake_lr(tmp_path) / "RSVQA_LR"


def _rewrite(path, edit):
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_lr_reads_only_the_active_records_of_the_split(tmp_path):
    root = fake_lr(tmp_path)
    sizes = {split: len(load_dataset("rsvqa-lr", root, split)) for split in ("train", "val", "test")}
    assert sizes == {"train": 8, "val": 8, "test": 8}  # 2 images x 4 types; the other splits' stubs are skipped
    val = load_dataset("rsvqa-lr", root / "RSVQA_LR", "val")
    assert {s.meta["image_id"] for s in val} == {2, 3}  # database-wide ids
    assert [s.meta["question_id"] for s in val] == list(range(8, 16))
    by_kind = {s.kind: s.targets for s in val}
    assert by_kind == {"presence": ("yes",), "comp": ("no",), "count": ("3",), "rural_urban": ("rural",)}
    first = val[0]
    assert first.task == "vqa" and first.prompt == "Is there a presence thing in image 0?" and first.box is None
    assert first.image.name == "2.tif" and first.image.parent.name == "Images_LR" and load_rgb(first.image).size == (16, 16)


def test_hr_has_both_test_sets(tmp_path):
    root = fake_hr(tmp_path)
    test, phili = load_dataset("rsvqa-hr", root, "test"), load_dataset("rsvqa-hr", root, "test_phili")
    assert len(test) == len(phili) == 8
    assert {s.meta["image_id"] for s in test}.isdisjoint({s.meta["image_id"] for s in phili})
    assert {s.kind for s in test} == {"presence", "comp", "count", "area"}
    assert {s.targets[0] for s in phili if s.kind == "area"} == {"120m2"}
    assert all(s.image.parent.name == "Data" for s in phili)


def test_answers_by_id_not_position_nor_back_reference(lr):
    def shuffle(data):
        data["answers"].reverse()
        for a in data["answers"]:
            a.pop("quesiton_id", None)

    _rewrite(lr / "LR_split_train_answers.json", shuffle)
    assert {s.kind: s.targets[0] for s in load_dataset("rsvqa-lr", lr, "train")}["count"] == "3"


def test_question_types_are_normalised(lr):
    def respell(data):
        data["questions"][0]["type"] = "Comparison"
        data["questions"][3]["type"] = "Rural urban"

    _rewrite(lr / "LR_split_train_questions.json", respell)
    kinds = [s.kind for s in load_dataset("rsvqa-lr", lr, "train")]
    assert kinds[0] == "comp" and kinds[3] == "rural_urban"
    assert normalise_type("rural-urban") == "rural_urban" and normalise_type(" Presence ") == "presence"


def test_the_index_is_built_once(lr):
    ds = load_dataset("rsvqa-lr", lr, "train")
    for path in lr.glob("*.json"):
        path.unlink()
    assert len(ds) == 8 and ds[7].targets == ("rural",) and len(ds[2:5]) == 3


def test_zipped_images_get_a_clear_hint(lr):
    shutil.rmtree(lr / "Images_LR")
    (lr / "Images_LR.zip").write_bytes(b"PK")
    with pytest.raises(DatasetNotFoundError, match=r"Images_LR: not found; .*Images_LR.zip is there: extract it"):
        load_dataset("rsvqa-lr", lr, "train")


@pytest.mark.parametrize(
    ("edit", "file", "record", "field", "message"),
    [
        (lambda d: d["questions"][0].pop("question"), "questions", 0, "question", "missing"),
        (lambda d: d["questions"][0].update(answers_ids=[]), "questions", 0, "answers_ids", "non-empty list"),
        (lambda d: d["questions"][0].update(answers_ids=[999]), "answers", 999, "answer", "no active answer .*question 0"),
        (lambda d: d["questions"][0].update(answers_ids=[8]), "answers", 8, "answer", "no active answer"),  # a val stub
        (lambda d: d["questions"][0].update(type="colour"), "questions", 0, "type", "unknown question type 'colour'"),
        (lambda d: d["questions"][0].update(question=""), "questions", 0, "question", "not a non-empty string"),
        (lambda d: d["questions"][0].update(img_id=5), "questions", 0, "img_id", "not an active image of this split"),
    ],
)
def test_bad_questions_name_file_record_and_field(lr, edit, file, record, field, message):
    _rewrite(lr / "LR_split_train_questions.json", edit)
    with pytest.raises(RecordError, match=rf"LR_split_train_{file}.json: record {record}, field '{field}': .*{message}"):
        load_dataset("rsvqa-lr", lr, "train")
    with pytest.warns(SkippedRecordsWarning, match=r"rsvqa-lr \(train\): skipped 1 bad record"):
        ds = load_dataset("rsvqa-lr", lr, "train", on_bad="skip")
    assert [s.meta["question_id"] for s in ds] == list(range(1, 8))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda q: q.pop("active"), "field 'active': missing"),  # a copy without the flag is not a split of stubs
        (lambda q: q.update(active="false"), "field 'active': expected true or false, got 'false'"),
    ],
)
def test_a_question_without_a_true_or_false_flag_is_a_bad_record(lr, edit, message):
    _rewrite(lr / "LR_split_train_questions.json", lambda d: edit(d["questions"][3]))
    with pytest.raises(RecordError, match=rf"LR_split_train_questions.json: record 3, {message}"):
        load_dataset("rsvqa-lr", lr, "train")
    with pytest.warns(SkippedRecordsWarning, match="skipped 1 bad record"):
        ds = load_dataset("rsvqa-lr", lr, "train", on_bad="skip")
    assert [s.meta["question_id"] for s in ds] == [0, 1, 2, 4, 5, 6, 7]


def test_missing_image_file_costs_each_of_its_questions(lr):
    (lr / "Images_LR" / "1.tif").unlink()
    with pytest.raises(RecordError, match=r"record 4, field 'img_id': image file .*Images_LR/1.tif not found"):
        load_dataset("rsvqa-lr", lr, "train")
    with pytest.warns(SkippedRecordsWarning, match="skipped 4"):
        assert len(load_dataset("rsvqa-lr", lr, "train", on_bad="skip")) == 4


def test_bad_files(lr, tmp_path):
    (lr / "LR_split_test_answers.json").write_text('{"answers": [')
    with pytest.raises(RecordError, match=r"LR_split_test_answers.json: record None: not valid JSON"):
        load_dataset("rsvqa-lr", lr, "test")
    (lr / "LR_split_test_answers.json").write_text('{"answer": []}')
    with pytest.raises(RecordError, match=r"field 'answers': expected a top-level object with a 'answers' list"):
        load_dataset("rsvqa-lr", lr, "test")
    (lr / "LR_split_val_images.json").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"LR_split_val_images.json: not found; expected the rsvqa-lr images file"):
        load_dataset("rsvqa-lr", lr, "val")
    with pytest.raises(DatasetNotFoundError, match=r"LR_split_test_questions.json: not found"):
        load_dataset("rsvqa-lr", tmp_path / "RSVQA_LR" / "Images_LR", "test")
    with pytest.raises(ValueError, match="test_phili"):
        load_dataset("rsvqa-lr", lr, "test_phili")


def test_corrupt_image_is_reported_when_read(lr):
    (lr / "Images_LR" / "0.tif").write_bytes(b"II*\x00 truncated tiff")
    sample = load_dataset("rsvqa-lr", lr, "train")[0]
    with pytest.raises(ImageReadError, match=r"Images_LR/0.tif: cannot read image"):
        load_rgb(sample.image)
