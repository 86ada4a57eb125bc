"""VRSBench's released evaluation files: detailed captions, referring expressions and VQA."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, ClassVar

from aerith.data.datasets.base import RSDataset, VerifyImages
from aerith.data.datasets.dior_rsvg import header_size
from aerith.data.datasets.folder import find_children
from aerith.data.datasets.locate import find_one
from aerith.data.errors import DatasetNotFoundError, OnBad, RecordError
from aerith.data.sample import Sample

TASKS: tuple[str, ...] = ("cap", "vg", "vqa")
TASK_CHOICES: tuple[str, ...] = (*TASKS, "all")
# task -> the kind of evaluation file; its name is matched as <V>RSBench_EVAL_<kind>[_vN].json, any case
FILE_KINDS: dict[str, str] = {"cap": "cap", "vg": "referring", "vqa": "vqa"}
_EVAL_FILE = re.compile(r"^v?rsbench_eval_(cap|referring|vqa)(?:_v\d+)?\.json$", re.IGNORECASE)
_BOX100 = re.compile(r"^\{<(-?\d+(?:\.\d+)?)><(-?\d+(?:\.\d+)?)><(-?\d+(?:\.\d+)?)><(-?\d+(?:\.\d+)?)>(?:\|<[^>]*>)?\}$")

# The 12 question types of the files folded into the 10 columns of the published table (whose
# question counts add up to the file's 37,409). Folding "image" and "rural or urban" into
# "scene" is inferred from those counts, not stated by the authors (unconfirmed).
VQA_COLUMNS: dict[str, str] = {
    "object category": "category",
    "object existence": "presence",
    "object quantity": "quantity",
    "object color": "color",
    "object shape": "shape",
    "object size": "size",
    "object position": "position",
    "object direction": "direction",
    "scene type": "scene",
    "image": "scene",
    "rural or urban": "scene",
    "reasoning": "reasoning",
}
IMAGE_FOLDERS: tuple[str, ...] = ("Images_val", "images/Images_val", "Images_val/Images_val", "images", "Images")


def parse_box100(text: Any) -> tuple[int, int, int, int] | None:
    """``"{<25><40><33><60>}"`` (GeoChat style, 0-100 grid; an ``|<angle>`` tail is ignored) -> ``(25, 40, 33, 60)``."""
    if not isinstance(text, str):
        return None
    match = _BOX100.match(text.strip())
    if match is None:
        return None
    values = tuple(int(float(v)) for v in match.groups())
    return values  # type: ignore[return-value]


class VRSBench(RSDataset):
    """VRSBench (Li, Ding and Elhoseiny, "VRSBench: A Versatile Vision-Language Benchmark Dataset for Remote Sensing Image Understanding", NeurIPS 2024 D&B).

    Datasheet:
        Size: 29,614 images of 512x512 px cut from DOTA-v2 and DIOR, with
            human-verified detailed captions, referring expressions and VQA.
            The evaluation set (read here) is the 9,350 images of
            ``Images_val``: 9,350 captions, 16,159 referring expressions,
            37,409 questions.
        Format: the JSON lists the repository's preparation notebook writes
            (``VRSBench_EVAL_Cap.json``, ``VRSBench_EVAL_referring.json``,
            ``VRSBench_EVAL_vqa.json``; the notebook's own names
            ``RSBench_EVAL_*_v2.json`` are accepted too, any case) of
            ``{"image_id": "<file>.png", "question", "ground_truth", "dataset",
            "question_id", "type"}``; referring records add ``unique`` (bool),
            ``obj_corner`` (the four corners, normalised to 0-1), ``obj_cls`` and
            ``size_group``, and their ``ground_truth`` is GeoChat's
            ``{<x1><y1><x2><y2>}`` on a 0-100 grid (the truncated horizontal box
            of the corners). Images in ``Images_val/`` (or ``images/Images_val/``,
            ``images/``), as ``Images_val.zip`` extracts.
        Splits: ``test`` only: the released evaluation set (its images ship as
            ``Images_val.zip``). The training annotations are LLaVA
            conversations, importable with :mod:`aerith.data.interop`.
        Choices: ``task="cap"``: ``targets`` = the one human-verified caption.
            ``task="vg"``: ``prompt`` = the expression; ``box`` (pixels) from
            ``obj_corner`` (clipped to the image) times the image size read from
            its header, or from the 0-100 box when the corners are missing or
            empty (malformed corners are a bad record, not replaced);
            ``meta["box100"]`` keeps the reference's 0-100 box, which the
            benchmark's protocol scores against; ``meta["unique"]`` whether the
            expression names the only object of its class. A reference box of
            zero area on the 0-100 grid (a few in the release) is kept: the
            protocol's IoU (corners inclusive) can still score it.
            ``task="vqa"``: ``targets`` = the answer; ``kind`` = the published
            table's column (:data:`VQA_COLUMNS`), ``meta["type"]`` the file's type.
            A record without its fields, with a box that does not parse or an
            image that is not there is a bad record (record = ``question_id``).
        Samples: ``meta``: ``question_id``, ``image_id``, ``question`` (cap: the
            instruction the authors used), and for VG ``unique``, ``obj_cls``,
            ``size_group``, ``box100``, ``image_size``.
        Root: the folder holding the evaluation files, or a folder up to two
            levels above it; two such folders are refused, listing them.

    Args:
        task: ``"cap"``, ``"vg"``, ``"vqa"`` or ``"all"`` (the three, in that order;
            the files present are read, at least one must be).
    """

    name = "vrsbench"
    splits = ("test",)
    default_split = "test"
    task = "all"
    folder_names: ClassVar[tuple[str, ...]] = ("VRSBench",)

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        *,
        task: str = "all",
        on_bad: OnBad = "raise",
        verify_images: VerifyImages = None,
    ) -> None:
        if task not in TASK_CHOICES:
            raise ValueError(f"vrsbench: unknown task {task!r}; valid tasks: {', '.join(TASK_CHOICES)}")
        self.task = task
        super().__init__(root, split, on_bad=on_bad, verify_images=verify_images)

    # -- files ------------------------------------------------------------

    @staticmethod
    def _eval_files(folder: Path) -> dict[str, Path]:
        """``{task: file}`` of the evaluation files in ``folder`` (the newest ``_vN`` when several)."""
        found: dict[str, Path] = {}
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                match = _EVAL_FILE.match(path.name)
                if match and path.is_file():
                    task = next(t for t, kind in FILE_KINDS.items() if kind == match.group(1).lower())
                    found[task] = path
        return found

    def _image_dir(self, folder: Path) -> Path:
        for relative in IMAGE_FOLDERS:
            current = [folder]
            for part in Path(relative).parts:
                current = [c for f in current for c in find_children(f, part)]
            if current:
                return current[0]
        raise DatasetNotFoundError(
            folder / "Images_val", "the VRSBench evaluation images (Images_val/, as Images_val.zip extracts)"
        )

    def _load(self) -> list[Sample]:
        folder = find_one(self.root, lambda f: bool(self._eval_files(f)), "the VRSBench evaluation files", depth=2)
        if folder is None:
            raise DatasetNotFoundError(
                self.root / "VRSBench_EVAL_Cap.json",
                "the VRSBench evaluation files VRSBench_EVAL_{Cap,referring,vqa}.json in this folder or up to 2 levels below it",
            )
        files = self._eval_files(folder)
        wanted = TASKS if self.task == "all" else (self.task,)
        if not any(t in files for t in wanted):
            kind = FILE_KINDS[wanted[0]]
            raise DatasetNotFoundError(folder / f"VRSBench_EVAL_{kind}.json", f"the VRSBench {kind} evaluation file")
        images = self._image_dir(folder)
        samples: list[Sample] = []
        for task in wanted:
            if task in files:
                samples += self._read_file(files[task], task, images)
        return samples

    # -- records ----------------------------------------------------------

    def _read_file(self, path: Path, task: str, images: Path) -> list[Sample]:
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RecordError(path, None, None, f"not valid JSON ({err})") from err
        if not isinstance(data, list):
            raise RecordError(path, None, None, f"expected a JSON list of records, got a {type(data).__name__}")
        found: dict[str, Path | RecordError] = {}
        sizes: dict[Path, tuple[int, int]] = {}
        samples = []
        for index, record in enumerate(data):
            try:
                samples.append(self._parse(path, task, index, record, images, found, sizes))
            except RecordError as err:
                self.bad.handle(err)
        return samples

    @staticmethod
    def _text(path: Path, record: dict[str, Any], rid: object, field: str) -> str:
        value = record.get(field)
        if not isinstance(value, str) or not value.strip():
            raise RecordError(path, rid, field, "missing or empty")
        return value.strip()

    def _parse(
        self, path: Path, task: str, index: int, record: Any, images: Path,
        found: dict[str, Path | RecordError], sizes: dict[Path, tuple[int, int]],
    ) -> Sample:
        if not isinstance(record, dict):
            raise RecordError(path, index, None, "a record must be an object")
        rid = record.get("question_id", index)
        name = self._text(path, record, rid, "image_id")
        if name not in found:
            image = images / name
            found[name] = image if image.is_file() else RecordError(path, rid, "image_id", f"image {image} not found")
        image = found[name]
        if isinstance(image, RecordError):
            raise RecordError(path, rid, image.field, image.message)
        question = self._text(path, record, rid, "question")
        answer = self._text(path, record, rid, "ground_truth")
        meta: dict[str, Any] = {"question_id": rid, "image_id": name}
        if task == "cap":
            meta["question"] = question
            return Sample(image=image, task="cap", targets=(answer,), meta=meta)
        if task == "vqa":
            qtype = self._text(path, record, rid, "type").lower()
            meta["type"] = qtype
            return Sample(image=image, task="vqa", prompt=question, targets=(answer,), kind=VQA_COLUMNS.get(qtype, qtype), meta=meta)
        box100 = parse_box100(answer)
        if box100 is None or not all(0 <= v <= 100 for v in box100) or box100[2] < box100[0] or box100[3] < box100[1]:
            raise RecordError(path, rid, "ground_truth", f"not a {{<x1><y1><x2><y2>}} box on the 0-100 grid: {answer!r:.80}")
        unique = record.get("unique", record.get("is_unique"))
        if isinstance(unique, int) and not isinstance(unique, bool) and unique in (0, 1):
            unique = bool(unique)
        if not isinstance(unique, bool):
            raise RecordError(path, rid, "unique", f"expected true or false, got {unique!r:.40}")
        if image not in sizes:
            sizes[image] = header_size(image, path, rid)
        width, height = sizes[image]
        box = self._corner_box(record.get("obj_corner"), width, height, path, rid)
        if box is None:
            x1, y1, x2, y2 = box100
            box = (x1 * width / 100, y1 * height / 100, x2 * width / 100, y2 * height / 100)
        meta.update(
            unique=unique, obj_cls=record.get("obj_cls"), size_group=record.get("size_group"),
            box100=box100, image_size=(width, height),
        )
        return Sample(image=image, task="vg", prompt=question, box=box, meta=meta)

    @staticmethod
    def _corner_box(corners: Any, width: int, height: int, path: Path, rid: Any) -> tuple[float, float, float, float] | None:
        """The horizontal pixel box of four normalised corners (clipped to the image); ``None`` when there are none.

        Raises:
            RecordError: corners that are not eight finite numbers on about 0-1, or that enclose nothing.
        """
        if corners is None or (isinstance(corners, (list, tuple)) and not corners):
            return None
        shown = f"{corners!r:.80}"
        if not isinstance(corners, (list, tuple)) or len(corners) != 8:
            raise RecordError(path, rid, "obj_corner", f"expected 8 numbers (x, y of four corners on 0-1), got {shown}")
        try:
            values = [float(v) for v in corners]
        except (TypeError, ValueError):
            raise RecordError(path, rid, "obj_corner", f"not numbers: {shown}") from None
        # an object cut by the crop's edge has corners outside 0-1 (clipped below); pixel corners are far outside
        if not all(math.isfinite(v) and -1.0 <= v <= 2.0 for v in values):
            raise RecordError(path, rid, "obj_corner", f"corners must be normalised to 0-1, got {shown}")
        xs, ys = values[0::2], values[1::2]
        x1, x2 = max(min(xs), 0.0), min(max(xs), 1.0)
        y1, y2 = max(min(ys), 0.0), min(max(ys), 1.0)
        if x2 <= x1 or y2 <= y1:
            raise RecordError(path, rid, "obj_corner", f"the corners enclose no area: {shown}")
        return (x1 * width, y1 * height, x2 * width, y2 * height)
