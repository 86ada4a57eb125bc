"""RSICap and RSIEval (Hu et al., "RSGPT: A Remote Sensing Vision Language Model and Benchmark", 2023).

Datasheet:
    RSICap: 2,585 human-written captions of DOTA image crops; ``dataset/RSICap/captions.json``
        ``{"annotations": [{"image_id": "0" (a string), "filename": "P0378_0001.png",
        "text_input", "text_output"}]}`` with images in ``dataset/RSICap/images/``.
        No split: everything is ``train``. The caption is ``text_output``.
    RSIEval: 100 images, 100 captions and 936 QA pairs; ``dataset/RSIEval/annotations.json``
        ``{"annotations": [{"filename", "caption", "qa_pairs": [{"question", "answer", "type"}]}]}``,
        images in ``dataset/RSIEval/images/``. One split, ``test``. ``task="vqa"`` (default)
        gives one sample per QA pair with the answer as written ("Yes." / "yes": scoring
        normalises case and the final period); ``task="cap"`` one sample per image.
    Root: the folder holding ``dataset/``, ``dataset/`` itself, or the dataset's own folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from aerith.data.datasets.base import RSDataset
from aerith.data.errors import DatasetNotFoundError, OnBad, RecordError
from aerith.data.sample import Sample


class _AnnotationsJSON(RSDataset):
    folder_name: ClassVar[str] = ""
    annotation_name: ClassVar[str] = ""

    def _folder(self) -> Path:
        for folder in (self.root, self.root / self.folder_name, self.root / "dataset" / self.folder_name):
            if (folder / self.annotation_name).is_file():
                return folder
        raise DatasetNotFoundError(
            self.root / "dataset" / self.folder_name / self.annotation_name, f"the {self.name} annotation file"
        )

    def _records(self) -> tuple[Path, Path, list[Any]]:
        folder = self._folder()
        path = folder / self.annotation_name
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RecordError(path, None, None, f"not valid JSON ({err})") from err
        if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
            raise RecordError(path, None, "annotations", "expected a top-level object with an 'annotations' list")
        images = folder / "images"
        if not images.is_dir():
            raise DatasetNotFoundError(images, f"the {self.name} image folder")
        return path, images, data["annotations"]

    @staticmethod
    def _field(record: Any, field: str, path: Path, index: object) -> str:
        if not isinstance(record, dict) or not isinstance(record.get(field), str) or not record[field].strip():
            raise RecordError(path, index, field, "missing or empty")
        return record[field].strip()

    def _image(self, images: Path, record: dict, path: Path, index: object) -> Path:
        image = images / self._field(record, "filename", path, index)
        if not image.is_file():
            raise RecordError(path, index, "filename", f"image {image} not found")
        return image


class RSICap(_AnnotationsJSON):
    name = "rsicap"
    task = "cap"
    splits = ("train",)
    folder_name = "RSICap"
    annotation_name = "captions.json"

    def _load(self) -> list[Sample]:
        path, images, records = self._records()
        samples = []
        for index, record in enumerate(records):
            try:
                image = self._image(images, record, path, index)
                caption = self._field(record, "text_output", path, index)
                meta = {"image_id": str(record.get("image_id", index)), "filename": record["filename"]}
                samples.append(Sample(image=image, task="cap", targets=(caption,), meta=meta))
            except RecordError as err:
                self.bad.handle(err)
        return samples


class RSIEval(_AnnotationsJSON):
    name = "rsieval"
    splits = ("test",)
    folder_name = "RSIEval"
    annotation_name = "annotations.json"

    def __init__(self, root: str | Path, split: str = "test", *, task: str = "vqa", on_bad: OnBad = "raise") -> None:
        if task not in ("vqa", "cap"):
            raise ValueError(f"rsieval: task must be 'vqa' or 'cap', got {task!r}")
        self.task = task
        super().__init__(root, split, on_bad=on_bad)

    def _load(self) -> list[Sample]:
        path, images, records = self._records()
        samples = []
        for index, record in enumerate(records):
            try:
                image = self._image(images, record, path, index)
                if self.task == "cap":
                    caption = self._field(record, "caption", path, index)
                    samples.append(Sample(image=image, task="cap", targets=(caption,), meta={"filename": record["filename"]}))
                    continue
                pairs = record.get("qa_pairs")
                if not isinstance(pairs, list):
                    raise RecordError(path, index, "qa_pairs", "missing or not a list")
            except RecordError as err:
                self.bad.handle(err)
                continue
            for j, pair in enumerate(pairs):
                where = f"{index}.qa_pairs[{j}]"
                try:
                    question = self._field(pair, "question", path, where)
                    answer = self._field(pair, "answer", path, where)
                    kind = pair.get("type") if isinstance(pair.get("type"), str) else None
                    samples.append(
                        Sample(image=image, task="vqa", prompt=question, targets=(answer,), kind=kind,
                               meta={"filename": record["filename"], "pair": j})
                    )
                except RecordError as err:
                    self.bad.handle(err)
        return samples
