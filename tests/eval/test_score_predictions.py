"""Scoring another model's prediction file reproduces hand-made expectations; bad input is counted, never fatal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aerith.boxes import box_iou
from aerith.cli import app
from aerith.eval.runner import score_predictions, write_prompts


def _ids(bench: str, root: Path, tmp_path: Path, split: str | None = None) -> list[str]:
    path = tmp_path / f"{bench}-prompts.jsonl"
    write_prompts(bench, root, path, split=split)
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def _classification_file(path: Path, ids: list[str]) -> Path:
    lines = [json.dumps({"id": i, "answer": a}) for i, a in zip(ids, [
        "Airport", "bare land", "The baseball field.", "beaches", "BRIDGE", "center",  # 6 right
        "Airport", "Airport",  # 2 wrong
        "banana",  # matches no class
    ])]
    lines.append(json.dumps({"id": ids[9], "answer": "Airport"}))  # wrong, then overwritten:
    lines.append(json.dumps({"id": ids[9], "answer": "Desert"}))  # duplicate id, the last one (right) wins
    lines.append(json.dumps({"id": "aid/test/999:nope", "answer": "Beach"}))  # an id of no sample
    lines.append("this is not json")  # bad line
    lines.append(json.dumps({"id": ids[10]}))  # bad line: no answer, so ids[10] stays missing
    path.write_text("\n".join(lines) + '\n{"id": "aid/te')  # truncated last line
    return path


def test_classification_counts_and_scores(roots, tmp_path):
    ids = _ids("aid", roots["aid"], tmp_path)
    assert len(ids) == 30
    preds = _classification_file(tmp_path / "other.jsonl", ids)
    result = score_predictions(preds, "aid", roots["aid"], tmp_path / "out")
    assert result["counts"] == {
        "samples": 30, "answered": 10, "missing": 20, "extra": 1, "unparsable": 1, "duplicates": 1, "bad_lines": 3,
    }
    assert result["scores"]["accuracy"] == pytest.approx(7 / 30)
    # 30 classes with one sample each: balanced accuracy equals accuracy
    assert result["scores"]["balanced_accuracy"] == pytest.approx(7 / 30)
    assert result["scores"]["unmatched"] == 21  # 'banana' + 20 missing (scored as empty answers)
    assert result["extra_ids"] == ["aid/test/999:nope"]
    assert ids[10] in result["missing_ids"]
    assert [b["line"] for b in result["bad_lines"]] == [13, 14, 15]
    scored = [json.loads(line) for line in (tmp_path / "out" / "scored_predictions.jsonl").read_text().splitlines()]
    statuses = [r["status"] for r in scored]
    assert statuses.count("ok") == 9 and statuses.count("unparsable") == 1
    assert statuses.count("missing") == 20 and statuses.count("extra") == 1
    assert scored[9]["answer"] == "Desert" and scored[9]["parsed"] == "Desert"
    for name in ("results.md", "results.json", "confusion_matrix.png"):
        assert (tmp_path / "out" / name).is_file()
    md = (tmp_path / "out" / "results.md").read_text()
    assert "| aid | accuracy | 23.33 |" in md
    assert "20 missing predictions, 1 extra predictions, 1 unparsable answers, 1 duplicate ids, 3 bad lines" in md


def test_grounding_in_other_models_box_formats(roots, tmp_path):
    ids = _ids("dior-rsvg", roots["dior-rsvg"], tmp_path, split="train")
    # the four train objects of the fake: 32x32 images, true boxes in pixels
    gts = [(2, 3, 10, 12), (5, 5, 9, 9), (1, 1, 6, 6), (12, 2, 14, 20)]
    answers = [
        "{<6><9><31><38>|<0>}",  # GeoChat, 0-100 grid: (1.92, 2.88, 9.92, 12.16)
        "[[156, 156, 281, 281]]",  # VHM, 0-1000: (4.992, 4.992, 8.992, 8.992)
        "<bbox>[0.5, 0.5, 0.6875, 0.6875]</bbox>",  # LHRS-Bot-Nova, 0-1: (16, 16, 22, 22), misses
        "<box>(375,62),(437,625)</box>",  # Qwen-VL, 0-1000: (12, 1.984, 13.984, 20)
    ]
    pixels = [(1.92, 2.88, 9.92, 12.16), (4.992, 4.992, 8.992, 8.992), (16, 16, 22, 22), (12, 1.984, 13.984, 20)]
    path = tmp_path / "vg.jsonl"
    path.write_text("".join(json.dumps({"id": i, "answer": a}) + "\n" for i, a in zip(ids, answers)))
    result = score_predictions(path, "dior-rsvg", roots["dior-rsvg"], tmp_path / "vg", split="train")
    ious = [box_iou(p, g) for p, g in zip(pixels, gts)]
    assert ious[2] == 0 and min(ious[0], ious[1], ious[3]) > 0.9
    assert result["scores"]["acc@0.5"] == pytest.approx(3 / 4)
    assert result["scores"]["mean_iou"] == pytest.approx(sum(ious) / 4, abs=1e-6)
    assert result["counts"]["unparsable"] == 0 and result["counts"]["missing"] == 0
    assert (tmp_path / "vg" / "grounding.png").is_file()

    # pixel lists are never guessed: with --box-format pixel an exact answer scores IoU 1, one without a box is unparsable
    path.write_text(json.dumps({"id": ids[0], "answer": "[2, 3, 10, 12]"}) + "\n" + json.dumps({"id": ids[1], "answer": "none"}) + "\n")
    result = score_predictions(path, "dior-rsvg", roots["dior-rsvg"], tmp_path / "vg2", split="train", box_format="pixel")
    assert result["counts"] == {
        "samples": 4, "answered": 2, "missing": 2, "extra": 0, "unparsable": 1, "duplicates": 0, "bad_lines": 0,
    }
    assert result["scores"]["acc@0.5"] == pytest.approx(1 / 4)
    assert result["scores"]["mean_iou"] == pytest.approx(1 / 4)


def test_vqa_types_and_unparsable_counts(roots, tmp_path):
    ids = _ids("rsvqa-lr", roots["rsvqa-lr"], tmp_path)
    from aerith.eval.runner import eval_items
    from aerith.eval.benchmarks import get_benchmark

    _, items = eval_items(get_benchmark("rsvqa-lr"), roots["rsvqa-lr"])
    # answer every question right, except count questions, answered without a number
    lines = []
    for it in items:
        answer = "many" if it.sample.kind == "count" else it.sample.targets[0].upper() + "."
        lines.append(json.dumps({"id": it.id, "answer": answer}))
    path = tmp_path / "vqa.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = score_predictions(path, "rsvqa-lr", roots["rsvqa-lr"], tmp_path / "vqa")
    n_count = sum(it.sample.kind == "count" for it in items)
    assert n_count > 0
    per_type = result["scores"]["per_type"]
    assert per_type["count"]["accuracy"] == 0 and per_type["count"]["unparsed"] == n_count
    assert all(v["accuracy"] == 1 for k, v in per_type.items() if k != "count")
    assert result["counts"]["unparsable"] == n_count
    assert result["scores"]["OA"] == pytest.approx(1 - n_count / len(ids))


def test_cli_scores_a_predictions_file(roots, tmp_path):
    ids = _ids("aid", roots["aid"], tmp_path)
    preds = _classification_file(tmp_path / "other.jsonl", ids)
    result = CliRunner().invoke(app, ["eval", "--predictions", str(preds), "--benchmark", "aid", "--root", str(roots["aid"])])
    assert result.exit_code == 0, result.output
    assert "20 missing, 1 extra, 1 unparsable" in result.output
    saved = json.loads((tmp_path / "other-eval" / "results.json").read_text())
    assert saved["scores"]["accuracy"] == pytest.approx(7 / 30)

    bad = CliRunner().invoke(app, ["eval", "--predictions", str(preds), "--benchmark", "nope", "--root", str(roots["aid"])])
    assert bad.exit_code == 2 and "valid benchmarks" in bad.output
