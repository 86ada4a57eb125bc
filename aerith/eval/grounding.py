"""Visual grounding: IoU of the first predicted box with the true box."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from typing import Any

from aerith.boxes import box_iou

# 0.5, 0.55, ..., 0.95, rounded so that 0.7 is 0.7 and not 0.7000000000000001
THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


def grounding_scores(
    pred_boxes: Sequence[Sequence[Sequence[float]]], gt_boxes: Sequence[Sequence[float]]
) -> dict[str, Any]:
    """Acc@0.5, Acc@0.5:0.95 and mean IoU of grounding predictions.

    Args:
        pred_boxes: per sample, the boxes parsed from the answer (``parse_boxes``
            output, pixel ``(x1, y1, x2, y2)``); the first one is scored, an empty list
            means the answer was unparsable and scores IoU 0.
        gt_boxes: per sample, the true pixel box.

    Returns:
        ``acc@0.5``: fraction with IoU >= 0.5; ``acc@0.5:0.95``: mean over the
        thresholds 0.5, 0.55, ..., 0.95 of the fraction with IoU >= threshold;
        ``mean_iou`` (unparsable answers count 0); ``unparsable``: answers without
        a box; ``n``. Fractions are in 0-1.

    Raises:
        ValueError: lengths differ, no samples, or a prediction is a bare box
            instead of a list of boxes.
    """
    if len(pred_boxes) != len(gt_boxes):
        raise ValueError(
            f"pred_boxes and gt_boxes differ in length: {len(pred_boxes)} != {len(gt_boxes)}"
        )
    if not gt_boxes:
        raise ValueError("no predictions to score")
    ious = []
    unparsable = 0
    for i, (preds, gt) in enumerate(zip(pred_boxes, gt_boxes, strict=True)):
        if len(preds) and isinstance(preds[0], Real):
            raise ValueError(
                f"pred_boxes[{i}] = {preds!r} is a single box; pass a list of boxes per sample, e.g. [box]"
            )
        if len(preds) == 0:
            unparsable += 1
            ious.append(0.0)
        else:
            ious.append(box_iou(preds[0], gt))
    n = len(ious)
    return {
        "acc@0.5": sum(iou >= 0.5 for iou in ious) / n,
        "acc@0.5:0.95": sum(sum(iou >= t for iou in ious) / n for t in THRESHOLDS) / len(THRESHOLDS),
        "mean_iou": sum(ious) / n,
        "unparsable": unparsable,
        "n": n,
    }
