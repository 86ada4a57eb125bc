"""Shared base for "one folder per class" scene-classification datasets.

UCM, AID, NWPU-RESISC45, WHU-RS19 and EuroSAT all store
``<class folder>/<image file>``; only the folders above the class folders, the
class list and the split source differ. A subclass of
:class:`FolderClassificationDataset` states those as class attributes.

Rules shared by every such loader:

- Class folders match the class list case-insensitively with spaces, ``_``
  and ``-`` ignored (:func:`class_key`): ``railwayStation``,
  ``railway_station`` and ``Railway-Station`` are one class, reported with
  the loader's canonical spelling. The folders above them match the same way.
- A missing class folder, an empty one (no image in it), an unknown extra
  folder, or two folders for one class are errors naming the folder; with
  ``on_bad="skip"`` they are left out and counted in the warning instead.
  Hidden folders (``.x``) and zip leftovers (``__MACOSX``) are not class
  folders and are passed over.
- Image files are taken whatever their extension says: names ending in
  ``.tif .tiff .jpg .jpeg .png`` (any case) are indexed as they are, other
  files are indexed only when their first bytes are a TIFF, JPEG or PNG
  header. The other files in class folders (notes, a ``.bmp``
  or ``.gif``) are left out and counted in one
  :class:`~aerith.data.errors.SkippedRecordsWarning` naming their kinds;
  hidden files and the ones Windows writes (``.DS_Store``, ``Thumbs.db``,
  ``desktop.ini``) are system files and are not counted. The
  image is opened by its content when read (:func:`aerith.imageio.load_rgb`),
  which raises :class:`~aerith.data.errors.ImageReadError` naming an
  unreadable file; ``verify_images`` checks each image of the chosen split at
  index time instead (by default when ``on_bad="skip"``, see
  :class:`~aerith.data.datasets.base.RSDataset`).
- The class folders must be found in one place: two copies under the root
  (``AID/`` and ``AID_copy/AID/`` ... as the known layouts reach them) are an
  :class:`~aerith.data.errors.AmbiguousRootError` listing both.
- Split: an official split file when one is given or found (see
  :mod:`aerith.data.splits`), else the seeded stratified split. Copies of a
  split file at several levels that differ are refused, listing them.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

from aerith.data.datasets.base import ClassificationDataset, VerifyImages
from aerith.data.datasets.locate import pick_one
from aerith.data.errors import BadRecords, DataError, DatasetNotFoundError, OnBad, RecordError, SkippedRecordsWarning
from aerith.data.sample import Sample
from aerith.data.splits import Ratios, check_ratios, find_split_file, read_split_file, select_by_name, stratified_split

IMAGE_SUFFIXES: tuple[str, ...] = (".tif", ".tiff", ".jpg", ".jpeg", ".png")
_IMAGE_MAGIC: tuple[bytes, ...] = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+", b"\xff\xd8\xff", b"\x89PNG")
_NOT_CLASS_FOLDERS = ("__macosx",)


def class_key(name: str) -> str:
    """Folder or class name reduced for matching: lower case, no spaces, ``_`` or ``-``."""
    return "".join(ch for ch in name.lower() if ch not in " _-")


def find_child(folder: Path, name: str) -> Path | None:
    """The sub-folder of ``folder`` called ``name`` as :func:`class_key` matches it, or ``None``.

    An exact match wins over a loose one; among loose matches the first in
    sorted order is taken.
    """
    exact = folder / name
    if exact.is_dir():
        return exact
    if not folder.is_dir():
        return None
    wanted = class_key(name)
    for child in sorted(folder.iterdir()):
        if child.is_dir() and class_key(child.name) == wanted:
            return child
    return None


def find_path(root: Path, relative: str) -> Path | None:
    """Follow ``relative`` (``a/b/c``) down from ``root`` with :func:`find_child` at each step."""
    current: Path | None = root
    for part in Path(relative).parts:
        current = find_child(current, part) if current is not None else None
    return current


def find_children(folder: Path, name: str) -> list[Path]:
    """Every sub-folder of ``folder`` called ``name`` as :func:`class_key` matches it (``AID`` and ``aid`` are two)."""
    if not folder.is_dir():
        return []
    wanted = class_key(name)
    return [child for child in sorted(folder.iterdir()) if child.is_dir() and class_key(child.name) == wanted]


def find_paths(root: Path, relative: str) -> list[Path]:
    """Every folder that ``relative`` (``a/b/c``) reaches from ``root`` matching each step as :func:`find_children`."""
    current = [root]
    for part in Path(relative).parts:
        current = [child for folder in current for child in find_children(folder, part)]
    return current


def layout_candidates(paths: Sequence[str]) -> list[str]:
    """Each known path from the download root to the class folders, then its tails, then ``""``.

    ``["UCMerced_LandUse/Images"]`` gives ``["UCMerced_LandUse/Images", "Images", ""]``, so
    the user may pass the download folder, the dataset folder or the class
    folders' parent itself.
    """
    out: list[str] = []
    for path in paths:
        parts = Path(path).parts
        for i in range(len(parts)):
            tail = "/".join(parts[i:])
            if tail not in out:
                out.append(tail)
    out.append("")
    return out


def is_image_file(path: Path) -> bool:
    """Whether ``path`` is indexed as an image (see module notes)."""
    if path.name.startswith(".") or not path.is_file():
        return False
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return any(head.startswith(magic) for magic in _IMAGE_MAGIC)


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    return sorted((p for p in folder.iterdir() if is_image_file(p)), key=lambda p: p.name)


_SYSTEM_FILES = ("thumbs.db", "desktop.ini", "ehthumbs.db")


def left_out_files(folder: Path) -> list[Path]:
    """Files directly in ``folder`` that :func:`list_images` leaves out, hidden and system files excepted."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name.lower() not in _SYSTEM_FILES and not is_image_file(p)
    )


