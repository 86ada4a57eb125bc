"""Baselines a trained model must beat, computed from the data of the same run.

Each is what a model that ignores the image could score on the held-out split:

- classification: chance (one over the number of classes) and the majority class;
- VQA: always answering the most frequent training answer of the question's type;
- grounding: the best constant box, the mean (and the median) training box in
  image-relative coordinates, scaled to each test image.
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


def constant_box_baseline(train: Iterable[Sample], test: Iterable[Sample]) -> dict[str, Any]:
    """Acc@0.5 and mean IoU of the mean and the median training box (relative coordinates), the better of each."""
    boxes = np.array([_relative(s) for s in train if s.box is not None])
    if not len(boxes):
        raise ValueError("grounding baseline: the training split has no boxes")
    test = [s for s in test if s.box is not None]
    if not test:
        raise ValueError("grounding baseline: the test split has no boxes")
    sizes = [np.array(image_size(s.image) * 2, dtype=float) for s in test]
    candidates = {"mean": boxes.mean(0), "median": np.median(boxes, 0)}
    scores = {}
    for name, box in candidates.items():
        ious = [box_iou(tuple(box * size), s.box) for s, size in zip(test, sizes)]
        scores[name] = {"acc@0.5": float(np.mean([i >= 0.5 for i in ious])), "mean_iou": float(np.mean(ious))}
    # each metric's baseline is the better of the two boxes on that metric
    return {
        "acc@0.5": max(s["acc@0.5"] for s in scores.values()),
        "mean_iou": max(s["mean_iou"] for s in scores.values()),
        "boxes": {name: [round(float(v), 4) for v in box] for name, box in candidates.items()},
        "per_box": scores,
    }
