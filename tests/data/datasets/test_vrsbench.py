"""VRSBench's released evaluation files: captions, referring expressions (unique or not, 0-100 boxes), VQA by type."""

from __future__ import annotations

import json

import pytest

from aerith.data import DatasetNotFoundError, RecordError, SkippedRecordsWarning, load_dataset
from aerith.data.datasets.vrsbench import VQA_COLUMNS, parse_box100
from tests.fakes.vrsbench.data import CAPTIONS, QAS, REFERS, write_fake


def _edit(path, index, **changes):
    records = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            records[index].pop(key)
        else:
            records[index][key] = value
    path.write_text(json.dumps(records))


def test_the_three_tasks(tmp_path):
    root = write_fake(tmp_path)
    everything = load_dataset("vrsbench", root)  # split test (the released evaluation set), task all
    assert everything.split == "test" and [s.task for s in everything] == ["cap"] * 3 + ["vg"] * 5 + ["vqa"] * 8
    cap = load_dataset("vrsbench", root, task="cap")
    assert [s.targets for s in cap] == [(c,) for c in CAPTIONS] and cap[0].meta["question"] == "Describe the image in detail"
    vqa = load_dataset("vrsbench", root / "VRSBench", task="vqa")
    assert [s.meta["type"] for s in vqa] == [q[3] for q in QAS]
    assert [s.kind for s in vqa] == ["presence", "quantity", "color", "scene", "scene", "position", "scene", "reasoning"]
    assert vqa[1].targets == ("3",) and vqa[1].meta["question_id"] == 1
    assert set(VQA_COLUMNS.values()) == {
        "category", "presence", "quantity", "color", "shape", "size", "position", "direction", "scene", "reasoning",
    }  # fmt: skip  (the published table's 10 columns)


def test_referring_boxes_unique_flags_and_the_0_100_reference(tmp_path):
    vg = load_dataset("vrsbench", write_fake(tmp_path), task="vg")
    assert [s.prompt for s in vg] == [r[1] for r in REFERS] and [s.meta["unique"] for s in vg] == [r[2] for r in REFERS]
    first = vg[0]
    assert first.meta["box100"] == (10, 12, 40, 30) and first.meta["image_size"] == (64, 64)
    assert first.box == pytest.approx((6.4, 7.68, 25.6, 19.2))  # from the exact corners, not the truncated grid
    assert vg[1].meta["box100"] == (70, 50, 82, 57)  # int(100 * 0.58) = 57, as the notebook writes it
    degenerate = vg[4]  # zero width on the 0-100 grid, kept: the protocol's IoU scores it
    assert degenerate.meta["box100"][0] == degenerate.meta["box100"][2] == 92 and degenerate.box[2] > degenerate.box[0]
    assert parse_box100("{<1><2><3><4>|<45>}") == (1, 2, 3, 4) and parse_box100("[1, 2, 3, 4]") is None


def test_the_box_comes_from_the_grid_when_the_corners_are_missing(tmp_path):
    root = write_fake(tmp_path)
    for missing in (None, []):
        _edit(root / "VRSBench" / "VRSBench_EVAL_referring.json", 0, obj_corner=missing)
        assert load_dataset("vrsbench", root, task="vg")[0].box == pytest.approx((6.4, 7.68, 25.6, 19.2))
    _edit(root / "VRSBench" / "VRSBench_EVAL_referring.json", 0, obj_corner=[-0.6, 0.1, 0.4, 0.1, 0.4, 0.3, -0.6, 0.3])
    assert load_dataset("vrsbench", root, task="vg")[0].box == pytest.approx((0.0, 6.4, 25.6, 19.2))  # cut by the crop


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"ground_truth": "[10, 12, 40, 30]"}, "ground_truth", "not a {<x1><y1><x2><y2>} box"),
        ({"ground_truth": "{<10><12><140><30>}"}, "ground_truth", "0-100 grid"),
        ({"unique": "yes"}, "unique", "expected true or false"),
        ({"image_id": "P9999_0000.png"}, "image_id", "P9999_0000.png not found"),
        ({"question": None}, "question", "missing or empty"),
        ({"obj_corner": [0.1, 0.12, 0.4, 0.12, 0.4, 0.3, 0.1]}, "obj_corner", "expected 8 numbers"),
        ({"obj_corner": ["a"] * 8}, "obj_corner", "not numbers"),
        ({"obj_corner": [6.4, 7.7, 25.6, 7.7, 25.6, 19.2, 6.4, 19.2]}, "obj_corner", "normalised to 0-1"),  # pixels
        ({"obj_corner": [0.2, 0.2] * 4}, "obj_corner", "enclose no area"),
    ],
)
def test_bad_referring_records(tmp_path, change, field, message):
    root = write_fake(tmp_path)
    _edit(root / "VRSBench" / "VRSBench_EVAL_referring.json", 2, **change)
    with pytest.raises(RecordError) as info:
        load_dataset("vrsbench", root, task="vg")
    assert "VRSBench_EVAL_referring.json: record 2" in str(info.value) and f"field '{field}'" in str(info.value)
    assert message in str(info.value)
    with pytest.warns(SkippedRecordsWarning, match="skipped 1 bad record"):
        assert len(load_dataset("vrsbench", root, task="vg", on_bad="skip")) == 4


def test_other_layouts_and_missing_files(tmp_path):
    root = write_fake(tmp_path)
    folder = root / "VRSBench"
    (folder / "images").mkdir()
    (folder / "Images_val").rename(folder / "images" / "Images_val")  # the hub's layout
    (folder / "VRSBench_EVAL_vqa.json").rename(folder / "RSBench_EVAL_vqa_v2.json")  # the notebook's own name
    assert len(load_dataset("vrsbench", root, task="vqa")) == 8
    (folder / "VRSBench_EVAL_Cap.json").unlink()
    assert [s.task for s in load_dataset("vrsbench", root)] == ["vg"] * 5 + ["vqa"] * 8  # all: the files present
    with pytest.raises(DatasetNotFoundError, match=r"VRSBench_EVAL_cap.json: not found; expected the VRSBench cap evaluation file"):
        load_dataset("vrsbench", root, task="cap")
    with pytest.raises(ValueError, match="unknown task 'ref'; valid tasks: cap, vg, vqa, all"):
        load_dataset("vrsbench", root, task="ref")
    empty = tmp_path / "download"
    empty.mkdir()
    (empty / "Images_val.zip").write_bytes(b"PK")
    with pytest.raises(DatasetNotFoundError, match=r"VRSBench_EVAL_\{Cap,referring,vqa\}.json .*holds the archive\(s\) Images_val.zip"):
        load_dataset("vrsbench", empty)
