"""Read boxes out of model answers, in Aerith's format and in those of other RS VLMs.

Every format ends as pixel ``(x1, y1, x2, y2)`` boxes of an image of ``(width, height)``,
corners sorted (``x1 <= x2``, ``y1 <= y2``) and clamped to the image.

| fmt | text | scale |
|---|---|---|
| ``aerith`` | ``[x1, y1, x2, y2]`` | 0-1000 grid (``aerith.boxes``) |
| ``geochat`` | ``{<x1><y1><x2><y2>|<θ>}``, several as ``}{`` or repeated groups | 0-100 |
| ``vhm`` | ``[[x1, y1, x2, y2]]``, possibly ``[[..], [..]]`` | 0-1000 |
| ``lhrs-nova`` | ``<bbox>[x1, y1, x2, y2]</bbox>`` | 0-1 |
| ``qwen`` | ``<box>(x1,y1),(x2,y2)</box>`` | 0-1000 |
| ``pixel`` | ``[x1, y1, x2, y2]`` | pixels |
| ``norm`` | ``[x1, y1, x2, y2]`` | 0-1 |

``auto`` picks one format per text, first match wins: GeoChat groups, then Qwen
``<box>`` pairs, then LHRS-Bot-Nova ``<bbox>`` lists, then bare lists (which covers
VHM's nested lists). A bare list whose four numbers are all integers is ours (0-1000);
one with a decimal number and all values <= 1 is normalised 0-1; one with decimals
above 1 is read on the 0-1000 grid too (pixel lists are never guessed: pass
``fmt="pixel"``). GeoChat's angle θ is read past and ignored: the box returned is the
axis-aligned ``x1 y1 x2 y2`` the model wrote.

:func:`auto_boxes` says which format ``auto`` chose for each box and the numbers it read, so
that a caller can tell pixel lists misread on the grid (numbers beyond 1000) and say so.

Explicit formats are lenient about the wrapping: ``qwen`` accepts the point pairs
without ``<box>`` tags, ``lhrs-nova`` any 4-number list, ``vhm`` single brackets.
Malformed text never raises: what does not parse is simply not a box.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from aerith.boxes import GRID, PixelBox

FORMATS: tuple[str, ...] = ("auto", "aerith", "geochat", "vhm", "lhrs-nova", "qwen", "pixel", "norm")

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_SEP = r"(?:\s*[,;]\s*|\s+)"
_LIST = re.compile(rf"\[\s*({_NUM}){_SEP}({_NUM}){_SEP}({_NUM}){_SEP}({_NUM})\s*\]")
# GeoChat: <x1><y1><x2><y2>, optionally |<angle>; boxes back to back (see _geochat_groups)
_GEOCHAT_RUN = re.compile(rf"(?:<\s*{_NUM}\s*>\s*)+")
_GEOCHAT_NUMBER = re.compile(rf"<\s*({_NUM})\s*>")
_QWEN_PAIRS = re.compile(
    rf"\(\s*({_NUM})\s*,\s*({_NUM})\s*\)\s*,?\s*\(\s*({_NUM})\s*,\s*({_NUM})\s*\)"
)
# tag contents hold no "<": an unclosed tag then costs one scan to the next tag, not to the end of the text
_QWEN_TAG = re.compile(r"<box>([^<]*)</box>", re.IGNORECASE)
_BBOX_TAG = re.compile(r"<bbox>([^<]*)</bbox>", re.IGNORECASE)

# fmt -> full scale of the coordinates (None: pixels)
_SCALES: dict[str, float | None] = {
    "aerith": GRID,
    "geochat": 100.0,
    "vhm": GRID,
    "lhrs-nova": 1.0,
    "qwen": GRID,
    "pixel": None,
    "norm": 1.0,
}

_Raw = tuple[str, str, str, str]


def parse_boxes(text: str | None, image_size: tuple[int, int], fmt: str = "auto") -> list[PixelBox]:
    """Every box written in ``text``, as pixel corners of an image of ``image_size``.

    Args:
        text: a model answer; ``None`` or text without a box gives ``[]``.
        image_size: ``(width, height)`` in pixels.
        fmt: one of ``FORMATS`` (see the module docstring).

    Returns:
        ``[(x1, y1, x2, y2), ...]`` floats in pixels, in the order they appear.

    Raises:
        ValueError: unknown ``fmt`` or a non-positive image size.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown box format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    w, h = image_size
    if w <= 0 or h <= 0:
        raise ValueError(f"image_size must be positive (width, height), got {image_size}")
    if text is None:
        return []
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    return [_to_pixels(raw, scale, w, h) for raw, scale in _find(text, fmt)]


