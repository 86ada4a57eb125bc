"""One question/answer turn of a foreign instruction file -> a :class:`Sample` (used by :mod:`aerith.data.interop`).

How an imported prompt becomes a task, first rule that applies:

1. Our task tokens ``[CLS] [VQA] [CAP] [VG]`` (any of our phrasings is undone exactly,
   other text after the token is taken as it is); VG answers are our 0-1000 boxes.
2. GeoChat task tags: ``[refer]`` -> ``vg`` (expression inside ``<p>...</p>``, boxes
   ``{<x1><y1><x2><y2>|<θ>}`` on 0-100); ``[identify]`` -> ``vqa`` of kind ``identify``
   with the region's box in ``box`` and written our way in the question;
   ``[grounding]`` -> ``cap`` (grounded description: the text without its tags, the
   phrases and their pixel boxes in ``meta["phrases"]``); ``[vqa]`` -> ``vqa``;
   ``[caption]`` / ``[cap]`` -> ``cap``; ``[cls]`` / ``[scene]`` -> ``cls``.
3. No tag: an answer holding a box -> ``vg``; a prompt listing classes (``from:``,
   ``among:``, ``classes:``, ``categories:``, ``options:``) whose answer is one of them
   -> ``cls``; a prompt asking to describe or caption -> ``cap``; anything else -> ``vqa``.

A ``vg`` sample keeps the first box in ``box`` and all of them in ``meta["boxes"]``
(GeoChat may give several, joined ``}{``). Angles θ are dropped. A trailing
"Answer with a single word or phrase."-style hint is removed from VQA questions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aerith.boxes import GRID, format_box, to_grid
from aerith.data.errors import ImageReadError
from aerith.data.instructions import TASK_TOKENS, parse_prompt
from aerith.imageio import image_size
from aerith.data.sample import Sample

IMAGE_TOKEN = "<image>"

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_GEOCHAT_BOX = re.compile(rf"\{{\s*(?:<\s*{_NUM}\s*>\s*){{4}}(?:\|\s*<\s*{_NUM}\s*>)?\s*\}}")
_GEOCHAT_NUMS = re.compile(rf"<\s*({_NUM})\s*>")
LIST_BOX = re.compile(rf"\[\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*\]")
_INT_BOX = re.compile(r"\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]")
PHRASE = re.compile(r"<p>(.*?)</p>", re.DOTALL)
_GEOCHAT_TAG = re.compile(r"^\[(refer|grounding|identify|vqa|caption|cap|cls|scene)\]\s*", re.IGNORECASE)
_ANSWER_HINT = re.compile(
    r"\s*(?:please\s+)?answer(?:\s+the\s+question)?\s+(?:with|using|in)\s+(?:a\s+single|one|a)\s+word"
    r"(?:\s+or\s+(?:a\s+)?(?:short\s+)?phrase)?\.?\s*$",
    re.IGNORECASE,
)
_CLASS_LIST = re.compile(
    r"(?:from|among|classes|categories|options)\s*:\s*(.+?)\s*[.?]?\s*$", re.IGNORECASE | re.DOTALL
)
_DESCRIBE = re.compile(r"\b(describe|description|caption|summari[sz]e)\b", re.IGNORECASE)


class FieldError(Exception):
    """A problem in one field of the record being read; the caller adds the file and record."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def box_from_numbers(values: Sequence[float], scale: float | None, size: tuple[int, int], field: str) -> tuple[float, ...]:
    """Four numbers on ``0..scale`` (``None``: pixels) -> pixel corners, sorted and clamped to the image.

    A corner past the edge by up to 1% of the side is clamped (rounding in the source); a box
    further out is the record's error in ``field``. On an integer grid (GeoChat's 0-100, our
    0-1000) a small object's corners can round to one value: the box is one grid step wide
    there. A pixel or normalised box with no area is an error.
    """
    w, h = size
    x1, y1, x2, y2 = values
    limits = (scale, scale) if scale is not None else (w, h)
    for value, limit in ((x1, limits[0]), (x2, limits[0]), (y1, limits[1]), (y2, limits[1])):
        if not -0.01 * limit <= value <= 1.01 * limit:
            where = f"the 0-{scale:g} grid" if scale is not None else f"the {w}x{h} image"
            raise FieldError(field, f"box {[float(v) for v in values]} lies outside {where}")
    if scale is not None:
        x1, x2, y1, y2 = x1 * w / scale, x2 * w / scale, y1 * h / scale, y2 * h / scale
    x1, x2 = sorted((min(max(x1, 0.0), w), min(max(x2, 0.0), w)))
    y1, y2 = sorted((min(max(y1, 0.0), h), min(max(y2, 0.0), h)))
    if scale is not None and scale > 1:
        x1, x2 = _one_step_wide(x1, x2, w / scale, w)
        y1, y2 = _one_step_wide(y1, y2, h / scale, h)
    if x2 <= x1 or y2 <= y1:
        raise FieldError(field, f"box {[float(v) for v in values]} has no area")
    return (x1, y1, x2, y2)


