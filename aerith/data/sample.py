"""The unit every dataset loader yields."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Task = Literal["cls", "vqa", "cap", "vg"]
TASKS: tuple[str, ...] = ("cls", "vqa", "cap", "vg")

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Sample:
    """One record of a remote-sensing dataset.

    Attributes:
        image: path of the image file on disk.
        task: ``"cls"``, ``"vqa"``, ``"cap"`` or ``"vg"``.
        prompt: the question (VQA) or referring expression (VG); ``None`` otherwise.
        targets: class name (cls), accepted answers (vqa) or reference captions (cap);
            for VG the expression's box is in ``box`` and ``targets`` is empty.
        box: ``(x1, y1, x2, y2)`` in pixels of the original image, or ``None``.
        kind: the question type for VQA (``presence``, ``comp``, ``count`` ...) or ``None``.
        meta: anything else worth keeping (record id, object category, band choice ...).
    """

    image: Path
    task: Task
    prompt: str | None = None
    targets: tuple[str, ...] = ()
    box: Box | None = None
    kind: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"Sample.task must be one of {TASKS}, got {self.task!r}")
        if not isinstance(self.targets, tuple):
            object.__setattr__(self, "targets", tuple(self.targets))
        if not isinstance(self.image, Path):
            object.__setattr__(self, "image", Path(self.image))
        if self.box is not None:
            x1, y1, x2, y2 = (float(v) for v in self.box)
            object.__setattr__(self, "box", (x1, y1, x2, y2))
