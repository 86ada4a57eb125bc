"""RSVQA-LR and RSVQA-HR: the questions/answers/images json triplets of Lobry et al."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from aerith.data.datasets.base import RSDataset
from aerith.data.datasets.locate import find_one
from aerith.data.errors import DatasetNotFoundError, RecordError
from aerith.data.sample import Sample

QUESTION_TYPES = ("presence", "comp", "count", "rural_urban", "area")
_FIELDS = ("img_id", "type", "question", "answers_ids")


def normalise_type(raw: object) -> str:
    """``"Rural urban"`` / ``"rural-urban"`` -> ``"rural_urban"``; ``"comparison"`` -> ``"comp"``."""
    key = str(raw).strip().lower().replace(" ", "_").replace("-", "_").replace("/", "_")
    return "comp" if key.startswith("comp") else key


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a big json tree is built and indexed.

    A million question records allocate millions of containers, each of which
    would trigger collections that find nothing (parsed json holds no cycles);
    pausing roughly halves the index time. The previous state is restored.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class RSVQA(RSDataset):
    """Shared reader of the RSVQA json triplets; subclasses name the file prefix and the image folder.

    The index is built once: one pass over the question records, answers looked
    up by id in a dict, each image checked once.
    """

    task = "vqa"
    prefix: ClassVar[str] = ""
    image_dir_name: ClassVar[str] = ""
    folder_names: ClassVar[tuple[str, ...]] = ()

    def _folder(self) -> Path:
        probe = f"{self.prefix}_split_{self.split}_questions.json"
        what = f"the {self.name} question file of split {self.split!r} ({probe})"
        folder = find_one(self.root, lambda f: (f / probe).is_file(), what, depth=2, names=self.folder_names)
        if folder is not None:
            return folder
        raise DatasetNotFoundError(
            self.root / probe, f"the {self.name} question file of split {self.split!r} in this folder or one below it"
        )

    def _image_dir(self, folder: Path) -> Path:
        image_dir = folder / self.image_dir_name
        if image_dir.is_dir():
            return image_dir
        zips = sorted(folder.glob("*.zip"), key=lambda p: (not p.name.startswith(self.image_dir_name), p.name))
        hint = f"; {zips[0]} is there: extract it first (the download nests the image zip in the dataset zip)" if zips else ""
        raise DatasetNotFoundError(image_dir, f"the {self.name} image folder of <id>.tif files{hint}")

    def _read(self, path: Path, key: str) -> list[Any]:
        if not path.is_file():
            raise DatasetNotFoundError(path, f"the {self.name} {key} file of split {self.split!r}")
        try:
            with open(path, "rb") as f:
                data = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RecordError(path, None, None, f"not valid JSON ({err})") from err
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise RecordError(path, None, key, f"expected a top-level object with a {key!r} list")
        return data[key]

    def _load(self) -> list[Sample]:
        folder = self._folder()
        image_dir = self._image_dir(folder)
        base = folder / f"{self.prefix}_split_{self.split}"
        q_path, a_path, i_path = (Path(f"{base}_{key}.json") for key in ("questions", "answers", "images"))
        with _gc_paused():
            return self._index(q_path, a_path, i_path, image_dir)

    def _index(self, q_path: Path, a_path: Path, i_path: Path, image_dir: Path) -> list[Sample]:
        # answers and questions repeat a lot (templates): one shared object per distinct text saves memory
        shared_targets: dict[str, tuple[str]] = {}
        answers = {
            a["id"]: shared_targets.setdefault(str(a["answer"]), (str(a["answer"]),))
            for a in self._read(a_path, "answers")
            if type(a) is dict and a.get("active") is True and "id" in a and "answer" in a
        }
        texts: dict[str, str] = {}
        active_images = {i["id"] for i in self._read(i_path, "images") if type(i) is dict and i.get("active") is True and "id" in i}
        questions = self._read(q_path, "questions")
        kinds: dict[Any, str] = {}
        image_paths: dict[Any, Path | RecordError] = {}
        samples: list[Sample] = []
        append, handle = samples.append, self.bad.handle
        for index, q in enumerate(questions):
            active = q.get("active") if type(q) is dict else None
            if active is not True:
                if active is False:
                    continue  # a stub of a record outside this split
                handle(_bad_flag(q_path, index, q))
                continue
            qid = q.get("id", index)
            try:
                img_id, raw_type, text, answer_ids = q["img_id"], q["type"], q["question"], q["answers_ids"]
                targets = answers[answer_ids[0]]
                kind = kinds[raw_type]
                image = image_paths[img_id]
            except (KeyError, IndexError, TypeError):
                try:
                    targets, kind, image = self._slow_path(q, qid, q_path, a_path, answers, kinds, image_paths, active_images, image_dir)
                except RecordError as err:
                    handle(err)
                    continue
                img_id, text = q["img_id"], q["question"]
            if isinstance(image, RecordError):  # cached per image, reported per question
                handle(RecordError(q_path, qid, "img_id", image.message))
                continue
            if type(text) is not str or not text.strip():
                handle(RecordError(q_path, qid, "question", "not a non-empty string"))
                continue
            meta = {"question_id": qid, "image_id": img_id}
            append(Sample(image=image, task="vqa", prompt=texts.setdefault(text, text), targets=targets, kind=kind, meta=meta))
        return samples

    def _slow_path(
        self,
        q: dict,
        qid: Any,
        q_path: Path,
        a_path: Path,
        answers: dict[Any, tuple[str]],
        kinds: dict[Any, str],
        image_paths: dict[Any, Path | RecordError],
        active_images: set[Any],
        image_dir: Path,
    ) -> tuple[tuple[str], str, Path | RecordError]:
        """Diagnose a question the fast path could not read, filling the per-type and per-image caches."""
        for field in _FIELDS:
            if field not in q:
                raise RecordError(q_path, qid, field, "missing")
        answer_ids = q["answers_ids"]
        if not isinstance(answer_ids, list) or not answer_ids:
            raise RecordError(q_path, qid, "answers_ids", f"expected a non-empty list of answer ids, got {answer_ids!r}")
        try:
            answer = answers[answer_ids[0]]
        except (KeyError, TypeError):
            raise RecordError(a_path, answer_ids[0], "answer", f"no active answer with this id (question {qid})") from None
        raw_type = q["type"]
        try:
            if raw_type not in kinds:
                kind = normalise_type(raw_type)
                if kind not in QUESTION_TYPES:
                    raise RecordError(q_path, qid, "type", f"unknown question type {raw_type!r}; known: {', '.join(QUESTION_TYPES)}")
                kinds[raw_type] = kind
        except TypeError:
            raise RecordError(q_path, qid, "type", f"not a type name: {raw_type!r}") from None
        img_id = q["img_id"]
        try:
            if img_id not in image_paths:
                path = image_dir / f"{img_id}.tif"
                if img_id not in active_images:
                    image_paths[img_id] = RecordError(q_path, qid, "img_id", f"image {img_id!r} is not an active image of this split")
                elif not path.is_file():
                    image_paths[img_id] = RecordError(q_path, qid, "img_id", f"image file {path} not found")
                else:
                    image_paths[img_id] = path
        except TypeError:
            raise RecordError(q_path, qid, "img_id", f"not an image id: {img_id!r}") from None
        return answer, kinds[raw_type], image_paths[img_id]


def _bad_flag(q_path: Path, index: int, q: Any) -> RecordError:
    """A question record that is neither a stub (``"active": false``) nor an active question."""
    if type(q) is not dict:
        return RecordError(q_path, index, None, f"not a question object: {q!r}"[:200])
    qid = q.get("id", index)
    if "active" not in q:
        return RecordError(q_path, qid, "active", "missing (true for a question of this split, false for a stub)")
    return RecordError(q_path, qid, "active", f"expected true or false, got {q['active']!r}")


class RSVQALR(RSVQA):
    """RSVQA-LR (Lobry, Marcos, Murray and Tuia, "RSVQA: Visual Question Answering for Remote Sensing Data", TGRS 2020).

    Datasheet:
        Size: 772 Sentinel-2 RGB images of 256x256 px (10 m) over the Netherlands,
            about 77k questions.
        Format: ``Images_LR/<id>.tif`` and ``LR_split_{train,val,test}_{questions,answers,images}.json``.
            In the download the images sit in a zip inside the zip: a missing
            ``Images_LR/`` beside a zip says to extract it.
        Schemas::

            {"images":   [{"id", "questions_ids": [int], "active": bool, "original_name", ...}]}
            {"questions":[{"id", "img_id", "type", "question", "answers_ids": [int], "active"}]}
            {"answers":  [{"id", "question_id", "answer", "active"}]}

        Splits: train / val / test, from the file names. Each split file lists
            every id of the whole database; ids outside the split are stubs
            ``{"id": i, "active": false}``: only active records are read.
        Question types: presence, comp, count, rural_urban (normalised from
            spelling variants); count answers are integers as text.
        Choices: the answer is ``answers[q["answers_ids"][0]]["answer"]`` looked
            up by answer id; the answer's back-reference (spelled
            ``quesiton_id`` in some copies) is not read. A question whose fields,
            answer, active image or image file are missing, whose type is
            unknown, or whose ``active`` flag is missing or not true/false, is a
            bad record (file, question id, field).
        Samples: ``task="vqa"``, ``prompt`` = question, ``targets=(answer,)``,
            ``kind`` = type; ``meta``: ``question_id``, ``image_id``.
        Root: the folder holding the json files or its parent.
    """

    name = "rsvqa-lr"
    splits = ("train", "val", "test")
    prefix = "LR"
    image_dir_name = "Images_LR"
    folder_names = ("RSVQA_LR", "RSVQA-LR", "RSVQA_LR_dataset")


class RSVQAHR(RSVQA):
    """RSVQA-HR (Lobry, Marcos, Murray and Tuia, "RSVQA: Visual Question Answering for Remote Sensing Data", TGRS 2020).

    Datasheet:
        Size: 10,659 USGS aerial RGB images of 512x512 px (15 cm), about 1M questions.
        Format: ``Data/<id>.tif`` and ``USGS_split_{split}_{questions,answers,images}.json``,
            schemas as RSVQA-LR (:class:`RSVQALR`).
        Splits: train / val / test / test_phili - two test sets: ``test`` over the
            training area, ``test_phili`` over Philadelphia. Each split file lists
            every id of the whole database; inactive stubs are skipped.
        Question types: presence, comp, count, area; area answers are ``"<N>m2"``
            (scoring buckets counts and areas).
        Choices: as :class:`RSVQALR`. The index of ~1M records is built in one pass
            with the cyclic garbage collector paused (see ``benchmarks/bench_data_index.py``).
        Samples: ``task="vqa"``, ``prompt`` = question, ``targets=(answer,)``,
            ``kind`` = type; ``meta``: ``question_id``, ``image_id``.
        Root: the folder holding the json files or its parent.
    """

    name = "rsvqa-hr"
    splits = ("train", "val", "test", "test_phili")
    prefix = "USGS"
    image_dir_name = "Data"
    folder_names = ("RSVQA_HR", "RSVQA-HR", "RSVQAHR")
