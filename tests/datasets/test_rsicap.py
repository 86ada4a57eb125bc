import json

import pytest

from aerith.data import DatasetNotFoundError, RecordError, SkippedRecordsWarning, load_dataset
from tests.data.rsicap.data import write_fake as fake_rsicap
from tests.data.rsieval.data import write_fake as fake_rsieval


def test_rsicap_captions_with_string_ids(tmp_path):
    root = fake_rsicap(tmp_path)
    ds = load_dataset("rsicap", root, "train")
    assert len(ds) == 3 and ds[0].task == "cap" and ds[0].targets == ("This is scene 0 with many buildings.",)
    assert ds[0].meta["image_id"] == "0"
    assert len(load_dataset("rsicap", root / "dataset" / "RSICap", "train")) == 3
    with pytest.raises(ValueError, match="train"):
        load_dataset("rsicap", root, "test")


def test_rsieval_vqa_and_caption_views(tmp_path):
    root = fake_rsieval(tmp_path)
    vqa = load_dataset("rsieval", root, "test")
    assert len(vqa) == 4 and {s.targets[0] for s in vqa if s.kind == "presence"} == {"Yes.", "yes"}
    cap = load_dataset("rsieval", root, "test", task="cap")
    assert [s.targets for s in cap] == [("An airport 0.",), ("An airport 1.",)]
    with pytest.raises(ValueError, match="task"):
        load_dataset("rsieval", root, "test", task="vg")


def test_bad_records(tmp_path):
    root = fake_rsieval(tmp_path)
    path = root / "dataset" / "RSIEval" / "annotations.json"
    data = json.loads(path.read_text())
    del data["annotations"][0]["qa_pairs"][1]["answer"]
    data["annotations"][1]["filename"] = "gone.png"
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match=r"annotations.json: record '0.qa_pairs\[1\]', field 'answer'"):
        load_dataset("rsieval", root, "test")
    with pytest.warns(SkippedRecordsWarning, match="skipped 2"):
        assert len(load_dataset("rsieval", root, "test", on_bad="skip")) == 1
    with pytest.raises(DatasetNotFoundError, match="captions.json"):
        load_dataset("rsicap", tmp_path / "dataset", "train")
