"""The tile grid and the merging of boxes across overlaps, on hand-made cases."""

from __future__ import annotations

import pytest

from aerith.geo.merge import Detection, box_ios, cut_sides, merge_detections
from aerith.geo.tiles import TileGrid, offsets


def test_offsets_end_at_the_edge_and_cover_every_pixel():
    assert offsets(384, 128, 80) == [0, 80, 160, 240, 256]
    assert offsets(256, 128, 128) == [0, 128]
    assert offsets(128, 128, 96) == [0]
    for length, tile, stride in [(1000, 256, 200), (257, 128, 100), (300, 300, 1)]:
        starts = offsets(length, tile, stride)
        covered = set()
        for s in starts:
            assert 0 <= s and s + tile <= length
            covered.update(range(s, s + tile))
        assert covered == set(range(length))


def test_grid_numbers_tiles_row_by_row_and_marks_inner_sides():
    grid = TileGrid(width=300, height=200, tile=128, overlap=0.25)
    assert grid.stride == 96
    assert grid.shape == (2, 3)  # ys 0, 72; xs 0, 96, 172
    tiles = list(grid)
    assert [t.index for t in tiles] == list(range(6)) and grid[4] == tiles[4]
    assert (tiles[4].row, tiles[4].col, tiles[4].x, tiles[4].y) == (1, 1, 96, 72)
    assert tiles[0].edges == (False, False, True, True)  # left/top are the raster's border
    assert tiles[4].edges == (True, True, True, False)
    assert tiles[5].bounds == (172, 72, 300, 200)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"width": 100, "height": 300, "tile": 128, "overlap": 0.2}, "larger than the raster (100 x 300 px)"),
        ({"width": 300, "height": 300, "tile": 128, "overlap": 1.0}, "overlap must be a fraction"),
    ],
)
def test_grid_rejects_what_does_not_fit(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TileGrid(**kwargs)


def test_cut_sides_only_counts_inner_sides():
    # touching the right side of a tile whose right side is the raster's border: not cut
    assert not cut_sides((100, 10, 128, 30), 128, (True, True, False, True), 1.0)
    assert cut_sides((100, 10, 128, 30), 128, (False, False, True, False), 1.0)
    assert cut_sides((0.5, 10, 20, 30), 128, (True, False, False, False), 1.0)
    assert not cut_sides((5, 10, 20, 30), 128, (True, True, True, True), 1.0)


def test_a_cut_box_gives_way_to_the_whole_view_of_its_neighbour():
    whole = Detection((90, 10, 120, 30), tile=1, order=0, cut=False)
    cut = Detection((90, 10, 100, 30), tile=0, order=0, cut=True)  # tile 0 ends at x = 100
    merged, stats = merge_detections([cut, whole], method="nmm", metric="iou", threshold=0.5)
    # IoU of the two is 1/3, below the threshold: only the cut-box rule removes the piece
    assert [m.box for m in merged] == [whole.box] and merged[0].complete
    assert stats.cut_dropped == 1 and stats.kept == 1


def test_pieces_no_tile_saw_whole_are_joined_by_nmm_and_not_by_nms():
    left = Detection((60, 10, 100, 30), tile=0, order=0, cut=True)  # tile 0: x < 100
    right = Detection((80, 10, 130, 30), tile=1, order=0, cut=True)  # tile 1: x >= 80
    merged, _ = merge_detections([left, right], method="nmm", metric="ios", threshold=0.5)
    assert [m.box for m in merged] == [(60, 10, 130, 30)] and not merged[0].complete and merged[0].tiles == (0, 1)
    merged, _ = merge_detections([left, right], method="nms", metric="ios", threshold=0.5)
    assert [m.box for m in merged] == [right.box]  # the larger piece leads


def test_duplicates_from_overlapping_tiles_become_one_but_a_tiles_own_boxes_stay():
    a = Detection((10, 10, 20, 20), tile=0, order=0, cut=False)
    b = Detection((10.2, 10, 20, 20.1), tile=1, order=0, cut=False)
    c = Detection((10, 10, 20, 20), tile=2, order=0, cut=False)
    same_tile = Detection((11, 11, 19, 19), tile=0, order=1, cut=False)
    merged, stats = merge_detections([a, b, c, same_tile], method="nmm", metric="iou", threshold=0.5)
    assert stats.duplicates_merged == 2 and stats.kept == 2
    assert sorted(m.tiles for m in merged) == [(0,), (0, 1, 2)]
    assert any(m.box == (10, 10, 20, 20.1) for m in merged)


def test_scores_order_the_greedy_pass_and_unknown_settings_are_refused():
    low = Detection((0, 0, 10, 10), tile=0, order=0, cut=False, score=0.2)
    high = Detection((1, 0, 11, 10), tile=1, order=0, cut=False, score=0.9)
    merged, _ = merge_detections([low, high], method="nms", metric="iou", threshold=0.5)
    assert merged[0].box == high.box and merged[0].score == 0.9
    assert box_ios((0, 0, 10, 10), (0, 0, 5, 5)) == 1.0
    with pytest.raises(ValueError, match="valid: nmm, nms"):
        merge_detections([low], method="wbf")
    with pytest.raises(ValueError, match="valid: ios, iou"):
        merge_detections([low], metric="giou")
