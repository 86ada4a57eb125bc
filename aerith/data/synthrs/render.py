"""Drawing primitives of SynthRS: noise textures, bands, and the object sprites.

Images are ``float32`` arrays ``(H, W, 3)`` in 0-255 until they are written.
Every random choice comes from the ``numpy.random.Generator`` passed in, so a
scene is a pure function of its generator's seed. Objects are flat-coloured
with a dark outline and one detail (a roof ridge, a tank lid, a windshield ...)
so that category, colour and extent stay readable at 64-128 px.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from aerith.data.synthrs.scene import COLOURS, PixelBox

Array = np.ndarray


def smooth_noise(size: int, cells: int, rng: np.random.Generator) -> Array:
    """A ``(size, size)`` field of bilinearly upsampled Gaussian noise (about unit variance).

    Args:
        size: image side in pixels.
        cells: grid cells per side before upsampling; fewer cells give larger blobs.
    """
    grid = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    big = Image.fromarray(grid).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(big, dtype=np.float32)


def coords(size: int) -> tuple[Array, Array]:
    """Pixel-centre coordinates ``(yy, xx)`` as fractions of the image side, each ``(size, size)``."""
    axis = (np.arange(size, dtype=np.float32) + 0.5) / size
    return np.meshgrid(axis, axis, indexing="ij")


def textured(
    size: int, rgb: tuple[int, int, int], rng: np.random.Generator, *, blotch: float, grain: float, cells: int = 6
) -> Array:
    """A flat colour with large soft blotches and fine grain (both in grey levels)."""
    lum = blotch * smooth_noise(size, cells, rng) + grain * rng.standard_normal((size, size)).astype(np.float32)
    return np.asarray(rgb, dtype=np.float32)[None, None, :] + lum[:, :, None]


def paint(img: Array, mask: Array, layer: Array | tuple[int, int, int]) -> None:
    """Copy ``layer`` (an image or a colour) into ``img`` where ``mask`` is true, in place."""
    if isinstance(layer, tuple):
        img[mask] = np.asarray(layer, dtype=np.float32)
    else:
        img[mask] = layer[mask]


def wavy_band(size: int, centre: float, width: float, amplitude: float, wavelength: float, phase: float) -> Array:
    """Mask of a horizontal band whose centre line is ``centre + amplitude * sin(...)`` (fractions)."""
    yy, xx = coords(size)
    line = centre + amplitude * np.sin(2 * np.pi * xx / wavelength + phase)
    return np.abs(yy - line) <= width / 2


def to_uint8(img: Array) -> Array:
    """Round and clip to ``uint8``."""
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


# -- objects -----------------------------------------------------------------


def _outline(body: Array) -> Array:
    padded = np.pad(body, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return body & ~inner


def _ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> Array:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0


def sprite(category: str, length: int, width: int, rng: np.random.Generator) -> tuple[Array, Array, Array]:
    """Masks of one object drawn with its long side along x: ``(body, detail, lines)``, each ``(width, length)``.

    ``detail`` pixels get a shade of the object's colour, ``lines`` are white
    (the markings of a tennis court). Shapes: building = rectangle with a roof
    ridge; storage tank = disc with a lid ring; airplane = fuselage, wings and
    tail; ship = hull with a pointed bow and a bridge; vehicle = rectangle
    with a windshield; tree = clump of discs; tennis court = rectangle with
    white border and net.
    """
    h, w = width, length
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    body = np.ones((h, w), bool)
    detail = np.zeros((h, w), bool)
    lines = np.zeros((h, w), bool)
    if category == "building":
        if h >= 6:
            detail[h // 2, 1:-1] = True
    elif category == "storage tank":
        body = _ellipse(h, w, h / 2, w / 2, h / 2, w / 2)
        ring = _ellipse(h, w, h / 2, w / 2, 0.62 * h / 2, 0.62 * w / 2)
        detail = ring & ~_ellipse(h, w, h / 2, w / 2, 0.62 * h / 2 - 1, 0.62 * w / 2 - 1)
    elif category == "airplane":
        half = max(1.0, 0.12 * h)
        fuselage = (np.abs(yy - h / 2) <= half) & (xx >= 0.02 * w)
        wings = (xx >= 0.38 * w) & (xx <= 0.62 * w) & (np.abs(yy - h / 2) <= h / 2 - 0.5 * np.abs(xx - 0.5 * w))
        tail = (xx <= 0.18 * w) & (np.abs(yy - h / 2) <= 0.26 * h)
        body = fuselage | wings | tail
    elif category == "ship":
        bow = 0.7 * w
        half = np.where(xx <= bow, h / 2, (h / 2) * (w - xx) / (w - bow))
        body = np.abs(yy - h / 2) <= half + 0.01
        detail = (xx >= 0.22 * w) & (xx <= 0.45 * w) & (np.abs(yy - h / 2) <= max(1.0, 0.22 * h))
    elif category == "vehicle":
        detail = (xx >= 0.62 * w) & (xx <= 0.8 * w) & (np.abs(yy - h / 2) <= h / 2 - 1)
    elif category == "tree":
        r = 0.3 * min(h, w)
        body = np.zeros((h, w), bool)
        for dy, dx in ((-1, -1), (-1, 1), (1, -1), (1, 1), (0, 0)):
            jy, jx = rng.uniform(-0.05, 0.05, 2) * np.array([h, w])
            body |= _ellipse(h, w, h / 2 + dy * (h / 2 - r) + jy, w / 2 + dx * (w / 2 - r) + jx, r, r)
        detail = _ellipse(h, w, 0.38 * h, 0.38 * w, 0.35 * r, 0.35 * r) & body
    elif category == "tennis court":
        lines = _outline(body)
        lines[:, w // 2] = True
    else:
        raise ValueError(f"unknown object category {category!r}")
    if rng.random() < 0.5:  # which way the airplane, ship or vehicle points
        body, detail, lines = body[:, ::-1], detail[:, ::-1], lines[:, ::-1]
    return body, detail, lines


def draw_object(
    img: Array,
    category: str,
    colour: str,
    top_left: tuple[int, int],
    length: int,
    width: int,
    vertical: bool,
    rng: np.random.Generator,
) -> PixelBox:
    """Draw one object in place with its top-left corner at ``(x, y)``; returns its tight pixel box."""
    body, detail, lines = sprite(category, length, width, rng)
    if vertical:
        body, detail, lines = body.T, detail.T, lines.T
    # Small objects (at 64 px) get no outline or detail: they would leave no room for the colour.
    small = min(length, width) < (14 if category == "airplane" else 6)
    rgb = np.asarray(COLOURS[colour], dtype=np.float32)
    dark = rgb * 0.45 if rgb.mean() > 60 else rgb + 70
    shade = rgb * 0.72 if rgb.mean() > 150 else np.minimum(rgb * 1.35 + 25, 255)
    x, y = top_left
    h, w = body.shape
    patch = img[y : y + h, x : x + w]
    patch[body] = rgb
    if not small:
        patch[detail & body] = shade
    if category == "tennis court":
        patch[lines & ~_outline(body) if small else lines] = np.asarray(COLOURS["white"], dtype=np.float32)
    elif not small:
        patch[_outline(body)] = dark
    rows = np.flatnonzero(body.any(axis=1))
    cols = np.flatnonzero(body.any(axis=0))
    return (x + int(cols[0]), y + int(rows[0]), x + int(cols[-1]) + 1, y + int(rows[-1]) + 1)
