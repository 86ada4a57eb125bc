"""Base classes every dataset loader derives from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar, Literal, overload

from aerith.data.errors import (
    ARCHIVE_SUFFIXES,
    BadRecords,
    DataError,
    DatasetNotFoundError,
    ImageReadError,
    OnBad,
    RecordError,
    archive_hint,
)
from aerith.imageio import check_image
from aerith.data.sample import Sample

VerifyImages = bool | Literal["header", "full"] | None
# meta keys that name a sample's record, most specific first (as the evaluation's sample ids)
_RECORD_KEYS = ("question_id", "object_index", "id", "imgid", "image_id", "filename", "line")


def record_of(sample: Sample, index: int) -> object:
    """The loader's own id of a sample's record (its position in the split when it has none)."""
    for key in _RECORD_KEYS:
        if sample.meta.get(key) is not None:
            return sample.meta[key]
    return index


def check_root(root: Path, label: str) -> None:
    """A dataset root must be an existing folder; an archive given as the root says to extract it.

    Raises:
        DatasetNotFoundError: ``root`` does not exist.
        DataError: ``root`` is a file.
    """
    if not root.exists():
        raise DatasetNotFoundError(root, f"the root folder of the {label} dataset{archive_hint(root.parent) if root.parent.is_dir() else ''}")
    if not root.is_dir():
        if root.name.lower().endswith(ARCHIVE_SUFFIXES):
            raise DataError(f"{root}: is an archive, not the {label} folder{archive_hint(root)}")
        raise DataError(f"{root}: is a file; the root of the {label} dataset must be a folder")


def verify_mode(verify_images: VerifyImages, on_bad: OnBad) -> str | None:
    """``"header"``, ``"full"`` or ``None`` (no check) for a loader's ``verify_images`` and ``on_bad``.

    ``None`` (the default) checks headers exactly when the caller asked to skip
    bad records, so that ``on_bad="skip"`` covers unreadable images too.
    """
    if verify_images is None:
        return "header" if on_bad == "skip" else None
    if verify_images is True:
        return "header"
    if verify_images is False:
        return None
    if verify_images in ("header", "full"):
        return str(verify_images)
    raise ValueError(f"verify_images must be None, True, False, 'header' or 'full', got {verify_images!r}")


class RSDataset(Sequence[Sample]):
    """A dataset indexed once into a list of :class:`Sample`.

    Subclasses set ``name``, ``splits`` and ``task`` and implement
    :meth:`_load`, which reads the annotations and returns every sample of
    ``self.split``; bad records go through ``self.bad.handle(RecordError(...))``.
    The index is built in ``__init__`` and never per item.

    Unreadable images are found by one mechanism for every loader: with
    ``verify_images`` (``"header"``: :func:`aerith.imageio.check_image` on each
    distinct image of the split, about as fast as opening it; ``"full"``: decode
    it), an image that will not read makes each of its samples a bad record
    (file = the image, field ``"image"``), raised or counted like any other.
    The default checks headers exactly when ``on_bad="skip"``. The images found
    unreadable are in :attr:`unreadable_images`.

    A root that is an archive, or a "not found" error in a folder holding
    archives, says to extract them first. ``default_split`` is
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

    def __init__(
        self, root: str | Path, split: str | None = None, *, on_bad: OnBad = "raise", verify_images: VerifyImages = None
    ) -> None:
        self.root = Path(root).expanduser()
        label = self.name or type(self).__name__
        check_root(self.root, label)
        mode = verify_mode(verify_images, on_bad)
        split = self.default_split if split is None else split
        if split not in self.splits:
            raise ValueError(
                f"{label}: unknown split {split!r}; valid splits: {', '.join(self.splits)} (default: {self.default_split})"
            )
        self.split = split
        self.bad = BadRecords(on_bad, source=f"{self.name} ({split})")
        self.unreadable_images: dict[Path, str] = {}
        try:
            samples = self._load()
        except DatasetNotFoundError as err:
            hint = archive_hint(self.root)
            if hint and "extract" not in err.expected:
                raise DatasetNotFoundError(err.path, err.expected + hint) from err
            raise
        self._samples: list[Sample] = self._verify(samples, full=mode == "full") if mode else samples
        self.bad.finish()

    def _check_image(self, path: Path, full: bool) -> None:
        """Raise :class:`ImageReadError` when ``path`` will not read; loaders may check more (band counts)."""
        check_image(path, full=full)

    def _verify(self, samples: list[Sample], full: bool) -> list[Sample]:
        """Leave out (or raise on) the samples whose image will not read; each image is checked once."""
        kept = []
        checked: dict[Path, str | None] = {}
        for index, sample in enumerate(samples):
            if sample.image not in checked:
                try:
                    self._check_image(sample.image, full)
                    checked[sample.image] = None
                except ImageReadError as err:
                    checked[sample.image] = str(err).removeprefix(f"{err.path}: ")
                    self.unreadable_images[sample.image] = checked[sample.image]  # type: ignore[assignment]
            reason = checked[sample.image]
            if reason is None:
                kept.append(sample)
            else:
                self.bad.handle(RecordError(sample.image, record_of(sample, index), "image", reason))
        return kept

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
    """A scene-classification dataset; ``classes`` holds the canonical names in order.

    ``class_names`` spells, for prompts and targets, the names :func:`aerith.data.instructions.humanise`
    cannot split (UCM's ``denseresidential`` -> ``dense residential``); labels, predictions and scores
    keep the canonical names.
    """

    task = "cls"
    classes: tuple[str, ...] = ()
    class_names: ClassVar[Mapping[str, str]] = MappingProxyType({})
