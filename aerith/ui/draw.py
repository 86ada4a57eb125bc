"""Drawing on the displayed scene: answer boxes with their labels, the region being asked about.

Boxes come on the 0-1000 grid, so they are drawn on the display image whatever its size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from aerith.boxes import GRID

# Answer colours by turn (matplotlib's tab10 without its grey); the region is drawn in yellow.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 127, 14), (31, 119, 180), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207),
)  # fmt: skip
REGION_COLOUR = (255, 221, 0)
LINE = 3


@dataclass(frozen=True)
class LabelledBox:
    """A grid box ``(x1, y1, x2, y2)`` and the label drawn above it."""

    box: Sequence[float]
    label: str
    colour: tuple[int, int, int]


def turn_colour(turn: int) -> tuple[int, int, int]:
    """The colour of the boxes of turn ``turn`` (1-based)."""
    return PALETTE[(turn - 1) % len(PALETTE)]


def _pixels(box: Sequence[float], size: tuple[int, int]) -> tuple[float, float, float, float]:
    w, h = size
    x1, y1, x2, y2 = box
    return x1 * w / GRID, y1 * h / GRID, x2 * w / GRID, y2 * h / GRID


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def annotate(
    image: Image.Image,
    boxes: Sequence[LabelledBox] = (),
    region: Sequence[float] | None = None,
    corner: Sequence[float] | None = None,
) -> Image.Image:
    """A copy of ``image`` with ``boxes`` (outlined, label on a filled tab), the ``region`` (yellow,
    labelled "region") and a first ``corner`` of a region being drawn (a yellow cross)."""
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    font = _font(max(14, out.size[0] // 32))
    items = list(boxes) + ([LabelledBox(region, "region", REGION_COLOUR)] if region is not None else [])
    for item in items:
        x1, y1, x2, y2 = _pixels(item.box, out.size)
        draw.rectangle((x1, y1, x2, y2), outline=item.colour, width=LINE)
        if item.label:
            left, top, right, bottom = draw.textbbox((0, 0), item.label, font=font)
            tw, th = right - left + 6, bottom - top + 4
            ty = y1 - th if y1 - th >= 0 else y1  # above the box, or inside it at the image's top edge
            tx = min(max(0.0, x1), max(0.0, out.size[0] - tw))
            draw.rectangle((tx, ty, tx + tw, ty + th), fill=item.colour)
            draw.text((tx + 3 - left, ty + 2 - top), item.label, fill=(0, 0, 0) if item.colour == REGION_COLOUR else (255, 255, 255), font=font)
    if corner is not None:
        cx, cy = corner[0] * out.size[0] / GRID, corner[1] * out.size[1] / GRID
        arm = max(6, out.size[0] // 60)
        draw.line((cx - arm, cy, cx + arm, cy), fill=REGION_COLOUR, width=LINE)
        draw.line((cx, cy - arm, cx, cy + arm), fill=REGION_COLOUR, width=LINE)
    return out


__all__ = ["LINE", "PALETTE", "REGION_COLOUR", "LabelledBox", "annotate", "turn_colour"]
