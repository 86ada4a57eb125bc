"""Merging boxes found in overlapping tiles into one box per object.

Two steps, in raster pixels:

1. **Cut boxes.** A box that touches a tile side lying inside the raster (within
   ``edge_tolerance`` of the tile side) may show only the part of an object that
   the tile saw. It is dropped when a box from another tile that touches no
   inner side covers at least ``threshold`` of it (intersection over the cut
   box's area): that neighbour saw the object whole.
2. **Duplicates.** The rest are merged greedily, as SAHI's ``GREEDYNMM`` and
   ``NMS`` do: boxes are taken in order (whole before cut, then higher score,
   larger area, lower tile number, earlier in the answer); each box not yet
   taken claims every later box from *another* tile whose match with it (IoU,
   or intersection over the smaller box, "ios") is at least ``threshold``, one
   box per tile. ``nmm`` keeps the union of a group (which also joins the
   pieces of an object larger than the overlap, that no tile saw whole);
   ``nms`` keeps the first box. Boxes of one tile are never merged with each
   other: within a tile the model's answer stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aerith.boxes import box_iou

MERGE_METHODS = ("nmm", "nms")
MATCH_METRICS = ("ios", "iou")

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Detection:
    """One box as a tile's answer gave it, in raster pixels.

    Attributes:
        box: ``(x1, y1, x2, y2)`` raster pixels, exclusive ends.
        tile: the tile's number.
        order: its place in the tile's answer.
        cut: whether it touches a tile side that lies inside the raster.
        score: the model's confidence, if it gives one.
    """

    box: Box
    tile: int
    order: int
    cut: bool
    score: float | None = None

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])


@dataclass(frozen=True)
class MergedDetection:
    """One object after merging.

    Attributes:
        box: ``(x1, y1, x2, y2)`` raster pixels.
        tile: the tile of the box that led the group.
        tiles: every tile whose box joined the group, ascending.
        complete: False when every box of the group was cut at a tile side (the object may be larger).
        score: the highest score of the group, if any.
    """

    box: Box
    tile: int
    tiles: tuple[int, ...]
    complete: bool
    score: float | None


@dataclass(frozen=True)
class MergeStats:
    boxes: int
    cut_dropped: int
    duplicates_merged: int
    kept: int

    def to_dict(self) -> dict[str, int]:
        return {
            "boxes": self.boxes,
            "cut_boxes_dropped": self.cut_dropped,
            "duplicates_merged": self.duplicates_merged,
            "objects": self.kept,
        }


def intersection(a: Box, b: Box) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def box_ios(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area; 0 for degenerate boxes."""
    smaller = min(max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1]), max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1]))
    return intersection(a, b) / smaller if smaller > 0 else 0.0


def cut_sides(box: Box, size: int, inner: Sequence[bool], tolerance: float) -> bool:
    """Whether a box in tile pixels touches one of the tile's inner sides (left, top, right, bottom)."""
    x1, y1, x2, y2 = box
    near = (x1 <= tolerance, y1 <= tolerance, x2 >= size - tolerance, y2 >= size - tolerance)
    return any(n and i for n, i in zip(near, inner))


class _Index:
    """Boxes in a shapely STRtree, for the neighbours of a box in O(log n)."""

    def __init__(self, boxes: Sequence[Box]) -> None:
        import shapely

        self._tree = shapely.STRtree(shapely.box(*zip(*boxes))) if boxes else None

    def near(self, box: Box) -> list[int]:
        if self._tree is None:
            return []
        import shapely

        return sorted(int(i) for i in self._tree.query(shapely.box(*box)))


def merge_detections(
    detections: Sequence[Detection], *, method: str = "nmm", metric: str = "ios", threshold: float = 0.5
) -> tuple[list[MergedDetection], MergeStats]:
    """One box per object from the boxes of overlapping tiles (see module notes).

    Returns:
        the merged boxes in the order they were taken, and counts.
    """
    if method not in MERGE_METHODS:
        raise ValueError(f"unknown merge method {method!r}; valid: {', '.join(MERGE_METHODS)}")
    if metric not in MATCH_METRICS:
        raise ValueError(f"unknown match metric {metric!r}; valid: {', '.join(MATCH_METRICS)}")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"match threshold must be in (0, 1], got {threshold}")
    dets = list(detections)
    index = _Index([d.box for d in dets])

    # 1. cut boxes seen whole by another tile
    dropped = set()
    for i, d in enumerate(dets):
        if not d.cut or d.area <= 0:
            continue
        for j in index.near(d.box):
            other = dets[j]
            if not other.cut and other.tile != d.tile and intersection(d.box, other.box) / d.area >= threshold:
                dropped.add(i)
                break

    # 2. greedy grouping of the rest
    match = box_ios if metric == "ios" else box_iou

    def key(i: int) -> tuple:
        d = dets[i]
        return (d.cut, -(d.score if d.score is not None else float("-inf")), -d.area, d.tile, d.order)

    order = sorted((i for i in range(len(dets)) if i not in dropped), key=key)
    rank = {i: r for r, i in enumerate(order)}
    taken: set[int] = set()
    merged: list[MergedDetection] = []
    for i in order:
        if i in taken:
            continue
        taken.add(i)
        lead = dets[i]
        members = [i]
        tiles = {lead.tile}
        for j in sorted((j for j in index.near(lead.box) if j in rank and j not in taken), key=rank.__getitem__):
            other = dets[j]
            if other.tile in tiles or rank[j] < rank[i]:
                continue
            if match(lead.box, other.box) >= threshold:
                taken.add(j)
                members.append(j)
                tiles.add(other.tile)
        group = [dets[m] for m in members]
        if method == "nmm":
            box = (
                min(g.box[0] for g in group),
                min(g.box[1] for g in group),
                max(g.box[2] for g in group),
                max(g.box[3] for g in group),
            )
        else:
            box = lead.box
        scores = [g.score for g in group if g.score is not None]
        merged.append(
            MergedDetection(
                box=box,
                tile=lead.tile,
                tiles=tuple(sorted(g.tile for g in group)),
                complete=not all(g.cut for g in group),
                score=max(scores) if scores else None,
            )
        )
    stats = MergeStats(
        boxes=len(dets), cut_dropped=len(dropped), duplicates_merged=len(order) - len(merged), kept=len(merged)
    )
    return merged, stats
