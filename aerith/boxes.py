"""Boxes in text: integers on a 0-1000 grid relative to the image, ``x1 y1 x2 y2``.

The one place the grid convention lives; training targets, the inference
facade and the answer parsers all go through it.
"""

from __future__ import annotations

from collections.abc import Sequence

GRID = 1000

PixelBox = tuple[float, float, float, float]
GridBox = tuple[int, int, int, int]


def to_grid(box: Sequence[float], image_size: tuple[int, int]) -> GridBox:
    """Pixel ``(x1, y1, x2, y2)`` -> integers on the 0-1000 grid, clamped to the image.

    Args:
        box: pixel corners.
        image_size: ``(width, height)`` in pixels.
    """
    w, h = image_size
    if w <= 0 or h <= 0:
        raise ValueError(f"image_size must be positive, got {image_size}")
    x1, y1, x2, y2 = box
    scale = (GRID / w, GRID / h, GRID / w, GRID / h)
    out = [min(GRID, max(0, round(v * s))) for v, s in zip((x1, y1, x2, y2), scale)]
    return out[0], out[1], out[2], out[3]


def from_grid(box: Sequence[float], image_size: tuple[int, int]) -> PixelBox:
    """0-1000 grid ``(x1, y1, x2, y2)`` -> pixel corners of an image of ``(width, height)``."""
    w, h = image_size
    x1, y1, x2, y2 = box
    return (x1 * w / GRID, y1 * h / GRID, x2 * w / GRID, y2 * h / GRID)


def format_box(box: Sequence[int]) -> str:
    """The text form the model reads and writes: ``[x1, y1, x2, y2]``."""
    return "[" + ", ".join(str(int(v)) for v in box) + "]"


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes; 0 for degenerate ones."""
    ix1, iy1 = max(a[0], b[0]), max(a[1], b[1])
    ix2, iy2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, ix2 - ix1) * max(0.0, iy2 - iy1)
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0
