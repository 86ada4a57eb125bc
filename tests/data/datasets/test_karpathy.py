import json
import warnings

import pytest

from aerith.data import DatasetNotFoundError, ImageReadError, RecordError, SkippedRecordsWarning, load_dataset
from aerith.data.datasets.karpathy import clean_caption
from aerith.imageio import load_rgb
from tests.fakes.rsicd.data import write_fake as fake_rsicd
from tests.fakes.rsitmd.data import write_fake as fake_rsitmd
from tests.fakes.sydney_captions.data import write_fake as fake_sydney
from tests.fakes.ucm_captions.data import write_fake as fake_ucm

FAKES = {"rsicd": fake_rsicd, "ucm-captions": fake_ucm, "sydney-captions": fake_sydney, "rsitmd": fake_rsitmd}


def _rewrite(path, edit):
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("name", sorted(FAKES))
def test_splits_come_from_the_file(name, tmp_path):
    root = FAKES[name](tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedRecordsWarning)  # RSITMD's empty caption
        datasets = {s: load_dataset(name, root, s) for s in ("train", "val", "test")}
    assert {s: len(ds) for s, ds in datasets.items()} == {"train": 3, "val": 1, "test": 2}
    assert [s.meta["imgid"] for s in datasets["test"]] == [4, 5]
    sample = datasets["val"][0]
    assert sample.task == "cap" and sample.prompt is None and load_rgb(sample.image).size == (16, 16)


def test_references_keep_duplicates_and_fix_space_before_period(tmp_path):
    sample = load_dataset("rsicd", fake_rsicd(tmp_path), "train")[0]
    assert len(sample.targets) == 5 and sample.meta["n_unique_captions"] == 2
    assert sample.targets[0] == sample.targets[2] == sample.targets[4]
    assert all(t.endswith(".") and not t.endswith(" .") for t in sample.targets)
    assert sample.meta["filename"] == "airport_1.jpg" and sample.image.parent.name == "RSICD_images"
    assert clean_caption("  many planes .  ") == "many planes."
    assert clean_caption("a road.") == "a road." and clean_caption("no period") == "no period"


def test_imgs_variant_tif_images_and_dataset_folder_as_root(tmp_path):
    ds = load_dataset("ucm-captions", fake_ucm(tmp_path) / "UCM_captions", "test")
    assert [s.image.name for s in ds] == ["5.tif", "6.tif"] and ds[0].image.parent.name == "imgs"
    assert load_rgb(ds[0].image).mode == "RGB"
    assert load_dataset("sydney-captions", fake_sydney(tmp_path), "val")[0].meta["n_unique_captions"] == 5


def test_empty_raw_is_reported_and_left_out(tmp_path):
    root = fake_rsitmd(tmp_path)  # lower-case json name, one empty raw
    with pytest.warns(SkippedRecordsWarning, match=r"rsitmd \(train\): 1 empty caption.*dataset_rsitmd.json"):
        ds = load_dataset("rsitmd", root, "train")
    assert len(ds[0].targets) == 4 and "" not in ds[0].targets
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the empty caption is in train only
        assert len(load_dataset("rsitmd", root, "test")) == 2
    (root / "RSITMD" / "dataset_rsitmd.json").rename(root / "RSITMD" / "dataset_RSITMD.json")
    with pytest.warns(SkippedRecordsWarning):
        assert len(load_dataset("rsitmd", root / "RSITMD", "train")) == 3


def test_restval_counts_as_train(tmp_path):
    root = fake_rsicd(tmp_path)
    _rewrite(root / "RSICD" / "dataset_rsicd.json", lambda d: d["images"][3].update(split="restval"))
    assert len(load_dataset("rsicd", root, "train")) == 4 and len(load_dataset("rsicd", root, "val")) == 0


@pytest.mark.parametrize(
    ("edit", "record", "field", "message"),
    [
        (lambda d: d["images"][1].pop("split"), 1, "split", "missing"),
        (lambda d: d["images"][1].update(split="dev"), 1, "split", "unknown split 'dev'"),
        (lambda d: d["images"][1].update(filename="gone.jpg"), 1, "filename", "image .*gone.jpg not found"),
        (lambda d: d["images"][1]["sentences"][2].pop("raw"), 1, r"sentences\[2\].raw", "missing or not a string"),
        (lambda d: d["images"][1].update(sentences={"raw": "x"}), 1, "sentences", "expected a list"),
        (lambda d: [s.update(raw=" . ") for s in d["images"][1]["sentences"]], 1, "sentences", "no non-empty caption"),
    ],
)
def test_bad_records_name_file_record_and_field(tmp_path, edit, record, field, message):
    root = fake_rsicd(tmp_path)
    _rewrite(root / "RSICD" / "dataset_rsicd.json", edit)
    with pytest.raises(RecordError, match=rf"dataset_rsicd.json: record {record}, field '{field}': {message}"):
        load_dataset("rsicd", root, "train")
    with pytest.warns(SkippedRecordsWarning, match=r"rsicd \(train\): skipped 1 bad record"):
        ds = load_dataset("rsicd", root, "train", on_bad="skip")
    assert [s.meta["imgid"] for s in ds] == [0, 2]


def test_bad_files_and_missing_paths(tmp_path):
    root = fake_rsicd(tmp_path)
    ann = root / "RSICD" / "dataset_rsicd.json"
    ann.write_text('{"images": {}}')
    with pytest.raises(RecordError, match="field 'images': expected a top-level object with an 'images' list"):
        load_dataset("rsicd", root, "train")
    ann.write_text("{not json")
    with pytest.raises(RecordError, match=r"dataset_rsicd.json: record None: not valid JSON"):
        load_dataset("rsicd", root, "train")
    (root / "RSICD" / "RSICD_images").rename(root / "RSICD" / "pictures")
    with pytest.raises(DatasetNotFoundError, match=r"RSICD_images: not found; expected the rsicd image folder"):
        load_dataset("rsicd", root, "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match=r"empty/dataset_rsicd.json: not found; expected the rsicd annotation file"):
        load_dataset("rsicd", tmp_path / "empty", "train")


def test_corrupt_image_is_reported_when_read(tmp_path):
    root = fake_ucm(tmp_path)
    (root / "UCM_captions" / "imgs" / "1.tif").write_bytes(b"")
    sample = load_dataset("ucm-captions", root, "train")[0]
    with pytest.raises(ImageReadError, match=r"imgs/1.tif: cannot read image"):
        load_rgb(sample.image)
