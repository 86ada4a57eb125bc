import pytest

from aerith.eval import grounding_scores
from aerith.eval.grounding import THRESHOLDS


def test_hand_computed():
    gt = [(0, 0, 10, 10)] * 4
    preds = [
        [(0, 0, 10, 10), (50, 50, 60, 60)],  # IoU 1 (first box is used)
        [(0, 0, 10, 6)],  # IoU 0.6
        [(50, 50, 60, 60), (0, 0, 10, 10)],  # IoU 0
        [],  # unparsable
    ]
    s = grounding_scores(preds, gt)
    assert s["acc@0.5"] == pytest.approx(2 / 4)
    # IoU 1 passes all 10 thresholds, 0.6 passes 0.5 and 0.55 and 0.6
    assert s["acc@0.5:0.95"] == pytest.approx((10 + 3) / 10 / 4)
    assert s["mean_iou"] == pytest.approx(1.6 / 4)
    assert s["unparsable"] == 1 and s["n"] == 4


def test_thresholds_are_exact():
    assert THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    s = grounding_scores([[(0, 0, 10, 7)]], [(0, 0, 10, 10)])  # IoU exactly 0.7
    assert s["acc@0.5:0.95"] == pytest.approx(5 / 10)


def test_bad_inputs():
    with pytest.raises(ValueError, match="differ in length: 1 != 2"):
        grounding_scores([[]], [(0, 0, 1, 1), (0, 0, 1, 1)])
    with pytest.raises(ValueError, match="single box"):
        grounding_scores([(0, 0, 1, 1)], [(0, 0, 1, 1)])
    with pytest.raises(ValueError, match="no predictions"):
        grounding_scores([], [])
