import json

import pytest

from aerith.data import DatasetNotFoundError, RecordError, SkippedRecordsWarning, load_dataset
from aerith.imageio import load_rgb
from tests.fakes.rsicap.data import write_fake


def test_captions_with_string_ids(tmp_path):
    root = write_fake(tmp_path)
    ds = load_dataset("rsicap", root, "train")
    assert len(ds) == 3 and ds[0].task == "cap" and ds[0].prompt is None
    assert ds[0].targets == ("This is scene 0 with many buildings.",)
    assert ds[2].meta == {"image_id": "2", "filename": "P0380_0001.png", "text_input": "Describe this image in detail."}
    assert load_rgb(ds[1].image).size == (16, 16)
    for other_root in (root / "dataset", root / "dataset" / "RSICap"):
        assert len(load_dataset("rsicap", other_root, "train")) == 3
    with pytest.raises(ValueError, match="valid splits: train"):
        load_dataset("rsicap", root, "test")


def test_numeric_ids_are_read_as_text(tmp_path):
    root = write_fake(tmp_path)
    path = root / "dataset" / "RSICap" / "captions.json"
    data = json.loads(path.read_text())
    data["annotations"][0]["image_id"] = 7
    path.write_text(json.dumps(data))
    assert load_dataset("rsicap", root, "train")[0].meta["image_id"] == "7"


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (lambda r: r.pop("text_output"), "text_output", "missing or empty"),
        (lambda r: r.update(text_output="  "), "text_output", "missing or empty"),
        (lambda r: r.pop("image_id"), "image_id", "missing or empty"),
        (lambda r: r.update(filename="gone.png"), "filename", "image .*gone.png not found"),
    ],
)
def test_bad_records_name_file_record_and_field(tmp_path, edit, field, message):
    root = write_fake(tmp_path)
    path = root / "dataset" / "RSICap" / "captions.json"
    data = json.loads(path.read_text())
    edit(data["annotations"][1])
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match=rf"captions.json: record 1, field '{field}': {message}"):
        load_dataset("rsicap", root, "train")
    with pytest.warns(SkippedRecordsWarning, match="skipped 1 bad record"):
        assert [s.meta["image_id"] for s in load_dataset("rsicap", root, "train", on_bad="skip")] == ["0", "2"]


def test_bad_and_missing_files(tmp_path):
    root = write_fake(tmp_path)
    folder = root / "dataset" / "RSICap"
    (folder / "captions.json").write_text('{"captions": []}')
    with pytest.raises(RecordError, match="field 'annotations': expected a top-level object"):
        load_dataset("rsicap", root, "train")
    (folder / "captions.json").write_text("[")
    with pytest.raises(RecordError, match="captions.json: record None: not valid JSON"):
        load_dataset("rsicap", root, "train")
    (folder / "images").rename(folder / "imgs")
    with pytest.raises(DatasetNotFoundError, match="RSICap/images: not found; expected the rsicap image folder"):
        load_dataset("rsicap", root, "train")
    with pytest.raises(DatasetNotFoundError, match=r"elsewhere/dataset/RSICap/captions.json: not found"):
        (tmp_path / "elsewhere").mkdir()
        load_dataset("rsicap", tmp_path / "elsewhere", "train")
