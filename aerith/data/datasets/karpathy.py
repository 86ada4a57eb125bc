"""Caption datasets in the Karpathy JSON format: RSICD, UCM-Captions, Sydney-Captions, RSITMD.

The shared format::

    {"images": [{"filename": "airport_1.jpg", "imgid": 0, "split": "train"|"val"|"test",
                 "sentids": [...], "sentences": [{"tokens": [...], "raw": "...", "imgid", "sentid"}]}]}

Choices shared by the four loaders:

- References are the ``raw`` strings (never ``tokens``), stripped, with the
  space before a final period removed (``"many planes ."`` -> ``"many planes."``).
- Images padded to five captions with duplicates (RSICD, UCM-Captions) keep
  all five as references (CIDEr-D weighs them so); ``meta["n_unique_captions"]``
  counts the distinct ones for statistics.
- Empty ``raw`` strings (a few in RSITMD) are left out of the references and
  counted in one warning; an image left with no reference is a bad record.
- The split comes from each record's ``split`` field, never from sizes;
  ``"restval"`` (Karpathy's extra training images) counts as ``train``.
- A record is checked for its fields before its split is read, so a record
  without a usable ``split`` is reported whichever split is loaded.
- Root: the dataset folder or any folder above it (two levels down are
  searched). Images are checked to exist when the dataset is indexed;
  unreadable ones are reported when read (or at index time with
  ``verify_images``, the default with ``on_bad="skip"``).

Never the wrong dataset: UCM-Captions and Sydney-Captions both name their
file ``dataset.json``, so every annotation file found below the root is
identified (:func:`identify`) by, in order, its ``dataset`` field where it
names one of the four sets (the values in the released files are
unconfirmed: any value containing ``ucm``/``merced``, ``sydney``, ``rsicd`` or
``rsitmd`` counts), its content (the release's image count: 2,100 / 613 /
10,921 / 4,743, with UCM's and Sydney's numbered ``N.tif`` names; numbers
above 613 rule Sydney out, names that are not numbers rule both out), and
then the nearest folder name between the root and the file that names a set
(``UCM_captions``, ``Sydney``, ...). A loader takes the one file identified
as its own; a file nothing identifies is taken only when it is the root's
only candidate. Several of its own, or unidentified files beside others,
are an :class:`~aerith.data.errors.AmbiguousRootError` listing each
candidate and what it was identified as; a root holding only another set's
file is an error naming that set.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from aerith.data.datasets.base import RSDataset
from aerith.data.datasets.locate import distinct, folders_below, shown
from aerith.data.errors import AmbiguousRootError, DataError, DatasetNotFoundError, RecordError, SkippedRecordsWarning
from aerith.data.sample import Sample

_SPACE_BEFORE_PERIOD = re.compile(r"\s+\.$")
_NUMBERED = re.compile(r"^(\d+)\.[A-Za-z0-9]+$")
SPLIT_ALIASES = {"restval": "train"}
SEARCH_DEPTH = 2


@dataclass(frozen=True)
class Release:
    """What identifies one caption set's released annotation file.

    Attributes:
        images: number of image records in the release.
        numbered: whether its file names are ``N.<ext>`` (UCM, Sydney); ``None`` when mixed (RSICD).
        keywords: lower-case pieces of a ``dataset`` field or folder name that name the set.
        file: the annotation file's name, lower case.
    """

    images: int
    numbered: bool | None
    keywords: tuple[str, ...]
    file: str


RELEASES: dict[str, Release] = {
    "ucm-captions": Release(2100, True, ("ucm", "merced"), "dataset.json"),
    "sydney-captions": Release(613, True, ("sydney",), "dataset.json"),
    "rsicd": Release(10921, None, ("rsicd",), "dataset_rsicd.json"),
    "rsitmd": Release(4743, False, ("rsitmd",), "dataset_rsitmd.json"),
}


@dataclass(frozen=True)
class Identity:
    """What an annotation file was identified as (``name`` ``None``: unidentified), why, and which sets it cannot be."""

    name: str | None
    reason: str
    excluded: dict[str, str]

    def describe(self, loader: str) -> str:
        """In words, for an error of the ``loader`` set."""
        if self.name is not None:
            return f"{self.name}: {self.reason}"
        if loader in self.excluded:
            return f"not {loader}: {self.excluded[loader]}"
        return f"unidentified: {self.reason}"


def _named_in(text: str, releases: dict[str, Release]) -> str | None:
    lowered = text.lower()
    hits = [name for name, release in releases.items() if any(k in lowered for k in release.keywords)]
    return hits[0] if len(hits) == 1 else None


def identify(data: Any, folder_names: list[str], file_name: str = "") -> Identity:
    """Which caption set a parsed Karpathy file is (see the module notes).

    Args:
        data: the parsed JSON.
        folder_names: the folders from the file's folder up to the root given, nearest first.
        file_name: the annotation file's name: only the sets that name their file so are
            candidates (all four when no set does).
    """
    releases = {n: r for n, r in RELEASES.items() if r.file == file_name.lower()} or RELEASES
    field = data.get("dataset") if isinstance(data, dict) else None
    if isinstance(field, str) and _named_in(field, releases):
        return Identity(_named_in(field, releases), f"its 'dataset' field is {field!r}", {})
    records = data.get("images") if isinstance(data, dict) else None
    records = records if isinstance(records, list) else []
    names = [r.get("filename") for r in records if isinstance(r, dict) and isinstance(r.get("filename"), str)]
    numbers = [int(m.group(1)) for m in (_NUMBERED.match(n.strip()) for n in names) if m]
    numbered = bool(names) and len(numbers) == len(names)
    excluded: dict[str, str] = {}
    for name, release in releases.items():
        if release.numbered and names and not numbered:
            example = next(n for n in names if not _NUMBERED.match(n.strip()))
            excluded[name] = f"file names such as {example!r} are not numbered as {name}'s"
        elif release.numbered and numbered and max(numbers) > release.images:
            excluded[name] = f"image number {max(numbers)} is beyond {name}'s {release.images} images"
        elif release.numbered is False and numbered and len(names) > 1:
            excluded[name] = f"its files are all numbered, {name}'s are not"
    for name, release in releases.items():
        if len(records) == release.images and name not in excluded:
            return Identity(name, f"{len(records)} images, as many as the {name} release", excluded)
    for folder in folder_names:
        name = _named_in(folder, releases)
        if name is not None and name not in excluded:
            return Identity(name, f"folder name {folder!r}", excluded)
    reason = f"{len(records)} images, no 'dataset' field or folder name naming a caption set"
    return Identity(None, reason, excluded)


def clean_caption(raw: str) -> str:
    """Strip a raw caption and remove the space before its final period."""
    return _SPACE_BEFORE_PERIOD.sub(".", raw.strip())


class KarpathyCaptions(RSDataset):
    """A Karpathy-JSON caption set; subclasses name the annotation file and image folders.

    Samples: ``task="cap"``, ``targets`` = the cleaned references in file order
    (duplicates kept); ``meta``: ``imgid``, ``filename``, ``n_unique_captions``.
    """

    task = "cap"
    annotation_names: ClassVar[tuple[str, ...]] = ("dataset.json",)
    image_dirs: ClassVar[tuple[str, ...]] = ("images",)
    folder_names: ClassVar[tuple[str, ...]] = ()

    def _candidates(self) -> list[Path]:
        """Every annotation file of this set's name at or below the root (see ``SEARCH_DEPTH``)."""
        folders = folders_below(self.root, SEARCH_DEPTH) + [self.root / name for name in self.folder_names]
        return distinct(folder / name for folder in folders for name in self.annotation_names if (folder / name).is_file())

    def _folder_names(self, ann_path: Path) -> list[str]:
        """Folder names from the file's folder up to and including the root, nearest first."""
        names, folder = [], ann_path.parent
        while True:
            names.append(folder.name)
            if folder == self.root or folder.parent == folder:
                return names
            folder = folder.parent

    def _find_root(self) -> tuple[Path, Path, Any]:
        """``(folder, annotation file, parsed JSON)`` of this set under the root (see the module notes)."""
        found = self._candidates()
        if not found:
            raise DatasetNotFoundError(
                self.root / self.annotation_names[0],
                f"the {self.name} annotation file ({' or '.join(self.annotation_names)}) in this folder or up to "
                f"{SEARCH_DEPTH} levels below it",
            )
        parsed = {path: self._read(path) for path in found}
        ids = {
            path: Identity(None, parsed[path].message, {}) if isinstance(parsed[path], RecordError)
            else identify(parsed[path], self._folder_names(path), path.name)
            for path in found
        }
        mine = [p for p in found if ids[p].name == self.name]
        unknown = [p for p in found if ids[p].name is None and self.name not in ids[p].excluded]
        listed = [f"{shown(self.root, p)} ({ids[p].describe(self.name)})" for p in found]
        if len(mine) > 1:
            listed = [f"{shown(self.root, p)} ({ids[p].describe(self.name)})" for p in mine]
            raise AmbiguousRootError(self.root, f"the {self.name} annotation file", listed)
        if len(mine) == 1:
            return mine[0].parent, mine[0], parsed[mine[0]]
        if len(unknown) == 1 and len(found) == 1:
            return unknown[0].parent, unknown[0], parsed[unknown[0]]
        if unknown:
            raise AmbiguousRootError(self.root, f"the {self.name} annotation file", listed)
        others = sorted({ids[p].name for p in found if ids[p].name is not None})
        use = f"; load it with {' or '.join(repr(o) for o in others)}" if others else ""
        raise DataError(f"{self.root}: holds no {self.name} annotation file, only: {'; '.join(listed)}{use}")

    @staticmethod
    def _read(ann_path: Path) -> Any:
        """The parsed file, or the :class:`RecordError` to raise should it be the one chosen."""
        try:
            return json.loads(ann_path.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            return RecordError(ann_path, None, None, f"not valid JSON ({err})")

    def _image_dir(self, folder: Path) -> Path:
        for name in self.image_dirs:
            if (folder / name).is_dir():
                return folder / name
        raise DatasetNotFoundError(folder / self.image_dirs[0], f"the {self.name} image folder ({' or '.join(self.image_dirs)})")

    def _load(self) -> list[Sample]:
        folder, ann_path, data = self._find_root()
        image_dir = self._image_dir(folder)
        if isinstance(data, RecordError):
            raise data
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise RecordError(ann_path, None, "images", "expected a top-level object with an 'images' list")
        samples, empties = [], 0
        for index, record in enumerate(data["images"]):
            try:
                sample, n_empty = self._parse(record, index, ann_path, image_dir)
            except RecordError as err:
                self.bad.handle(err)
                continue
            empties += n_empty
            if sample is not None:
                samples.append(sample)
        if empties:
            warnings.warn(
                f"{self.name} ({self.split}): {empties} empty caption(s) left out of the references in {ann_path}",
                SkippedRecordsWarning,
                stacklevel=3,
            )
        return samples

    def _parse(self, record: Any, index: int, ann_path: Path, image_dir: Path) -> tuple[Sample | None, int]:
        """One image record -> its sample (``None`` when of another split) and its number of empty captions."""
        if not isinstance(record, dict):
            raise RecordError(ann_path, index, None, "an image record must be an object")
        record_id = record.get("imgid", index)
        for field in ("filename", "split", "sentences"):
            if field not in record:
                raise RecordError(ann_path, record_id, field, "missing")
        if not isinstance(record["split"], str):
            raise RecordError(ann_path, record_id, "split", f"not a split name: {record['split']!r}")
        split = SPLIT_ALIASES.get(record["split"], record["split"])
        if split not in self.splits:
            raise RecordError(ann_path, record_id, "split", f"unknown split {record['split']!r}; known: {', '.join(self.splits)}")
        if split != self.split:
            return None, 0
        if not isinstance(record["sentences"], list):
            raise RecordError(ann_path, record_id, "sentences", "expected a list")
        refs, empties = [], 0
        for j, sentence in enumerate(record["sentences"]):
            raw = sentence.get("raw") if isinstance(sentence, dict) else None
            if not isinstance(raw, str):
                raise RecordError(ann_path, record_id, f"sentences[{j}].raw", "missing or not a string")
            text = clean_caption(raw)
            if text in ("", "."):
                empties += 1
                continue
            refs.append(text)
        if not refs:
            raise RecordError(ann_path, record_id, "sentences", "no non-empty caption")
        filename = record["filename"]
        if not isinstance(filename, str) or not filename.strip():
            raise RecordError(ann_path, record_id, "filename", f"not a file name: {filename!r}")
        image = image_dir / filename.strip()
        if not image.is_file():
            raise RecordError(ann_path, record_id, "filename", f"image {image} not found")
        meta = {"imgid": record_id, "filename": filename.strip(), "n_unique_captions": len(set(refs))}
        return Sample(image=image, task="cap", targets=tuple(refs), meta=meta), empties


class RSICD(KarpathyCaptions):
    """RSICD (Lu, Wang, Zheng and Li, "Exploring Models and Data for Remote Sensing Image Caption Generation", TGRS 2018).

    Datasheet:
        Size: 10,921 images of 224x224 px (Google Earth, Baidu Map, MapABC,
            Tianditu), five captions each, many padded with duplicates.
        Format: ``dataset_rsicd.json`` (Karpathy JSON, see the module notes) +
            ``RSICD_images/<filename>`` (JPEG).
        Splits: the records' ``split`` field (commonly 8,734 / 1,094 / 1,093).
        Quirks tolerated: duplicated captions (kept), ``" ."`` endings (fixed),
            an ``images/`` folder instead of ``RSICD_images/``.
        Root: the folder holding ``dataset_rsicd.json`` or its parent.
    """

    name = "rsicd"
    annotation_names = ("dataset_rsicd.json",)
    image_dirs = ("RSICD_images", "images")
    folder_names = ("RSICD",)


class UCMCaptions(KarpathyCaptions):
    """UCM-Captions (Qu, Li, Tao and Lu, "Deep semantic understanding of high resolution remote sensing image", CITS 2016).

    Datasheet:
        Size: the 2,100 UC Merced images (256x256 px, 21 land-use classes), five
            captions each, padded with duplicates.
        Format: ``dataset.json`` (Karpathy JSON) + ``images/N.tif`` (some copies
            ``imgs/``); the TIFFs are opened by content.
        Splits: the records' ``split`` field (commonly 1,680 / 210 / 210).
        Quirks tolerated: ``imgs/`` folder, duplicated captions, ``" ."`` endings.
        Root: the folder holding ``dataset.json`` (``UCM_captions/``) or its parent.
    """

    name = "ucm-captions"
    image_dirs = ("images", "imgs")
    folder_names = ("UCM_captions", "UCM-Captions", "ucm_captions")


class SydneyCaptions(KarpathyCaptions):
    """Sydney-Captions (Qu, Li, Tao and Lu, "Deep semantic understanding of high resolution remote sensing image", CITS 2016).

    Datasheet:
        Size: 613 images of 500x500 px cut from one Google Earth scene of Sydney,
            7 classes, five captions each.
        Format: ``dataset.json`` (Karpathy JSON) + ``images/N.tif``.
        Splits: the records' ``split`` field (about 497 / 58 / 58; unconfirmed,
            never hard-coded).
        Quirks tolerated: ``" ."`` endings, ``imgs/`` folder.
        Root: the folder holding ``dataset.json`` (``Sydney_captions/``) or its parent.
    """

    name = "sydney-captions"
    image_dirs = ("images", "imgs")
    folder_names = ("Sydney_captions", "Sydney-Captions", "sydney_captions")


class RSITMD(KarpathyCaptions):
    """RSITMD (Yuan et al., "Exploring a Fine-Grained Multiscale Method for Cross-Modal Remote Sensing Image Retrieval", TGRS 2022).

    Datasheet:
        Size: 4,743 images of 256x256 px, 32 classes, five captions each (fewer
            duplicates than RSICD).
        Format: ``dataset_RSITMD.json`` (some copies ``dataset_rsitmd.json``) +
            ``images/<filename>``.
        Splits: the records' ``split`` field.
        Quirks tolerated: a few empty ``raw`` captions (left out and counted in
            one warning), the lower-case json name.
        Root: the folder holding the json file (``RSITMD/``) or its parent.
    """

    name = "rsitmd"
    annotation_names = ("dataset_RSITMD.json", "dataset_rsitmd.json")
    folder_names = ("RSITMD",)