def warn_left_out(source: str, files: Sequence[Path]) -> None:
    """One :class:`SkippedRecordsWarning` counting the non-image files a loader passed over, by kind."""
    if not files:
        return
    kinds = Counter(p.suffix.lower() or p.name for p in files)
    listed = ", ".join(f"{n} {kind!r}" for kind, n in kinds.most_common())
    warnings.warn(
        f"{source}: left out {len(files)} file(s) that are not TIFF, JPEG or PNG images ({listed}; e.g. {files[0]})",
        SkippedRecordsWarning,
        stacklevel=3,
    )


def match_class_folders(
    folder: Path, classes: Sequence[str], bad: BadRecords, ignore: Sequence[str] = ()
) -> dict[str, Path]:
    """Map each canonical class to its folder under ``folder``.

    Unknown folders, duplicate folders for one class and missing classes go
    through ``bad`` (raise, or count and leave out). Folders named in
    ``ignore`` are passed over; the caller reports them.

    Raises:
        DatasetNotFoundError: a class folder is missing and ``bad`` raises.
        RecordError: an unknown or duplicate class folder and ``bad`` raises.
    """
    by_key = {class_key(c): c for c in classes}
    ignored = {class_key(name) for name in ignore}
    found: dict[str, Path] = {}
    for child in sorted(folder.iterdir()):
        if not child.is_dir() or child.name.startswith(".") or child.name.lower() in _NOT_CLASS_FOLDERS:
            continue
        if class_key(child.name) in ignored:
            continue
        canonical = by_key.get(class_key(child.name))
        if canonical is None:
            shown = ", ".join(classes[:6]) + (", ..." if len(classes) > 6 else "")
            bad.handle(
                RecordError(
                    child,
                    child.name,
                    None,
                    f"unknown class folder; expected one of the {len(classes)} classes ({shown})",
                )
            )
        elif canonical in found:
            bad.handle(
                RecordError(
                    child, child.name, None, f"a second folder for class {canonical!r} (first: {found[canonical]})"
                )
            )
        else:
            found[canonical] = child
    for canonical in classes:
        if canonical in found:
            continue
        path = folder / canonical
        if bad.on_bad == "raise":
            raise DatasetNotFoundError(
                path, f"the folder of class {canonical!r} (matched ignoring case, spaces, '_' and '-')"
            )
        bad.handle(RecordError(path, canonical, None, "class folder missing"))
    return found


