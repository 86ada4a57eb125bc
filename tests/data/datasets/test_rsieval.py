import json

import pytest

from aerith.data import DatasetNotFoundError, RecordError, SkippedRecordsWarning, load_dataset
from aerith.data.datasets.rsicap import RSIEval as RegistryRSIEval
from aerith.data.datasets.rsieval import RSIEval
from tests.fakes.rsieval.data import write_fake


def _edit(root, edit):
    path = root / "dataset" / "RSIEval" / "annotations.json"
    data = json.loads(path.read_text())
    edit(data["annotations"])
    path.write_text(json.dumps(data))


def test_vqa_view_keeps_answers_as_given(tmp_path):
    root = write_fake(tmp_path)
    vqa = RSIEval(root)  # the only split, test, is the default
    assert RegistryRSIEval is RSIEval and vqa.split == "test" and len(vqa) == 4
    assert [(s.prompt, s.targets, s.kind) for s in vqa[:2]] == [
        ("Is there a ship?", ("Yes.",), "presence"), ("How many planes are there?", ("3",), "quantity"),
    ]  # fmt: skip
    assert vqa[2].targets == ("yes",) and vqa[3].meta == {"filename": "P1001_0002.png", "pair": 1}
    assert all(s.task == "vqa" and s.image.is_file() for s in vqa)
    assert len(load_dataset("rsieval", root / "dataset" / "RSIEval", "test")) == 4


def test_caption_view(tmp_path):
    cap = load_dataset("rsieval", write_fake(tmp_path), "test", task="cap")
    assert [s.targets for s in cap] == [("An airport 0.",), ("An airport 1.",)] and cap[0].task == "cap"
    with pytest.raises(ValueError, match="task must be 'vqa' or 'cap'"):
        load_dataset("rsieval", tmp_path, "test", task="vg")
    with pytest.raises(ValueError, match="valid splits: test"):
        load_dataset("rsieval", tmp_path, "train")


@pytest.mark.parametrize(
    ("edit", "record", "field", "message", "left"),
    [
        (lambda a: a[0]["qa_pairs"][1].pop("answer"), r"'0.qa_pairs\[1\]'", "answer", "missing or empty", 3),
        (lambda a: a[1]["qa_pairs"][0].update(type=""), r"'1.qa_pairs\[0\]'", "type", "missing or empty", 3),
        (lambda a: a[1].update(qa_pairs=[]), "1", "qa_pairs", "missing, empty or not a list", 2),
        (lambda a: a[1].update(filename="gone.png"), "1", "filename", "image .*gone.png not found", 2),
    ],
)
def test_bad_records_name_file_record_and_field(tmp_path, edit, record, field, message, left):
    root = write_fake(tmp_path)
    _edit(root, edit)
    with pytest.raises(RecordError, match=rf"annotations.json: record {record}, field '{field}': {message}"):
        load_dataset("rsieval", root, "test")
    with pytest.warns(SkippedRecordsWarning, match="skipped 1 bad record"):
        assert len(load_dataset("rsieval", root, "test", on_bad="skip")) == left


def test_missing_caption_only_matters_to_the_caption_view(tmp_path):
    root = write_fake(tmp_path)
    _edit(root, lambda a: a[0].pop("caption"))
    assert len(load_dataset("rsieval", root, "test")) == 4
    with pytest.raises(RecordError, match="record 0, field 'caption'"):
        load_dataset("rsieval", root, "test", task="cap")


def test_missing_annotation_file(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"dataset/RSIEval/annotations.json: not found; expected the rsieval annotation"):
        load_dataset("rsieval", tmp_path, "test")
