"""VRSBench's protocol: grounding on the 0-100 grid (inclusive IoU) split by unique / non-unique, VQA by column."""

from __future__ import annotations

import json

import pytest

from aerith.eval.runner import score_predictions, write_prompts
from aerith.eval.vrsbench import grounding_scores, iou_inclusive, to_grid100
from tests.fakes.vrsbench.data import write_fake


def _answer(tmp_path, bench, answers):
    root = write_fake(tmp_path / "data")
    write_prompts(bench, root, tmp_path / "prompts.jsonl")
    ids = [json.loads(line)["id"] for line in (tmp_path / "prompts.jsonl").read_text().splitlines()]
    assert len(ids) == len(answers)
    preds = tmp_path / "answers.jsonl"
    preds.write_text("".join(json.dumps({"id": i, "answer": a}) + "\n" for i, a in zip(ids, answers, strict=True)))
    return root, preds


def test_inclusive_iou_and_grid():
    assert iou_inclusive((92, 40, 92, 55), (92, 40, 92, 55)) == 1.0  # a zero-width reference can be hit
    assert iou_inclusive((70, 50, 82, 57), (71, 50, 83, 57)) == pytest.approx(96 / 112)
    assert to_grid100((6.4, 7.68, 25.6, 19.2), (64, 64)) == (10, 12, 40, 30)
    with pytest.raises(ValueError, match="differ in length"):
        grounding_scores([[]], [(0, 0, 1, 1)], [(64, 64)], [])


def test_grounding_acc_at_05_and_07_by_unique_and_non_unique(tmp_path):
    answers = [
        "{<10><12><40><30>}",  # unique, exact
        "{<71><50><83><57>}",  # non-unique, IoU 96/112 = 0.86
        "I cannot find it.",  # non-unique, no box: IoU 0, counted as unparsable
        "{<18><20><36><60>}",  # unique, IoU 779/1558 = 0.5: a hit at 0.5, not at 0.7
        "{<92><40><92><55>}",  # unique, the degenerate reference, exact
    ]
    root, preds = _answer(tmp_path, "vrsbench-vg", answers)
    result = score_predictions(preds, "vrsbench-vg", root, tmp_path / "out", box_format="geochat")
    s = result["scores"]
    assert (s["acc@0.5"], s["acc@0.7"], s["unparsable"], s["n"]) == (pytest.approx(0.8), pytest.approx(0.6), 1, 5)
    assert s["subsets"]["unique"] == pytest.approx({"acc@0.5": 1.0, "acc@0.7": 2 / 3, "mean_iou": (1 + 0.5 + 1) / 3, "n": 3})
    assert s["subsets"]["non-unique"]["acc@0.5"] == s["subsets"]["non-unique"]["acc@0.7"] == 0.5
    table = (tmp_path / "out" / "results.md").read_text()
    assert "| vrsbench-vg | Acc@0.7 (unique) | 66.67 |" in table and "31.2, GeoChat (fine-tuned)" in table
    assert "| vrsbench-vg | Acc@0.5 (non-unique) | 50.00 |" in table and "corners inclusive" in table


def test_vqa_accuracy_per_published_column_and_their_mean(tmp_path):
    answers = ["Yes.", "three", "white", "a parking lot", "Rural", "bottom left", "An airport", "no idea"]
    root, preds = _answer(tmp_path, "vrsbench-vqa", answers)
    s = score_predictions(preds, "vrsbench-vqa", root, tmp_path / "out")["scores"]
    per = {k: v["accuracy"] for k, v in s["per_type"].items()}
    assert per == pytest.approx({"presence": 1, "quantity": 1, "color": 1, "scene": 2 / 3, "position": 0, "reasoning": 0})
    assert s["AA"] == pytest.approx((3 + 2 / 3) / 6)
    table = (tmp_path / "out" / "results.md").read_text()
    assert "NOT by GPT-4" in table and "| vrsbench-vqa | AA |" in table and "60.9, LLaVA-1.5" in table


def test_captions_report_the_mean_length():
    from aerith.eval.report import metric_rows
    from aerith.eval.vrsbench import mean_length

    assert mean_length(["a harbor with ships", "a parking lot next to a building", "an airport"]) == pytest.approx(13 / 3)
    assert mean_length([]) is None
    scores = {k: 0.5 for k in ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D", "SG-F1")}
    counts = {"samples": 3, "missing": 0, "extra": 0, "unparsable": 0, "duplicates": 0, "bad_lines": 0}
    rows = dict(metric_rows({"task": "cap", "scores": {**scores, "mean_length": 13 / 3}, "counts": counts}))
    assert rows["mean length (words)"] == "4.3"  # the scorers themselves (Java) are tested in test_captioning


def test_a_perfect_prediction_of_a_small_box_hits_its_truncated_reference():
    # references are int() of the normalised box: corners at 10.7 % and 12.6 % of a 512 px image
    # give (10, 10, 12, 12); the same box answered on Aerith's 0-1000 grid must map back onto it
    from aerith.boxes import from_grid, to_grid

    size = (512, 512)
    truth = (0.107 * 512, 0.107 * 512, 0.126 * 512, 0.126 * 512)
    pred = from_grid(to_grid(truth, size), size)
    assert to_grid100(pred, size) == (10, 10, 12, 12)
    assert grounding_scores([[pred]], [(10, 10, 12, 12)], [size], [True])["acc@0.7"] == 1.0
    # a 0-100 answer read back from pixels lands on its own integers despite float error
    assert to_grid100(tuple(v * 512 / 100 for v in (11, 29, 57, 99)), size) == (11, 29, 57, 99)
