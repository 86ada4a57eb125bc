"""Base classes every dataset loader derives from."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, overload

from aerith.data.errors import BadRecords, DatasetNotFoundError, OnBad
from aerith.data.sample import Sample


class RSDataset(Sequence[Sample]):
    """A dataset indexed once into a list of :class:`Sample`.

    Subclasses set ``name``, ``splits`` and ``task`` and implement
    :meth:`_load`, which reads the annotations and returns every sample of
    ``self.split``; bad records go through ``self.bad.handle(RecordError(...))``.
    The index is built in ``__init__`` and never per item. ``default_split`` is
    the split read when the caller names none: ``"train"`` unless the dataset
    has no such split (a benchmark such as RSIEval declares ``"test"``); it must
    be one of ``splits``, which is checked when the subclass is defined.
    """

    name: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    default_split: ClassVar[str] = "train"
    task: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.default_split not in cls.splits:
            raise TypeError(
                f"{cls.__name__}: default_split {cls.default_split!r} is not one of its splits ({', '.join(cls.splits)})"
            )

    def __init__(self, root: str | Path, split: str | None = None, *, on_bad: OnBad = "raise") -> None:
        self.root = Path(root).expanduser()
        label = self.name or type(self).__name__
        if not self.root.exists():
            raise DatasetNotFoundError(self.root, f"the root folder of the {label} dataset")
        split = self.default_split if split is None else split
        if split not in self.splits:
            raise ValueError(
                f"{label}: unknown split {split!r}; valid splits: {', '.join(self.splits)} (default: {self.default_split})"
            )
        self.split = split
        self.bad = BadRecords(on_bad, source=f"{self.name} ({split})")
        self._samples: list[Sample] = self._load()
        self.bad.finish()

    def _load(self) -> list[Sample]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def skipped(self) -> int:
        """Number of bad records skipped with ``on_bad="skip"``."""
        return self.bad.count

    def __len__(self) -> int:
        return len(self._samples)

    @overload
    def __getitem__(self, index: int) -> Sample: ...
    @overload
    def __getitem__(self, index: slice) -> list[Sample]: ...
    def __getitem__(self, index):
        return self._samples[index]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, samples={len(self)})"


class ClassificationDataset(RSDataset):
    """A scene-classification dataset; ``classes`` holds the canonical names in order."""

    task = "cls"
    classes: tuple[str, ...] = ()
