"""Fast checks of the quickstart report's pieces on hand-made inputs (no training)."""

from __future__ import annotations

from aerith.eval.scene_graph import object_errors
from aerith.quickstart.report import mark_objects


def _marked(caption: str, references: list[str]) -> str:
    return mark_objects(caption, object_errors(caption, references)["hallucinated"])


def test_the_marked_objects_are_the_ones_the_hallucination_rate_counts():
    # "car park" is a parking lot to the parser: only "cars" is the hallucinated vehicle
    assert _marked("a car park with cars.", ["a car park."]) == "a car park with **cars**."
    # a plural the parser reads as a building is marked too
    assert _marked("three factories near a road.", ["a road."]) == "three **factories** near a road."
    assert _marked("two cars in a car park.", ["a road."]) == "two **cars** in a **car park**."
    assert _marked("a road.", ["a road."]) == "a road."


def test_scst_signal_line_is_the_mean_share_of_images_whose_samples_tied(tmp_path):
    from aerith.quickstart.report import scst_signal_lines

    (tmp_path / "metrics.jsonl").write_text('{"step": 5, "no_signal_share": 0.5}\n{"step": 10, "no_signal_share": 0.75}\n'
                                            '{"step": 10, "val_reward": 0.3}\n')
    assert "on 62% of the training images" in scst_signal_lines({"scst": tmp_path})[0]
    (tmp_path / "metrics.jsonl").write_text('{"step": 5, "reward": 0.5}\n')  # a log from before the share was logged
    assert scst_signal_lines({"scst": tmp_path}) == [] and scst_signal_lines({}) == []
