"""RSVQA-LR and RSVQA-HR (Lobry et al., "RSVQA: Visual Question Answering for Remote Sensing Data", TGRS 2020).

Datasheet:
    LR: 772 Sentinel-2 images of 256x256 px (``Images_LR/<id>.tif``; in the download
        they sit in a zip inside the zip: extract it), about 77k questions; json
        ``LR_split_{train,val,test}_{questions,answers,images}.json``. Types: presence,
        comp, count, rural_urban.
    HR: 10,659 aerial images of 512x512 px (``Data/<id>.tif``), about 1M questions;
        json ``USGS_split_{train,val,test,test_phili}_{...}.json``: two test sets
        (``test`` over the training area, ``test_phili`` over Philadelphia). Types:
        presence, comp, count, area.
    Schemas::

        {"images":   [{"id", "questions_ids": [int], "active": bool, "original_name", ...}]}
        {"questions":[{"id", "img_id", "type", "question", "answers_ids": [int], "active"}]}
        {"answers":  [{"id", "question_id", "answer", "active"}]}

    Quirks handled: a split file lists every id of the whole database, and ids
    outside the split are stubs ``{"id": i, "active": false}``: only active
    records are read. The answer is ``answers[q["answers_ids"][0]]["answer"]``,
    looked up by id; the answer record's back-reference (spelled
    ``quesiton_id`` in some copies) is not used. Count answers are integers as
    text, area answers ``"<N>m2"``; scoring buckets them.
    Root: the folder holding the json files, or its parent (``RSVQA_LR``/``RSVQA_HR``...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from aerith.data.datasets.base import RSDataset
from aerith.data.errors import DatasetNotFoundError, RecordError
from aerith.data.sample import Sample

QUESTION_TYPES = ("presence", "comp", "count", "rural_urban", "area")


def normalise_type(raw: str) -> str:
    """``"Rural urban"`` / ``"rural_urban"`` -> ``"rural_urban"``; comparison spelled out -> ``"comp"``."""
    key = str(raw).strip().lower().replace(" ", "_").replace("-", "_")
    return "comp" if key.startswith("comp") else key


class RSVQA(RSDataset):
    """Shared reader of the RSVQA json triplets; subclasses name the prefix and the image folder."""

    task = "vqa"
    prefix: ClassVar[str] = ""
    image_dir_name: ClassVar[str] = ""
    folder_names: ClassVar[tuple[str, ...]] = ()

    def _folder(self) -> Path:
        probe = f"{self.prefix}_split_{self.split}_questions.json"
        for folder in (self.root, *(self.root / n for n in self.folder_names)):
            if (folder / probe).is_file():
                return folder
        raise DatasetNotFoundError(self.root / probe, f"the {self.name} question file of split {self.split!r}")

    def _read(self, path: Path, key: str) -> list[Any]:
        if not path.is_file():
            raise DatasetNotFoundError(path, f"the {self.name} {key} file of split {self.split!r}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RecordError(path, None, None, f"not valid JSON ({err})") from err
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise RecordError(path, None, key, f"expected a top-level object with a {key!r} list")
        return data[key]

    def _image_dir(self, folder: Path) -> Path:
        image_dir = folder / self.image_dir_name
        if image_dir.is_dir():
            return image_dir
        zipped = sorted(folder.glob(f"{self.image_dir_name}*.zip"))
        hint = f"; {zipped[0].name} is there: extract it first" if zipped else ""
        raise DatasetNotFoundError(image_dir, f"the {self.name} image folder{hint}")

    def _load(self) -> list[Sample]:
        folder = self._folder()
        image_dir = self._image_dir(folder)
        base = f"{self.prefix}_split_{self.split}"
        q_path, a_path = folder / f"{base}_questions.json", folder / f"{base}_answers.json"
        questions = self._read(q_path, "questions")
        answers = {a["id"]: a for a in self._read(a_path, "answers") if isinstance(a, dict) and a.get("active") and "id" in a}
        images_path = folder / f"{base}_images.json"
        images = {i["id"]: i for i in self._read(images_path, "images") if isinstance(i, dict) and i.get("active") and "id" in i}
        image_paths: dict[Any, Path] = {}
        samples = []
        for index, q in enumerate(questions):
            if not isinstance(q, dict) or not q.get("active"):
                continue  # a stub of a record outside this split
            try:
                samples.append(self._sample(q, index, q_path, a_path, answers, images, image_dir, image_paths))
            except RecordError as err:
                self.bad.handle(err)
        return samples

    def _sample(self, q, index, q_path, a_path, answers, images, image_dir, image_paths) -> Sample:
        for field in ("img_id", "type", "question", "answers_ids"):
            if field not in q:
                raise RecordError(q_path, q.get("id", index), field, "missing")
        if not q["answers_ids"]:
            raise RecordError(q_path, q.get("id", index), "answers_ids", "empty")
        answer = answers.get(q["answers_ids"][0])
        if answer is None or "answer" not in answer:
            raise RecordError(a_path, q["answers_ids"][0], "answer", f"no active answer for question {q.get('id', index)}")
        img_id = q["img_id"]
        if img_id not in image_paths:
            if img_id not in images:
                raise RecordError(q_path, q.get("id", index), "img_id", f"image {img_id} is not an active image of this split")
            path = image_dir / f"{img_id}.tif"
            if not path.is_file():
                raise RecordError(q_path, q.get("id", index), "img_id", f"image file {path} not found")
            image_paths[img_id] = path
        kind = normalise_type(q["type"])
        if kind not in QUESTION_TYPES:
            raise RecordError(q_path, q.get("id", index), "type", f"unknown question type {q['type']!r}")
        return Sample(
            image=image_paths[img_id],
            task="vqa",
            prompt=str(q["question"]),
            targets=(str(answer["answer"]),),
            kind=kind,
            meta={"question_id": q.get("id", index), "image_id": img_id},
        )


class RSVQALR(RSVQA):
    name = "rsvqa-lr"
    splits = ("train", "val", "test")
    prefix = "LR"
    image_dir_name = "Images_LR"
    folder_names = ("RSVQA_LR", "RSVQA-LR", "RSVQA_LR_dataset")


class RSVQAHR(RSVQA):
    name = "rsvqa-hr"
    splits = ("train", "val", "test", "test_phili")
    prefix = "USGS"
    image_dir_name = "Data"
    folder_names = ("RSVQA_HR", "RSVQA-HR", "RSVQAHR")