def auto_boxes(text: str | None) -> list[tuple[str, tuple[float, float, float, float]]]:
    """How ``fmt="auto"`` reads each box of ``text``: ``(format, raw numbers)``, in order.

    ``format`` is ``geochat``, ``qwen``, ``lhrs-nova``, ``norm`` (a bare list of decimals <= 1)
    or ``aerith`` (any other bare list, read on the 0-1000 grid).
    """
    if not isinstance(text, str):
        return []
    return [(fmt, (float(r[0]), float(r[1]), float(r[2]), float(r[3]))) for r, fmt in _auto(text)]


def _auto(text: str) -> list[tuple[_Raw, str]]:
    """The boxes ``auto`` reads, each with the format it reads it in (first matching kind wins)."""
    for raws, fmt in (
        (list(_geochat_groups(text)), "geochat"),
        (list(_tagged(_QWEN_TAG, _QWEN_PAIRS, text)), "qwen"),
        (list(_tagged(_BBOX_TAG, _LIST, text)), "lhrs-nova"),
    ):
        if raws:
            return [(r, fmt) for r in raws]
    return [(r, _guess_format(r)) for r in _groups(_LIST, text)]


def _find(text: str, fmt: str) -> list[tuple[_Raw, float | None]]:
    """The raw number strings of each box and the scale to read them on."""
    if fmt == "auto":
        return [(r, _SCALES[f]) for r, f in _auto(text)]
    if fmt == "geochat":
        return [(r, _SCALES[fmt]) for r in _geochat_groups(text)]
    return [(r, _SCALES[fmt]) for r in _groups(_QWEN_PAIRS if fmt == "qwen" else _LIST, text)]


def _groups(pattern: re.Pattern[str], text: str) -> Iterator[_Raw]:
    for m in pattern.finditer(text):
        yield m.group(1), m.group(2), m.group(3), m.group(4)


def _geochat_groups(text: str) -> Iterator[_Raw]:
    """GeoChat boxes: each run of ``<n>`` numbers holds whole boxes of four (``<x1><y1><x2><y2>``, back to
    back or not); after a ``|`` its first number is the angle of the box before. A run of another length
    (six numbers) is no box, rather than four numbers taken out of it."""
    for m in _GEOCHAT_RUN.finditer(text):
        numbers = _GEOCHAT_NUMBER.findall(m.group(0))
        if text[: m.start()].rstrip().endswith("|"):
            numbers = numbers[1:]  # the angle of the box before
        if numbers and len(numbers) % 4 == 0:
            for i in range(0, len(numbers), 4):
                yield tuple(numbers[i : i + 4])  # type: ignore[misc]


def _tagged(tag: re.Pattern[str], inner: re.Pattern[str], text: str) -> Iterator[_Raw]:
    for m in tag.finditer(text):
        yield from _groups(inner, m.group(1))


def _guess_format(raw: _Raw) -> str:
    """Auto rule for a bare list: integers are our 0-1000 grid, decimals all <= 1 are 0-1."""
    if any("." in v for v in raw) and all(abs(float(v)) <= 1.0 for v in raw):
        return "norm"
    return "aerith"


def _to_pixels(raw: _Raw, scale: float | None, w: int, h: int) -> PixelBox:
    x1, y1, x2, y2 = (float(v) for v in raw)
    if scale is not None:
        x1, x2 = x1 * w / scale, x2 * w / scale
        y1, y2 = y1 * h / scale, y2 * h / scale
    x1, x2 = sorted((min(max(x1, 0.0), w), min(max(x2, 0.0), w)))
    y1, y2 = sorted((min(max(y1, 0.0), h), min(max(y2, 0.0), h)))
    return (x1, y1, x2, y2)
