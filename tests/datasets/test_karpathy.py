import json
import warnings

import pytest

from aerith.data import DatasetNotFoundError, RecordError, SkippedRecordsWarning, load_dataset
from aerith.data.datasets.karpathy import clean_caption
from tests.data.rsicd.data import write_fake as fake_rsicd
from tests.data.rsitmd.data import write_fake as fake_rsitmd
from tests.data.sydney_captions.data import write_fake as fake_sydney
from tests.data.ucm_captions.data import write_fake as fake_ucm

FAKES = {"rsicd": fake_rsicd, "ucm-captions": fake_ucm, "sydney-captions": fake_sydney, "rsitmd": fake_rsitmd}


@pytest.mark.parametrize("name", sorted(FAKES))
def test_splits_come_from_the_file(name, tmp_path):
    root = FAKES[name](tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedRecordsWarning)
        sizes = {s: len(load_dataset(name, root, s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 3, "val": 1, "test": 2}


def test_references_keep_duplicates_and_fix_space_before_period(tmp_path):
    ds = load_dataset("rsicd", fake_rsicd(tmp_path), "train")
    sample = ds[0]
    assert sample.task == "cap" and len(sample.targets) == 5
    assert sample.meta["n_unique_captions"] == 2
    assert all(t.endswith(".") and not t.endswith(" .") for t in sample.targets)
    assert sample.image.is_file() and sample.image.parent.name == "RSICD_images"
    assert clean_caption("  many planes .  ") == "many planes."


def test_imgs_variant_and_dataset_folder_as_root(tmp_path):
    root = fake_ucm(tmp_path)
    assert len(load_dataset("ucm-captions", root / "UCM_captions", "test")) == 2


def test_empty_raw_is_reported_and_left_out(tmp_path):
    root = fake_rsitmd(tmp_path)  # lower-case json name, one empty raw
    with pytest.warns(SkippedRecordsWarning, match="1 empty caption"):
        ds = load_dataset("rsitmd", root, "train")
    assert len(ds[0].targets) == 4


def test_bad_input_names_file_record_and_field(tmp_path):
    root = fake_rsicd(tmp_path)
    ann = root / "RSICD" / "dataset_rsicd.json"
    data = json.loads(ann.read_text())
    del data["images"][1]["split"]
    data["images"][2]["filename"] = "gone.jpg"
    ann.write_text(json.dumps(data))
    with pytest.raises(RecordError, match=r"dataset_rsicd.json: record 1, field 'split'"):
        load_dataset("rsicd", root, "train")
    with pytest.warns(SkippedRecordsWarning, match="skipped 2"):
        ds = load_dataset("rsicd", root, "train", on_bad="skip")
    assert len(ds) == 1
    ann.write_text("{not json")
    with pytest.raises(RecordError, match="not valid JSON"):
        load_dataset("rsicd", root, "train")


def test_missing_annotation_names_path(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="dataset_rsicd.json"):
        load_dataset("rsicd", tmp_path / "empty", "train")
