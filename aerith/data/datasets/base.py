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
    The index is built in ``__init__`` and never per item.
    """

    name: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    task: ClassVar[str] = ""

    def __init__(self, root: str | Path, split: str = "train", *, on_bad: OnBad = "raise") -> None:
        self.root = Path(root).expanduser()
        if not self.root.exists():
            raise DatasetNotFoundError(self.root, f"the root folder of the {self.name or type(self).__name__} dataset")
        if split not in self.splits:
            raise ValueError(f"{self.name}: unknown split {split!r}; valid splits: {', '.join(self.splits)}")
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
