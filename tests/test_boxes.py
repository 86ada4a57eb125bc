import pytest

from aerith.boxes import box_iou, format_box, from_grid, to_grid


def test_grid_round_trip_and_clamp():
    assert to_grid((0, 0, 400, 200), (800, 400)) == (0, 0, 500, 500)
    assert to_grid((-5, 10, 900, 390), (800, 400)) == (0, 25, 1000, 975)
    assert from_grid((0, 0, 500, 500), (800, 400)) == (0, 0, 400, 200)
    assert format_box((1, 22, 333, 1000)) == "[1, 22, 333, 1000]"
    with pytest.raises(ValueError):
        to_grid((0, 0, 1, 1), (0, 10))


def test_iou():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert box_iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0
