"""RSIEval, the RSGPT benchmark, and the reading of the RSGPT download it shares with RSICap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from aerith.data.datasets.base import RSDataset, VerifyImages
from aerith.data.datasets.locate import pick_one
from aerith.data.errors import DatasetNotFoundError, OnBad, RecordError
from aerith.data.sample import Sample


class RSGPTDataset(RSDataset):
    """One part of the RSGPT download: ``dataset/<folder_name>/<annotation_name>`` with ``images/`` beside it.

    The annotation file is ``{"annotations": [...]}``. Root: the folder holding
    ``dataset/``, ``dataset/`` itself, or the part's own folder.
    """

    folder_name: ClassVar[str] = ""
    annotation_name: ClassVar[str] = ""

    def _folder(self) -> Path:
        candidates = (self.root, self.root / self.folder_name, self.root / "dataset" / self.folder_name)
        found = [folder for folder in candidates if (folder / self.annotation_name).is_file()]
        folder = pick_one(self.root, found, f"the {self.name} annotation file ({self.annotation_name})")
        if folder is not None:
            return folder
        raise DatasetNotFoundError(
            self.root / "dataset" / self.folder_name / self.annotation_name,
            f"the {self.name} annotation file (root = the folder holding dataset/{self.folder_name}/, or that folder)",
        )

    def _records(self) -> tuple[Path, Path, list[Any]]:
        """The annotation file, the image folder and the annotation records."""
        folder = self._folder()
        path, images = folder / self.annotation_name, folder / "images"
        if not images.is_dir():
            raise DatasetNotFoundError(images, f"the {self.name} image folder beside {self.annotation_name}")
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RecordError(path, None, None, f"not valid JSON ({err})") from err
        if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
            raise RecordError(path, None, "annotations", "expected a top-level object with an 'annotations' list")
        return path, images, data["annotations"]

    @staticmethod
    def _field(record: Any, field: str, path: Path, record_id: object) -> str:
        """A required non-empty string field, stripped (ids given as numbers are read as text)."""
        value = record.get(field) if isinstance(record, dict) else None
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise RecordError(path, record_id, field, "missing or empty")
        return value.strip()

    def _image(self, images: Path, record: Any, path: Path, record_id: object) -> Path:
        image = images / self._field(record, "filename", path, record_id)
        if not image.is_file():
            raise RecordError(path, record_id, "filename", f"image {image} not found")
        return image


class RSIEval(RSGPTDataset):
    """RSIEval (Hu, Yuan, Wen, Lu and Li, "RSGPT: A Remote Sensing Vision Language Model and Benchmark", arXiv 2023).

    Datasheet:
        Size: 100 DOTA-derived images with one human caption each and 936 QA
            pairs (presence, quantity, colour, position, reasoning ... types).
        Format: ``dataset/RSIEval/annotations.json``
            ``{"annotations": [{"filename", "caption", "qa_pairs": [{"question", "answer", "type"}]}]}``,
            images in ``dataset/RSIEval/images/``.
        Splits: one, ``test`` (it is a benchmark), which is also the ``default_split``.
        Options: ``task="vqa"`` (default) gives one sample per QA pair; ``task="cap"``
            one caption sample per image.
        Quirks tolerated: answers vary in case and final period ("Yes." / "yes"):
            they are kept as given (only stripped); VQA scoring normalises case
            and the trailing period.
        Choices: a record or QA pair with a missing or empty field, an empty
            ``qa_pairs`` list or a missing image is a bad record (record =
            annotation index, or ``"<index>.qa_pairs[<j>]"``).
        Samples: VQA ``prompt`` = question, ``targets=(answer,)``, ``kind`` = type;
            captioning ``targets=(caption,)``. ``meta``: ``filename`` (+ ``pair``, the
            QA index within the image).
        Root: the folder holding ``dataset/``, ``dataset/`` itself, or ``RSIEval/``.
    """

    name = "rsieval"
    splits = ("test",)
    default_split = "test"
    folder_name = "RSIEval"
    annotation_name = "annotations.json"

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        *,
        task: Literal["vqa", "cap"] = "vqa",
        on_bad: OnBad = "raise",
        verify_images: VerifyImages = None,
    ) -> None:
        if task not in ("vqa", "cap"):
            raise ValueError(f"rsieval: task must be 'vqa' or 'cap', got {task!r}")
        self.task = task
        super().__init__(root, split, on_bad=on_bad, verify_images=verify_images)

    def _load(self) -> list[Sample]:
        path, images, records = self._records()
        samples: list[Sample] = []
        for index, record in enumerate(records):
            try:
                image = self._image(images, record, path, index)
                meta = {"filename": record["filename"].strip()}
                if self.task == "cap":
                    samples.append(Sample(image=image, task="cap", targets=(self._field(record, "caption", path, index),), meta=meta))
                    continue
                pairs = record.get("qa_pairs")
                if not isinstance(pairs, list) or not pairs:
                    raise RecordError(path, index, "qa_pairs", "missing, empty or not a list")
            except RecordError as err:
                self.bad.handle(err)
                continue
            for j, pair in enumerate(pairs):
                where = f"{index}.qa_pairs[{j}]"
                try:
                    question, answer, kind = (self._field(pair, f, path, where) for f in ("question", "answer", "type"))
                except RecordError as err:
                    self.bad.handle(err)
                    continue
                samples.append(Sample(image=image, task="vqa", prompt=question, targets=(answer,), kind=kind, meta={**meta, "pair": j}))
        return samples
