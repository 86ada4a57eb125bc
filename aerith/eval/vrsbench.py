"""VRSBench's scoring where it differs from the shared metrics (the registry's ``vrsbench-*`` entries).

Grounding follows the authors' ``compute_metrics`` notebook: references are the
``{<x1><y1><x2><y2>}`` boxes of the evaluation file on a 0-100 grid, the IoU is
their ``computeIoU`` (corners inclusive: ``+1`` on each side, so a zero-width
reference box still has area), and Acc@0.5 / Acc@0.7 are reported for unique,
non-unique and all expressions, every expression in the denominator (an answer
without a box scores IoU 0). Captions add the mean length in words (the
paper's Avg_L). VQA uses the shared :func:`~aerith.eval.vqa.vqa_scores`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

GRID100 = 100
GROUPS: tuple[tuple[str, bool | None], ...] = (("unique", True), ("non-unique", False))


def iou_inclusive(a: Sequence[float], b: Sequence[float]) -> float:
    """The VRSBench authors' IoU of two ``(x1, y1, x2, y2)`` boxes with inclusive corners (``+1`` widths)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    inter = iw * ih
    union = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter
    return inter / union if union > 0 else 0.0


def to_grid100(box: Sequence[float], image_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Pixel ``(x1, y1, x2, y2)`` -> integers on the 0-100 grid (truncated, clamped), as the references are.

    The evaluation file's boxes are ``int()`` of the normalised box, so a prediction is
    truncated the same way: rounding would move a perfect prediction of a small object
    one cell off its reference (IoU 0.29 for a 3x3-cell box). A value within 1e-6 below
    an integer (float error of a 0-100 answer read back from pixels) counts as that integer.
    """
    w, h = image_size
    scale = (GRID100 / w, GRID100 / h, GRID100 / w, GRID100 / h)
    out = [min(GRID100, max(0, math.floor(v * s + 1e-6))) for v, s in zip(box, scale, strict=True)]
    return out[0], out[1], out[2], out[3]


def _accuracies(ious: Sequence[float]) -> dict[str, Any]:
    n = len(ious)
    if n == 0:
        return {"acc@0.5": None, "acc@0.7": None, "mean_iou": None, "n": 0}
    return {
        "acc@0.5": sum(i >= 0.5 for i in ious) / n,
        "acc@0.7": sum(i >= 0.7 for i in ious) / n,
        "mean_iou": sum(ious) / n,
        "n": n,
    }


def grounding_scores(
    pred_boxes: Sequence[Sequence[Sequence[float]]],
    refs100: Sequence[Sequence[int]],
    image_sizes: Sequence[tuple[int, int]],
    unique: Sequence[bool],
) -> dict[str, Any]:
    """VRSBench grounding scores.

    Args:
        pred_boxes: per expression, the pixel boxes parsed from the answer (the first is
            scored; none: IoU 0, counted as ``unparsable``).
        refs100: per expression, the reference box on the 0-100 grid.
        image_sizes: per expression, ``(width, height)`` of its image.
        unique: per expression, whether it names the only object of its class.

    Returns:
        ``acc@0.5``, ``acc@0.7``, ``mean_iou``, ``n`` over all expressions; ``acc@0.5:0.95``
        (mean over 0.5, 0.55 ... 0.95, for comparison with the other grounding
        benchmarks); ``unparsable``; ``subsets``: ``{"unique": {...}, "non-unique": {...}}``
        with ``acc@0.5``, ``acc@0.7``, ``mean_iou``, ``n``. Fractions in 0-1.

    Raises:
        ValueError: the lengths differ or there is nothing to score.
    """
    from aerith.eval.grounding import THRESHOLDS

    if not (len(pred_boxes) == len(refs100) == len(image_sizes) == len(unique)):
        raise ValueError(
            f"pred_boxes, refs100, image_sizes and unique differ in length: "
            f"{len(pred_boxes)}, {len(refs100)}, {len(image_sizes)}, {len(unique)}"
        )
    if not refs100:
        raise ValueError("no predictions to score")
    ious, unparsable = [], 0
    for preds, ref, size in zip(pred_boxes, refs100, image_sizes, strict=True):
        if len(preds) == 0:
            unparsable += 1
            ious.append(0.0)
        else:
            ious.append(iou_inclusive(to_grid100(preds[0], size), ref))
    out = _accuracies(ious)
    out["acc@0.5:0.95"] = sum(sum(i >= t for i in ious) / len(ious) for t in THRESHOLDS) / len(THRESHOLDS)
    out["unparsable"] = unparsable
    out["subsets"] = {name: _accuracies([i for i, u in zip(ious, unique, strict=True) if u is flag]) for name, flag in GROUPS}
    return out


def mean_length(captions: Sequence[str]) -> float | None:
    """Mean number of words of the captions (the paper's Avg_L); ``None`` for none."""
    return sum(len(c.split()) for c in captions) / len(captions) if captions else None
