"""Scene classification scores of free-text answers; answers are matched to classes by
:func:`aerith.parsing.classes.match_class` (its docstring gives the rules)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aerith.parsing.classes import FUZZY_CUTOFF, MATCH_KINDS, ClassIndex, match_class  # noqa: F401 (re-exported)


def classification_scores(
    predictions: Sequence[str], references: Sequence[str], classes: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, balanced accuracy and a confusion matrix of free-text answers.

    Args:
        predictions: one answer per sample.
        references: the true class per sample; must name one of ``classes``
            (normalised exact match, e.g. ``dense_residential`` = ``Dense Residential``).
        classes: all class names, in the order of the confusion matrix.

    Returns:
        ``accuracy``: fraction correct (answers matching no class are wrong);
        ``balanced_accuracy``: mean per-class recall over the classes present in
        ``references``; ``per_class_accuracy``: ``{class: recall}`` for those classes;
        ``unmatched``: answers matching no class; ``match_counts``: ``{how: count}`` over
        ``MATCH_KINDS``; ``confusion_matrix``: ``[true][predicted]`` counts in class
        order (unmatched answers are not in it); ``unmatched_per_class``: unmatched
        answers per true class, in class order; ``classes``; ``n``.

    Raises:
        ValueError: lengths differ, no samples, or a reference names no class.
    """
    if len(predictions) != len(references):
        raise ValueError(
            f"predictions and references differ in length: {len(predictions)} != {len(references)}"
        )
    if not predictions:
        raise ValueError("no predictions to score")
    index = ClassIndex.build(classes)
    c = len(index.classes)
    matrix = [[0] * c for _ in range(c)]
    unmatched_per_class = [0] * c
    match_counts = dict.fromkeys(MATCH_KINDS, 0)
    for n, (pred, ref) in enumerate(zip(predictions, references, strict=True)):
        true = index.index_of(ref)
        if true is None:
            raise ValueError(f"references[{n}] = {ref!r} is not one of the classes {list(index.classes)}")
        guess, how = index.match(pred)
        match_counts[how] += 1
        if guess is None:
            unmatched_per_class[true] += 1
        else:
            matrix[true][guess] += 1
    support = [sum(row) + u for row, u in zip(matrix, unmatched_per_class, strict=True)]
    per_class = {index.classes[i]: matrix[i][i] / support[i] for i in range(c) if support[i]}
    correct = sum(matrix[i][i] for i in range(c))
    return {
        "accuracy": correct / len(predictions),
        "balanced_accuracy": sum(per_class.values()) / len(per_class),
        "per_class_accuracy": per_class,
        "unmatched": sum(unmatched_per_class),
        "match_counts": match_counts,
        "confusion_matrix": matrix,
        "unmatched_per_class": unmatched_per_class,
        "classes": list(index.classes),
        "n": len(predictions),
    }
