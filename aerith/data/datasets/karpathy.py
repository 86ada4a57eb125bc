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
- Root: the dataset folder or the folder holding it. Images are checked to
  exist when the dataset is indexed; unreadable ones are reported when read.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any, ClassVar

from aerith.data.datasets.base import RSDataset
from aerith.data.errors import DatasetNotFoundError, RecordError, SkippedRecordsWarning
from aerith.data.sample import Sample

_SPACE_BEFORE_PERIOD = re.compile(r"\s+\.$")
SPLIT_ALIASES = {"restval": "train"}


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

    def _find_root(self) -> tuple[Path, Path]:
        candidates = [self.root] + [self.root / name for name in self.folder_names]
        candidates += sorted(p for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []
        for folder in candidates:
            for name in self.annotation_names:
                if (folder / name).is_file():
                    return folder, folder / name
        raise DatasetNotFoundError(
            self.root / self.annotation_names[0],
            f"the {self.name} annotation file ({' or '.join(self.annotation_names)}) in this folder or one below it",
        )

    def _image_dir(self, folder: Path) -> Path:
        for name in self.image_dirs:
            if (folder / name).is_dir():
                return folder / name
        raise DatasetNotFoundError(folder / self.image_dirs[0], f"the {self.name} image folder ({' or '.join(self.image_dirs)})")

    def _load(self) -> list[Sample]:
        folder, ann_path = self._find_root()
        image_dir = self._image_dir(folder)
        try:
            data = json.loads(ann_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RecordError(ann_path, None, None, f"not valid JSON ({err})") from err
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