class FolderClassificationDataset(ClassificationDataset):
    """A classification dataset stored as one folder per class.

    Subclasses set:
        name, classes: registry name and canonical class names (label order).
        layouts: known paths from the download root to the class folders,
            e.g. ``("UCMerced_LandUse/Images",)``; their tails and the root
            itself are tried too (:func:`layout_candidates`).
        split_files: torchgeo-style split file name per split, e.g.
            ``{"train": "uc_merced-train.txt", ...}``; empty when none exist.
        split_suffix: extension forced on split-file names (EuroSAT-MS).

    Args:
        root: the folder the user downloaded into, the dataset folder, or the
            class folders' parent.
        split: ``"train"``, ``"val"`` or ``"test"``.
        on_bad: ``"raise"`` on the first problem, or ``"skip"`` to leave bad
            folders/images out and warn once with the count.
        split_file: a file listing the requested split's image file names (or
            a folder holding the dataset's standard split files). Without it,
            the standard split files are looked for in the class folders'
            parent, the folders above it up to the download folder of the
            standard layout, and ``root``; if none is there, the seeded split
            is used. If some are there, the requested one must be too.
        seed: seed of the stratified split (default 0).
        ratios: train/val/test ratios of the stratified split
            (default :data:`aerith.data.splits.DEFAULT_RATIOS`, 0.7/0.1/0.2).
            Giving ``seed`` or ``ratios`` asks for the seeded split: the standard
            split files are then not read (a paper's 80/20 protocol on a copy
            that has them); with ``split_file`` too they are refused.
        verify_images: check each image of the split at index time and report
            unreadable ones as bad records (``None``, the default: when
            ``on_bad="skip"``; ``"full"`` decodes them; EuroSAT-MS also checks
            the band count).

    Attributes:
        image_dir: the folder holding the class folders.
        split_source: how the split was chosen, for results tables.
    """

    layouts: ClassVar[tuple[str, ...]] = ()
    split_files: ClassVar[Mapping[str, str]] = MappingProxyType({})
    split_suffix: ClassVar[str | None] = None

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        *,
        on_bad: OnBad = "raise",
        split_file: str | Path | None = None,
        seed: int | None = None,
        ratios: Ratios | None = None,
        verify_images: VerifyImages = None,
    ) -> None:
        self.split_file = Path(split_file).expanduser() if split_file is not None else None
        self.seeded = seed is not None or ratios is not None
        if self.seeded and self.split_file is not None:
            raise ValueError(f"{self.name}: give split_file or seed/ratios (the seeded split), not both")
        self.seed = 0 if seed is None else int(seed)
        self.ratios = check_ratios(ratios)
        self.image_dir: Path | None = None
        self.split_source = ""
        self.left_out: list[Path] = []
        super().__init__(root, split, on_bad=on_bad, verify_images=verify_images)

    # -- indexing -------------------------------------------------------

    def _find_image_dir(self) -> Path:
        candidates = layout_candidates(self.layouts)
        keys = {class_key(c) for c in self.classes}

        def n_classes(folder: Path) -> int:
            return len({class_key(c.name) for c in folder.iterdir() if c.is_dir() and class_key(c.name) in keys})

        found = [folder for relative in candidates for folder in find_paths(self.root, relative) if n_classes(folder)]
        chosen = pick_one(
            self.root, found, f"the {self.name} class folders", lambda f: f"{n_classes(f)} of its {len(self.classes)} class folders"
        )
        if chosen is not None:
            return chosen
        tried = ", ".join(f"{relative}/" if relative else "the root itself" for relative in candidates)
        raise DatasetNotFoundError(
            self.root,
            f"the {self.name} class folders (e.g. {self.classes[0]}/) under one of: {tried}",
        )

    def _expected_folders(self) -> tuple[str, ...]:
        """The classes whose folders must be on disk (all of them; a subclass may expect fewer)."""
        return self.classes

    def _index(self) -> list[tuple[Path, str]]:
        """Every ``(image path, canonical class)`` on disk, sorted by class then file name."""
        assert self.image_dir is not None
        expected = self._expected_folders()
        folders = match_class_folders(self.image_dir, expected, self.bad)
        entries = []
        for cls in expected:
            if cls not in folders:
                continue
            images = list_images(folders[cls])
            self.left_out += left_out_files(folders[cls])
            if not images:
                message = "empty class folder: no TIFF, JPEG or PNG image in it"
                self.bad.handle(RecordError(folders[cls], cls, None, message))
            entries += [(path, cls) for path in images]
        warn_left_out(f"{self.name} ({self.split})", self.left_out)
        return entries

    def _official_split_file(self) -> Path | None:
        """The split file to use, or ``None`` for the seeded split."""
        standard = self.split_files.get(self.split)
        if self.split_file is not None:
            if not self.split_file.is_dir():
                return self.split_file
            if standard is None:
                raise DataError(
                    f"{self.name} has no standard split file names; "
                    f"pass the split file itself, not the folder {self.split_file}"
                )
            return self.split_file / standard
        if not self.split_files or self.seeded:
            return None
        assert self.image_dir is not None
        # Up to the download folder of the deepest standard layout, wherever the user's root points.
        depth = max((len(Path(layout).parts) for layout in self.layouts), default=0)
        folders = list(dict.fromkeys([self.image_dir, *list(self.image_dir.parents)[:depth], self.root]))
        for name in self.split_files.values():
            found = find_split_file(folders, name)
            if found is not None:
                # Some official files are here: never mix them with a random split.
                wanted = found.parent / standard if standard else found
                if not wanted.is_file():
                    raise DatasetNotFoundError(wanted, f"the {self.split} split file beside {found.name}")
                # copies that differ at several levels are two candidates, not "the nearest wins"
                others = [f / wanted.name for f in folders if (f / wanted.name).is_file()]
                differing = [o for o in others if o.read_bytes() != wanted.read_bytes()]
                if differing:
                    pick_one(self.root, [wanted, *differing], f"the {self.name} {self.split} split file (they differ)")
                return wanted
        return None

    def _sample_meta(self, path: Path, cls: str) -> dict[str, Any]:
        """Extra ``Sample.meta`` entries of a subclass."""
        return {}

    def _load(self) -> list[Sample]:
        self.image_dir = self._find_image_dir()
        entries = self._index()
        split_path = self._official_split_file()
        if split_path is not None:
            names = read_split_file(split_path, suffix=self.split_suffix)
            chosen, missing = select_by_name(entries, names, lambda entry: entry[0].name)
            for name in missing:
                self.bad.handle(RecordError(split_path, name, None, f"listed image not found under {self.image_dir}"))
            self.split_source = f"split file {split_path}"
        else:
            # Keyed by file name, not folder spelling, so that every copy of a dataset splits alike.
            parts = stratified_split(entries, seed=self.seed, ratios=self.ratios, key=lambda p: p.name)
            chosen = parts[self.split]
            ratios = "/".join(f"{r:g}" for r in self.ratios)
            self.split_source = f"seeded stratified split (seed={self.seed}, train/val/test={ratios})"
        samples = []
        label_of = {c: i for i, c in enumerate(self.classes)}
        for path, cls in chosen:
            meta = {"label": label_of[cls], "id": path.stem, "folder": path.parent.name, **self._sample_meta(path, cls)}
            samples.append(Sample(image=path, task="cls", targets=(cls,), meta=meta))
        return samples
