"""Prediction files as other tools write them: one JSON array; pixel boxes given without --box-format."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from aerith.cli import app
from aerith.eval.runner import read_predictions, score_predictions
from tests.eval.test_score_predictions import _ids


def test_a_json_array_is_read_as_its_records(roots, tmp_path):
    ids = _ids("aid", roots["aid"], tmp_path)
    records = [{"id": ids[0], "answer": "Airport"}, {"id": ids[1], "prediction": "bare land"}, {"id": ids[2], "answer": "Airport"}]
    lines = tmp_path / "lines.jsonl"
    lines.write_text("".join(json.dumps(r) + "\n" for r in records))
    array = tmp_path / "array.json"
    array.write_text(json.dumps([*records, "not a record", {"id": ids[3]}], indent=2))  # pretty-printed, over many lines

    read = read_predictions(array)
    assert read.format == "json-array" and read.records == 3
    assert read.bad_lines == [(4, "element 4: a JSON str, not an object"), (5, f"element 5: id {ids[3]!r}: no string 'answer'")]
    a = score_predictions(array, "aid", roots["aid"], tmp_path / "a")
    b = score_predictions(lines, "aid", roots["aid"], tmp_path / "b")
    assert a["scores"] == b["scores"] and a["scores"]["accuracy"] == pytest.approx(2 / 30)
    assert a["counts"] == {**b["counts"], "bad_lines": 2}
    assert a["predictions_format"] == "json-array" and b["predictions_format"] == "jsonl"

    # a one-line array is an array too; a broken array stays JSONL with its lines counted as bad
    (tmp_path / "one.json").write_text(json.dumps(records))
    assert read_predictions(tmp_path / "one.json").records == 3
    (tmp_path / "broken.json").write_text(json.dumps(records, indent=2)[:-3])
    broken = read_predictions(tmp_path / "broken.json")
    assert broken.format == "jsonl" and broken.records == 0 and broken.bad_lines


def _vg_file(path, ids, answers):
    path.write_text("".join(json.dumps({"id": i, "answer": a}) + "\n" for i, a in zip(ids, answers)))
    return path


def test_pixel_boxes_beyond_the_grid_are_refused_under_auto(roots, tmp_path):
    ids = _ids("dior-rsvg", roots["dior-rsvg"], tmp_path, split="train")
    path = _vg_file(tmp_path / "px.jsonl", ids, ["[2, 3, 10, 12]", "[5, 5, 1024, 9]", "[1, 1, 6, 6]", "none"])
    with pytest.raises(ValueError, match=rf"1 of 3 boxes read as Aerith's 0-1000 grid have numbers beyond 1000 "
                                         rf"\(e.g. {ids[1]}: \[5, 5, 1024, 9\]\).*--box-format pixel"):
        score_predictions(path, "dior-rsvg", roots["dior-rsvg"], tmp_path / "out", split="train")
    assert not (tmp_path / "out").exists()
    # said explicitly, either reading is scored
    for fmt in ("pixel", "aerith"):
        result = score_predictions(path, "dior-rsvg", roots["dior-rsvg"], tmp_path / fmt, split="train", box_format=fmt)
        assert result["counts"]["answered"] == 4 and result["warnings"] == []
    r = CliRunner().invoke(app, ["eval", "--predictions", str(path), "--benchmark", "dior-rsvg", "--split", "train",
                                 "--root", str(roots["dior-rsvg"])])
    assert r.exit_code == 2 and "--box-format pixel" in r.output and "Traceback" not in r.output


def test_boxes_that_also_fit_as_pixels_get_a_warning(roots, tmp_path):
    ids = _ids("dior-rsvg", roots["dior-rsvg"], tmp_path, split="train")
    # 32 px images: twelve boxes, all inside 32x32, read on the grid (10 or more: a warning)
    answers = ["[2, 3, 10, 12] [1, 1, 5, 5] [3, 3, 8, 8]"] * 4
    path = _vg_file(tmp_path / "small.jsonl", ids, answers)
    r = CliRunner().invoke(app, ["eval", "--predictions", str(path), "--benchmark", "dior-rsvg", "--split", "train",
                                 "--root", str(roots["dior-rsvg"]), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert "WARNING: all 12 boxes were read on Aerith's 0-1000 grid" in r.output and "--box-format pixel" in r.output
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(saved["warnings"]) == 1 and "WARNING: all 12 boxes" in (tmp_path / "out" / "results.md").read_text()
    # one grid box beyond the images' pixels: no reason to suspect pixels
    path = _vg_file(tmp_path / "grid.jsonl", ids, answers[:3] + ["[2, 3, 10, 12] [1, 1, 5, 5] [300, 300, 800, 800]"])
    assert score_predictions(path, "dior-rsvg", roots["dior-rsvg"], tmp_path / "g", split="train")["warnings"] == []


def test_a_byte_order_mark_is_read_past(tmp_path):
    """Notepad and PowerShell 5 start UTF-8 files with a BOM: the first record (and a whole JSON array) was lost."""
    records = [{"id": "a", "answer": "x"}, {"id": "b", "answer": "y"}]
    lines = tmp_path / "lines.jsonl"
    lines.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\n" for r in records).encode())
    array = tmp_path / "array.json"
    array.write_bytes(b"\xef\xbb\xbf" + json.dumps(records, indent=2).encode())
    for path, fmt in ((lines, "jsonl"), (array, "json-array")):
        read = read_predictions(path)
        assert (read.format, read.answers, read.bad_lines) == (fmt, {"a": "x", "b": "y"}, [])
    assert read_predictions(lines).valid_bytes == lines.stat().st_size
