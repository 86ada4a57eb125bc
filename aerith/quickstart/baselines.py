"""Baselines a trained model must beat, computed from the data of the same run.

Each is what a model that ignores the image could score on the held-out split:

- classification: chance (one over the number of classes) and the majority class;
- VQA: always answering the most frequent training answer of the question's type;
- grounding: the best constant box: boxes in image-relative coordinates (scaled to each
  test image), searched on the training boxes (every box of a 1/16 grid, for mean IoU and for
  Acc@0.5) beside the mean and the median training box; each metric's baseline is the best of
  these on the test split.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

from aerith.boxes import box_iou
from aerith.imageio import image_size
from aerith.data.sample import Sample


def classification_baseline(train: Iterable[Sample], test: Iterable[Sample], n_classes: int) -> dict[str, float]:
    """``{"chance": 1/K, "majority": accuracy of always answering the most frequent training class}``."""
    counts = Counter(s.targets[0] for s in train)
    if not counts:
        raise ValueError("classification baseline: the training split has no samples")
    top = counts.most_common(1)[0][0]
    test = list(test)
    majority = float(np.mean([s.targets[0] == top for s in test])) if test else 0.0
    return {"chance": 1.0 / n_classes, "majority": majority, "majority_class": top}


def vqa_baseline(train: Iterable[Sample], test: Iterable[Sample]) -> dict[str, Any]:
    """Overall accuracy (and per type) of answering each question type's most frequent training answer."""
    by_type: dict[str, Counter] = defaultdict(Counter)
    for s in train:
        by_type[s.kind or ""][s.targets[0]] += 1
    top = {kind: c.most_common(1)[0][0] for kind, c in by_type.items()}
    hits: dict[str, list[bool]] = defaultdict(list)
    for s in test:
        answer = top.get(s.kind or "")
        hits[s.kind or ""].append(answer is not None and answer in s.targets)
    everything = [h for v in hits.values() for h in v]
    if not everything:
        raise ValueError("VQA baseline: the test split has no questions")
    return {
        "overall": float(np.mean(everything)),
        "per_type": {k: float(np.mean(v)) for k, v in sorted(hits.items())},
        "answers": dict(sorted(top.items())),
    }


def _relative(sample: Sample) -> np.ndarray:
    w, h = image_size(sample.image)
    x1, y1, x2, y2 = sample.box
    return np.array([x1 / w, y1 / h, x2 / w, y2 / h])


GRID = 16  # the constant-box search tries every box with corners on a GRID x GRID lattice of the image


def _relative_ious(candidates: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of every candidate with every box, ``(len(candidates), len(boxes))``; relative coordinates
    (IoU does not change when each axis is scaled, so this is the IoU in each image's pixels)."""
    c, b = candidates[:, None, :], boxes[None, :, :]
    iw = np.clip(np.minimum(c[..., 2], b[..., 2]) - np.maximum(c[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(c[..., 3], b[..., 3]) - np.maximum(c[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area = lambda x: np.clip(x[..., 2] - x[..., 0], 0, None) * np.clip(x[..., 3] - x[..., 1], 0, None)  # noqa: E731
    union = area(c) + area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def search_constant_box(boxes: np.ndarray, grid: int = GRID) -> dict[str, np.ndarray]:
    """The lattice boxes with the best mean IoU and the best Acc@0.5 (ties: the better mean IoU) on ``boxes``."""
    ticks = np.linspace(0.0, 1.0, grid + 1)
    spans = np.array([(a, b) for i, a in enumerate(ticks) for b in ticks[i + 1:]])
    xs, ys = np.repeat(spans, len(spans), 0), np.tile(spans, (len(spans), 1))
    candidates = np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], 1)
    mean_iou = np.empty(len(candidates))
    acc = np.empty(len(candidates))
    for start in range(0, len(candidates), 512):  # bounded memory for a few thousand training boxes
        ious = _relative_ious(candidates[start:start + 512], boxes)
        mean_iou[start:start + 512] = ious.mean(1)
        acc[start:start + 512] = (ious >= 0.5).mean(1)
    return {"searched (mean IoU)": candidates[int(np.argmax(mean_iou))],
            "searched (Acc@0.5)": candidates[int(np.lexsort((mean_iou, acc))[-1])]}


def constant_box_baseline(train: Iterable[Sample], test: Iterable[Sample]) -> dict[str, Any]:
    """Acc@0.5 and mean IoU of the best constant box: the mean and the median training box and the lattice
    boxes searched on the training boxes (relative coordinates); each metric's baseline is the best of them."""
    boxes = np.array([_relative(s) for s in train if s.box is not None])
    if not len(boxes):
        raise ValueError("grounding baseline: the training split has no boxes")
    test = [s for s in test if s.box is not None]
    if not test:
        raise ValueError("grounding baseline: the test split has no boxes")
    sizes = [np.array(image_size(s.image) * 2, dtype=float) for s in test]
    candidates = {"mean": boxes.mean(0), "median": np.median(boxes, 0), **search_constant_box(boxes)}
    scores = {}
    for name, box in candidates.items():
        ious = [box_iou(tuple(box * size), s.box) for s, size in zip(test, sizes)]
        scores[name] = {"acc@0.5": float(np.mean([i >= 0.5 for i in ious])), "mean_iou": float(np.mean(ious))}
    # each metric's baseline is the best of the constant boxes on that metric
    return {
        "acc@0.5": max(s["acc@0.5"] for s in scores.values()),
        "mean_iou": max(s["mean_iou"] for s in scores.values()),
        "boxes": {name: [round(float(v), 4) for v in box] for name, box in candidates.items()},
        "per_box": scores,
    }