def _one_step_wide(lo: float, hi: float, step: float, side: float) -> tuple[float, float]:
    if hi > lo:
        return lo, hi
    return (lo, lo + step) if lo + step <= side else (side - step, side)


def _geochat_boxes(text: str, size: tuple[int, int], field: str) -> list[tuple[float, ...]]:
    out = []
    for group in _GEOCHAT_BOX.finditer(text):
        nums = [float(v) for v in _GEOCHAT_NUMS.findall(group.group(0))[:4]]
        out.append(box_from_numbers(nums, 100.0, size, field))
    return out


def _grid_boxes(text: str, size: tuple[int, int], field: str) -> list[tuple[float, ...]]:
    return [box_from_numbers([float(v) for v in m.groups()], GRID, size, field) for m in _INT_BOX.finditer(text)]


def strip_tags(text: str) -> str:
    """Text without GeoChat boxes and ``<p>`` markers, spaces collapsed."""
    text = _GEOCHAT_BOX.sub(" ", text)
    text = PHRASE.sub(lambda m: m.group(1), text)
    return re.sub(r"\s+", " ", text).strip()


def _clean_question(text: str) -> str:
    return _ANSWER_HINT.sub("", text).strip()


class TurnReader:
    """Reads question/answer pairs about one image into Samples.

    Args:
        image: the image path.
        size: gives ``(width, height)``; called only when a box must be converted.
        meta: copied into every sample (record id, turn, format).
    """

    def __init__(self, image: Path, size: Callable[[], tuple[int, int]], meta: dict[str, Any]) -> None:
        self.image, self.size, self.meta = image, size, meta

    def sample(self, task: str, **fields: Any) -> Sample:
        """A Sample of this turn's image; ``meta`` is merged into the turn's own."""
        meta = {**self.meta, **fields.pop("meta", {})}
        return Sample(image=self.image, task=task, meta=meta, **fields)  # type: ignore[arg-type]

    def vg(self, expression: str, boxes: list[tuple[float, ...]], q_field: str, a_field: str) -> Sample:
        """A grounding sample: first box in ``box``, all of them in ``meta["boxes"]``."""
        expression = expression.strip()
        if not expression:
            raise FieldError(q_field, "grounding prompt without a referring expression")
        if not boxes:
            raise FieldError(a_field, "grounding answer without a box")
        return self.sample("vg", prompt=expression, box=boxes[0], meta={"boxes": [list(b) for b in boxes]})

    def parse(self, question: str, answer: str, q_field: str, a_field: str) -> Sample:
        """One question/answer pair as a Sample (module notes); ``*_field`` name the fields in errors."""
        question = question.replace(IMAGE_TOKEN, " ").strip()
        answer = answer.strip()
        if not question:
            raise FieldError(q_field, "empty question")
        if not answer:
            raise FieldError(a_field, "empty answer")
        if any(question.startswith(tok) for tok in TASK_TOKENS.values()):
            return self._ours(question, answer, q_field, a_field)
        tag = _GEOCHAT_TAG.match(question)
        if tag:
            return self._geochat(tag.group(1).lower(), question[tag.end() :].strip(), answer, q_field, a_field)
        return self._untagged(question, answer, q_field, a_field)

    def _ours(self, question: str, answer: str, q_field: str, a_field: str) -> Sample:
        parsed = parse_prompt(question)
        task = next(t for t, tok in TASK_TOKENS.items() if question.startswith(tok))
        rest = question[len(TASK_TOKENS[task]) :].strip()
        if task == "vg":
            expression = parsed.expression if parsed else rest
            return self.vg(expression or "", _grid_boxes(answer, self.size(), a_field), q_field, a_field)
        if task == "cls":
            if parsed:
                classes = list(parsed.classes)
            else:  # another phrasing: the class list follows its last colon
                tail = rest.rsplit(":", 1)[1] if ":" in rest else ""
                classes = [c.strip() for c in tail.strip().rstrip(".?").split(",") if c.strip()]
            return self.sample("cls", targets=(answer,), meta={"classes": classes})
        if task == "vqa":
            text = parsed.question if parsed else _clean_question(rest)
            if not text:
                raise FieldError(q_field, "VQA prompt without a question")
            return self.sample("vqa", prompt=text, targets=(answer,))
        return self.sample("cap", targets=(answer,))

    def _geochat(self, tag: str, rest: str, answer: str, q_field: str, a_field: str) -> Sample:
        if tag == "refer":
            phrases = PHRASE.findall(rest)
            expression = phrases[0] if phrases else strip_tags(rest)
            size = self.size()
            return self.vg(expression, _geochat_boxes(answer, size, a_field) or _grid_boxes(answer, size, a_field), q_field, a_field)
        if tag == "identify":
            boxes = _geochat_boxes(rest, self.size(), q_field)
            if not boxes:
                raise FieldError(q_field, "[identify] prompt without a {<x1><y1><x2><y2>} region")
            first = _GEOCHAT_BOX.search(rest)
            grid = _grid_text(boxes[0], self.size())
            text = _clean_question(re.sub(r"\s+", " ", rest[: first.start()] + grid + rest[first.end() :]).strip())
            return self.sample("vqa", prompt=text, targets=(strip_tags(answer),), box=boxes[0], kind="identify")
        if tag == "grounding":
            size = self.size()
            phrases = []
            for m in re.finditer(r"<p>(.*?)</p>\s*((?:" + _GEOCHAT_BOX.pattern + r"\s*)+)", answer, re.DOTALL):
                boxes = [list(b) for b in _geochat_boxes(m.group(2), size, a_field)]
                phrases.append({"phrase": m.group(1).strip(), "boxes": boxes})
            return self.sample("cap", targets=(strip_tags(answer),), meta={"phrases": phrases})
        if tag == "vqa":
            return self.sample("vqa", prompt=_clean_question(strip_tags(rest)), targets=(answer,))
        if tag in ("caption", "cap"):
            return self.sample("cap", targets=(strip_tags(answer),))
        m = _CLASS_LIST.search(rest)  # cls / scene
        classes = [c.strip() for c in m.group(1).split(",")] if m else []
        return self.sample("cls", targets=(_clean_question(answer).rstrip("."),), meta={"classes": classes})

    def _untagged(self, question: str, answer: str, q_field: str, a_field: str) -> Sample:
        if _GEOCHAT_BOX.search(answer) or _INT_BOX.search(answer):
            size = self.size()
            phrases = PHRASE.findall(question)
            expression = phrases[0] if phrases else _clean_question(strip_tags(question))
            return self.vg(expression, _geochat_boxes(answer, size, a_field) or _grid_boxes(answer, size, a_field), q_field, a_field)
        m = _CLASS_LIST.search(_clean_question(question))
        if m:
            classes = [c.strip() for c in m.group(1).split(",")]
            label = answer.rstrip(".").strip()
            if label.lower() in (c.lower() for c in classes):
                return self.sample("cls", targets=(label,), meta={"classes": classes})
        if _DESCRIBE.search(question) and "?" not in question:
            return self.sample("cap", targets=(answer,))
        return self.sample("vqa", prompt=_clean_question(question), targets=(answer,))


def _grid_text(box: Sequence[float], size: tuple[int, int]) -> str:
    return format_box(to_grid(box, size))


def image_sizer(path: Path, cache: dict[Path, tuple[int, int]], field: str) -> Callable[[], tuple[int, int]]:
    """A function giving the image's ``(width, height)``, read once into ``cache``; a bad image is a FieldError."""

    def size() -> tuple[int, int]:
        if path not in cache:
            try:
                cache[path] = image_size(path)
            except ImageReadError as err:
                raise FieldError(field, f"cannot read the image size for its box ({err})") from err
        return cache[path]

    return size
