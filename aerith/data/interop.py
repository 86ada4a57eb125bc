"""Export instructions to, and import samples from, the JSON formats of other RS VLMs.

Formats (DATASETS.md, "Instruction formats of other RS VLMs"):

- LLaVA / GeoChat_Instruct: a list of
  ``{"id", "image", "conversations": [{"from": "human", "value": "<image>\\n..."}, {"from": "gpt", "value": ...}]}``.
  :func:`to_llava` writes one record per instruction; :func:`from_llava` reads
  multi-turn conversations as one sample per human/gpt pair.
- LHRS-Bot: ``{"data": [...]}`` whose items are conversations
  ``{"name" (or "filename"), "conv": [{"Question", "Answer"}]}`` or grounding items
  ``{"img", "question", "answer"}`` with the box written ``[x1, y1, x2, y2]``.
  LHRS-Bot does not document the scale of those boxes (unconfirmed); we write them
  normalised 0-1 (``box_format="norm"``) or in pixels (``"pixel"``), and read them as
  0-1 when all four values are <= 1, else as pixels (``"auto"``).

How a prompt becomes a task on import is described in :mod:`aerith.data.turns`.

Malformed records raise :class:`~aerith.data.errors.RecordError` naming the file,
record index and field, or with ``on_bad="skip"`` are counted and reported in one
:class:`~aerith.data.errors.SkippedRecordsWarning`. JSON files are written atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from aerith.atomic import atomic_write_text
from aerith.data.errors import BadRecords, OnBad, RecordError
from aerith.data.instructions import TASK_TOKENS, Instruction, parse_prompt
from aerith.imageio import image_size
from aerith.data.sample import Sample
from aerith.data.turns import (
    IMAGE_TOKEN,
    LIST_BOX,
    PHRASE,
    FieldError,
    TurnReader,
    box_from_numbers,
    image_sizer,
    strip_tags,
)

IMAGE_TOKEN_PREFIX = IMAGE_TOKEN + "\n"
LhrsBoxFormat = Literal["norm", "pixel"]

_LLAVA_HUMAN = ("human", "user")
_LLAVA_GPT = ("gpt", "assistant")
_IMAGE_SUFFIXES = (".jpg", ".png", ".tif", ".tiff", ".jpeg", ".bmp")


# ---------------------------------------------------------------------------- writing


def write_json(data: Any, path: str | Path) -> Path:
    """Write ``data`` as UTF-8 JSON through a temporary file in the same folder and ``os.replace``."""
    return atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=1) + "\n")


def _image_ref(image: Path, base: str | Path | None) -> str:
    if base is None:
        return image.as_posix()
    return Path(os.path.relpath(image, Path(base).expanduser())).as_posix()


def to_llava(instructions: Iterable[Instruction], *, image_base: str | Path | None = None) -> list[dict[str, Any]]:
    """LLaVA conversation records, one per instruction.

    Args:
        instructions: what :func:`aerith.data.instructions.to_instruction` made.
        image_base: write image paths relative to this folder (LLaVA's ``image_folder``);
            ``None`` keeps each path as the sample holds it.
    Returns:
        ``[{"id": "<stem>_<n>", "image", "conversations": [human, gpt]}, ...]``.
    """
    records = []
    for n, ins in enumerate(instructions):
        records.append(
            {
                "id": f"{ins.sample.image.stem}_{n}",
                "image": _image_ref(ins.sample.image, image_base),
                "conversations": [
                    {"from": "human", "value": IMAGE_TOKEN_PREFIX + ins.prompt},
                    {"from": "gpt", "value": ins.target},
                ],
            }
        )
    return records


def _lhrs_box(sample: Sample, box_format: LhrsBoxFormat) -> str:
    if sample.box is None:
        raise ValueError(f"{sample.image}: a grounding sample needs a box")
    if box_format == "pixel":
        return "[" + ", ".join(str(round(v)) for v in sample.box) + "]"
    w, h = sample.meta.get("image_size") or image_size(sample.image)
    x1, y1, x2, y2 = sample.box
    return "[" + ", ".join(f"{v:.3f}" for v in (x1 / w, y1 / h, x2 / w, y2 / h)) + "]"


def to_lhrs(
    instructions: Iterable[Instruction],
    *,
    image_base: str | Path | None = None,
    box_format: LhrsBoxFormat = "norm",
) -> dict[str, list[dict[str, Any]]]:
    """LHRS-Bot JSON, one item per instruction.

    Grounding instructions become ``{"img", "question", "answer"}`` items whose answer is
    the box (``box_format``: ``"norm"`` 0-1 with three decimals, or ``"pixel"``); the
    others become ``{"name", "conv": [{"Question", "Answer"}]}``.
    """
    if box_format not in ("norm", "pixel"):
        raise ValueError(f"box_format must be 'norm' or 'pixel', got {box_format!r}")
    items: list[dict[str, Any]] = []
    for ins in instructions:
        ref = _image_ref(ins.sample.image, image_base)
        if ins.task == "vg":
            items.append({"img": ref, "question": ins.prompt, "answer": _lhrs_box(ins.sample, box_format)})
        else:
            items.append({"name": ref, "conv": [{"Question": ins.prompt, "Answer": ins.target}]})
    return {"data": items}


# ---------------------------------------------------------------------------- reading


def _load_source(source: str | Path | Sequence[Any] | Mapping[str, Any]) -> tuple[Any, Path]:
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found; expected a JSON file of instructions")
        try:
            return json.loads(path.read_text(encoding="utf-8-sig")), path
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RecordError(path, None, None, f"not valid JSON ({err})") from err
    return source, Path("<records>")


def _resolve_image(image_root: Path, ref: Any, field: str, try_suffixes: bool = False) -> Path:
    if isinstance(ref, list) and ref:
        ref = ref[0]  # LHRS-Bot allows a list of file names; it reads the first
    if not isinstance(ref, str) or not ref.strip():
        raise FieldError(field, f"expected an image path, got {ref!r}")
    path = image_root / ref
    if path.is_file():
        return path
    if try_suffixes and not path.suffix:
        for suffix in _IMAGE_SUFFIXES:
            if path.with_name(path.name + suffix).is_file():
                return path.with_name(path.name + suffix)
    raise FieldError(field, f"image file {path} not found")


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise FieldError(field, f"expected text, got {type(value).__name__}")
    return value


def _llava_record(record: Any, index: int, image_root: Path, cache: dict) -> list[Sample]:
    if not isinstance(record, dict):
        raise FieldError("record", f"expected an object, got {type(record).__name__}")
    if "image" not in record:
        raise FieldError("image", "missing")
    image = _resolve_image(image_root, record["image"], "image")
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise FieldError("conversations", "expected a non-empty list of turns")
    if len(turns) % 2:
        raise FieldError("conversations", f"{len(turns)} turns: expected human/gpt pairs")
    samples = []
    for j in range(0, len(turns), 2):
        human, gpt = turns[j], turns[j + 1]
        for k, (turn, roles) in enumerate(((human, _LLAVA_HUMAN), (gpt, _LLAVA_GPT))):
            where = f"conversations[{j + k}]"
            if not isinstance(turn, dict) or turn.get("from") not in roles:
                raise FieldError(f"{where}.from", f"expected a turn from {' or '.join(roles)}")
        meta = {"id": record.get("id", index), "turn": j // 2, "format": "llava"}
        reader = TurnReader(image, image_sizer(image, cache, "image"), meta)
        q = _text(human.get("value"), f"conversations[{j}].value")
        a = _text(gpt.get("value"), f"conversations[{j + 1}].value")
        samples.append(reader.parse(q, a, f"conversations[{j}].value", f"conversations[{j + 1}].value"))
    return samples


def _read_records(
    source: str | Path | Sequence[Any] | Mapping[str, Any],
    on_bad: OnBad,
    unwrap: Callable[[Any, Path], list[Any]],
    read: Callable[[Any, int], list[Sample]],
) -> list[Sample]:
    data, path = _load_source(source)
    records = unwrap(data, path)
    bad = BadRecords(on_bad, source=str(path))
    samples: list[Sample] = []
    for index, record in enumerate(records):
        try:
            samples.extend(read(record, index))
        except FieldError as err:
            bad.handle(RecordError(path, index, err.field, err.message))
    bad.finish()
    return samples


def from_llava(
    source: str | Path | Sequence[Mapping[str, Any]],
    image_root: str | Path,
    *,
    on_bad: OnBad = "raise",
) -> list[Sample]:
    """Samples from LLaVA / GeoChat conversation records (a JSON file or the loaded list).

    Args:
        source: path of the JSON file, or its records.
        image_root: the folder the records' ``image`` paths are relative to.
        on_bad: ``"raise"`` on the first malformed record, or ``"skip"`` and count them.
    Returns:
        One sample per human/gpt pair, in file order; ``meta`` holds ``id`` and ``turn``.
    Raises:
        RecordError: naming the file, record index and field.
    """
    root = Path(image_root).expanduser()
    cache: dict[Path, tuple[int, int]] = {}

    def unwrap(data: Any, path: Path) -> list[Any]:
        if not isinstance(data, list):
            raise RecordError(path, None, None, "expected a JSON list of conversation records")
        return data

    return _read_records(source, on_bad, unwrap, lambda rec, i: _llava_record(rec, i, root, cache))


def _lhrs_numbers(text: str, field: str) -> list[float]:
    m = LIST_BOX.search(text)
    if m is None:
        raise FieldError(field, f"no [x1, y1, x2, y2] box in {text!r}")
    return [float(v) for v in m.groups()]


def _lhrs_record(record: Any, index: int, root: Path, cache: dict, box_format: str) -> list[Sample]:
    if not isinstance(record, dict):
        raise FieldError("record", f"expected an object, got {type(record).__name__}")
    if "img" in record:  # a grounding item
        image = _resolve_image(root, record["img"], "img", try_suffixes=True)
        question = _text(record.get("question"), "question").replace(IMAGE_TOKEN, " ").strip()
        answer = _text(record.get("answer"), "answer")
        values = _lhrs_numbers(answer, "answer")
        fmt = box_format if box_format != "auto" else ("norm" if all(abs(v) <= 1.0 for v in values) else "pixel")
        size = image_sizer(image, cache, "img")
        box = box_from_numbers(values, 1.0 if fmt == "norm" else None, size(), "answer")
        parsed = parse_prompt(question)
        if parsed is not None and parsed.task == "vg":
            expression = parsed.expression or ""
        elif question.startswith(TASK_TOKENS["vg"]):
            expression = question[len(TASK_TOKENS["vg"]) :]
        else:
            phrases = PHRASE.findall(question)
            expression = phrases[0] if phrases else strip_tags(question)
        meta = {"id": index, "turn": 0, "format": "lhrs", "box_format": fmt}
        reader = TurnReader(image, size, meta)
        return [reader.vg(expression, [box], "question", "answer")]
    key = "name" if "name" in record else "filename" if "filename" in record else None
    if key is None:
        raise FieldError("name", "missing (an LHRS-Bot item needs 'name' or 'filename', or 'img' for grounding)")
    image = _resolve_image(root, record[key], key)
    conv = record.get("conv")
    if isinstance(conv, dict):
        conv = [conv]
    if not isinstance(conv, list) or not conv:
        raise FieldError("conv", "expected a non-empty list of {'Question', 'Answer'}")
    samples = []
    for j, turn in enumerate(conv):
        if not isinstance(turn, dict):
            raise FieldError(f"conv[{j}]", "expected an object with 'Question' and 'Answer'")
        a_key = "Answer" if "Answer" in turn else "value"  # LHRS-Bot's loader accepts 'value' too
        q = _text(turn.get("Question"), f"conv[{j}].Question")
        a = _text(turn.get(a_key), f"conv[{j}].Answer")
        meta = {"id": index, "turn": j, "format": "lhrs"}
        reader = TurnReader(image, image_sizer(image, cache, key), meta)
        samples.append(reader.parse(q, a, f"conv[{j}].Question", f"conv[{j}].Answer"))
    return samples


def from_lhrs(
    source: str | Path | Mapping[str, Any] | Sequence[Any],
    image_root: str | Path,
    *,
    on_bad: OnBad = "raise",
    box_format: Literal["auto", "norm", "pixel"] = "auto",
) -> list[Sample]:
    """Samples from LHRS-Bot JSON (``{"data": [...]}`` or a bare list, file or loaded).

    Args:
        source: path of the JSON file, or its content.
        image_root: folder the items' ``name`` / ``filename`` / ``img`` are relative to
            (a grounding ``img`` without extension is looked up as .jpg, .png, .tif ...).
        on_bad: ``"raise"`` or ``"skip"`` (counted, one warning).
        box_format: scale of grounding boxes: ``"norm"`` 0-1, ``"pixel"``, or ``"auto"``.
    Raises:
        RecordError: naming the file, record index and field.
    """
    if box_format not in ("auto", "norm", "pixel"):
        raise ValueError(f"box_format must be 'auto', 'norm' or 'pixel', got {box_format!r}")
    root = Path(image_root).expanduser()
    cache: dict[Path, tuple[int, int]] = {}

    def unwrap(data: Any, path: Path) -> list[Any]:
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            return data["data"]
        if isinstance(data, list):
            return data
        raise RecordError(path, None, "data", "expected {'data': [...]} or a JSON list of items")

    return _read_records(source, on_bad, unwrap, lambda rec, i: _lhrs_record(rec, i, root, cache, box_format))
