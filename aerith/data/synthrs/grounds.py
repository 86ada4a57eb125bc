"""Land cover of each SynthRS scene class: texture, layout and the regions objects may occupy.

A painter draws the background of one class in a canonical orientation (the
scene is rotated and flipped afterwards) and returns a :class:`Ground`:
the image, the regions where each kind of object may be placed, the
land-cover features it contains (with the masks used to decide the relations
``in``, ``on``, ``along`` and ``surrounded by``), and, for parking lots, the
stall positions. Each class has its own palette and texture so that the class
is visible from texture and layout alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from aerith.data.synthrs.render import Array, coords, paint, smooth_noise, textured, wavy_band


@dataclass
class Ground:
    """A painted background and what objects may do on it.

    Attributes:
        image: ``(S, S, 3)`` float32 image.
        regions: placement regions by name (boolean ``(S, S)`` masks).
        features: land-cover features present, with attributes text may state ("river": ("curved",)).
        masks: the mask of each feature, for relations.
        anchors: named lists of fixed object centres ``(x, y)`` in pixels (parking stalls).
    """

    image: Array
    regions: dict[str, Array]
    features: dict[str, tuple[str, ...]]
    masks: dict[str, Array]
    anchors: dict[str, list[tuple[int, int]]] = field(default_factory=dict)


Painter = Callable[[int, np.random.Generator], Ground]

ASPHALT = (88, 88, 94)


def _straight_road(size: int, rng: np.random.Generator, width: float, lo: float = 0.25, hi: float = 0.75) -> Array:
    yy, _ = coords(size)
    return np.abs(yy - rng.uniform(lo, hi)) <= width / 2


def _draw_road(img: Array, road: Array, size: int, rng: np.random.Generator, rgb=ASPHALT) -> None:
    paint(img, road, textured(size, rgb, rng, blotch=3, grain=3))


def farmland(size: int, rng: np.random.Generator) -> Ground:
    """Rectangular parcels of green, yellow or brown crops with row stripes, hedges, sometimes a road."""
    palette = {"green": (92, 160, 60), "yellow": (206, 186, 92), "brown": (152, 110, 70)}
    yy, xx = coords(size)
    img = np.zeros((size, size, 3), np.float32)
    n_cols, n_rows = rng.integers(2, 4, size=2)
    xs = np.linspace(0, 1, n_cols + 1)
    ys = np.linspace(0, 1, n_rows + 1)
    xs[1:-1] += rng.uniform(-0.07, 0.07, n_cols - 1)
    ys[1:-1] += rng.uniform(-0.07, 0.07, n_rows - 1)
    names = list(palette)
    used: set[str] = set()
    for r in range(n_rows):
        for c in range(n_cols):
            cell = (xx >= xs[c]) & (xx < xs[c + 1]) & (yy >= ys[r]) & (yy < ys[r + 1])
            name = names[int(rng.integers(len(names)))]
            used.add(name)
            period = rng.uniform(0.035, 0.06)
            along = yy if rng.random() < 0.5 else xx
            stripes = 9.0 * np.sin(2 * np.pi * along / period)
            layer = textured(size, palette[name], rng, blotch=5, grain=4) + stripes[:, :, None]
            paint(img, cell, layer)
    hedge = np.zeros((size, size), bool)
    for x in xs[1:-1]:
        hedge[:, min(size - 1, int(x * size))] = True
    for y in ys[1:-1]:
        hedge[min(size - 1, int(y * size)), :] = True
    paint(img, hedge, (60, 88, 42))
    features: dict[str, tuple[str, ...]] = {"farmland": tuple(sorted(used))}
    masks: dict[str, Array] = {}
    road = np.zeros((size, size), bool)
    if rng.random() < 0.6:
        road = _straight_road(size, rng, 0.08)
        _draw_road(img, road, size, rng)
        features["road"] = ()
        masks["road"] = road
    return Ground(img, {"land": ~road, "road": road}, features, masks)


def forest(size: int, rng: np.random.Generator) -> Ground:
    """Dense dark canopy with one or two meadow clearings, sometimes a dirt road."""
    img = textured(size, (34, 84, 38), rng, blotch=10, grain=5)
    img += 14.0 * smooth_noise(size, max(4, size // 5), rng)[:, :, None]
    yy, xx = coords(size)
    clearing = np.zeros((size, size), bool)
    centres = [(0.3, 0.3), (0.7, 0.7)] if rng.random() < 0.5 else [(0.3, 0.7), (0.7, 0.3)]
    for cy, cx in centres[: int(rng.integers(1, 3))]:
        cy, cx = cy + rng.uniform(-0.06, 0.06), cx + rng.uniform(-0.06, 0.06)
        ry, rx = rng.uniform(0.12, 0.16, 2)
        clearing |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    paint(img, clearing, textured(size, (150, 162, 96), rng, blotch=6, grain=4))
    road = np.zeros((size, size), bool)
    features: dict[str, tuple[str, ...]] = {"forest": ("dense",)}
    masks: dict[str, Array] = {}
    if rng.random() < 0.5:
        road = np.abs(yy - 0.5 - rng.uniform(-0.05, 0.05)) <= 0.03
        _draw_road(img, road, size, rng, rgb=(158, 132, 92))
        features["road"] = ()
        masks["road"] = road
    canopy = ~clearing & ~road
    masks["forest"] = canopy
    return Ground(img, {"clearing": clearing & ~road, "road": road}, features, masks)


def dense_residential(size: int, rng: np.random.Generator) -> Ground:
    """Light paved blocks cut by a regular grid of streets."""
    img = textured(size, (180, 174, 162), rng, blotch=6, grain=5)
    yy, xx = coords(size)
    road = np.zeros((size, size), bool)
    for axis in (yy, xx):
        n = int(rng.integers(2, 4))
        for pos in np.linspace(0, 1, n + 2)[1:-1] + rng.uniform(-0.04, 0.04, n):
            road |= np.abs(axis - pos) <= 0.035
    _draw_road(img, road, size, rng)
    return Ground(img, {"land": ~road, "road": road}, {"residential area": ("dense",), "road": ()}, {"road": road})


def industrial(size: int, rng: np.random.Generator) -> Ground:
    """Concrete of slightly different slabs, often crossed by a road."""
    img = textured(size, (152, 152, 148), rng, blotch=4, grain=4)
    yy, xx = coords(size)
    for _ in range(int(rng.integers(3, 7))):
        x0, y0 = rng.uniform(0, 0.8, 2)
        w, h = rng.uniform(0.15, 0.4, 2)
        slab = (xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h)
        img[slab] += rng.uniform(-14, 14)
    features: dict[str, tuple[str, ...]] = {"industrial area": ()}
    masks: dict[str, Array] = {}
    road = np.zeros((size, size), bool)
    if rng.random() < 0.7:
        road = _straight_road(size, rng, 0.08, 0.3, 0.7)
        _draw_road(img, road, size, rng, rgb=(80, 80, 86))
        features["road"] = ()
        masks["road"] = road
    return Ground(img, {"land": ~road, "road": road}, features, masks)


def harbor(size: int, rng: np.random.Generator) -> Ground:
    """Deep blue water along one side, a concrete quay with piers reaching into the water."""
    yy, xx = coords(size)
    level = rng.uniform(0.4, 0.52)
    water = yy < level
    img = textured(size, (166, 160, 150), rng, blotch=4, grain=4)
    paint(img, water, textured(size, (26, 58, 108), rng, blotch=4, grain=3))
    pier = np.zeros((size, size), bool)
    for x in rng.choice([0.2, 0.5, 0.8], size=int(rng.integers(1, 3)), replace=False):
        x += rng.uniform(-0.05, 0.05)
        pier |= (np.abs(xx - x) <= 0.03) & (yy >= level - rng.uniform(0.15, 0.25)) & water
    paint(img, pier, (176, 172, 164))
    water &= ~pier
    quay = np.abs(yy - level) <= 0.5 / size + 1e-6
    paint(img, quay, (205, 200, 190))
    return Ground(img, {"water": water, "land": ~water & ~pier}, {"water": ("blue",)}, {"water": water})


def airport(size: int, rng: np.random.Generator) -> Ground:
    """Grass with a long dark runway, a taxiway and a pale apron."""
    yy, xx = coords(size)
    img = textured(size, (118, 150, 80), rng, blotch=8, grain=5)
    top = rng.random() < 0.5
    y_run = rng.uniform(0.14, 0.2) if top else rng.uniform(0.8, 0.86)
    runway = np.abs(yy - y_run) <= 0.05
    paint(img, runway, textured(size, (68, 68, 74), rng, blotch=2, grain=3))
    dashes = (np.abs(yy - y_run) <= 0.5 / size + 1e-6) & (np.mod(xx, 0.1) < 0.05)
    paint(img, dashes, (205, 205, 200))
    x0, x1 = rng.uniform(0.05, 0.15), rng.uniform(0.85, 0.95)
    if top:
        a0, a1 = y_run + 0.16, y_run + 0.16 + rng.uniform(0.34, 0.42)
        taxi = (yy > y_run) & (yy < a0)
    else:
        a1, a0 = y_run - 0.16, y_run - 0.16 - rng.uniform(0.34, 0.42)
        taxi = (yy > a1) & (yy < y_run)
    x_taxi = rng.uniform(0.3, 0.7)
    taxi &= np.abs(xx - x_taxi) <= 0.025
    apron = (yy >= a0) & (yy < a1) & (xx >= x0) & (xx < x1)
    paint(img, taxi, (68, 68, 74))
    paint(img, apron, textured(size, (170, 170, 166), rng, blotch=3, grain=3))
    grass = ~runway & ~apron & ~taxi
    return Ground(
        img,
        {"apron": apron, "runway": runway, "land": grass},
        {"runway": ("long",), "apron": ()},
        {"runway": runway, "apron": apron},
    )


def river(size: int, rng: np.random.Generator) -> Ground:
    """Mottled green land crossed by a curved blue river with sandy banks."""
    img = textured(size, (104, 138, 70), rng, blotch=12, grain=6, cells=8)
    centre, width = rng.uniform(0.4, 0.6), rng.uniform(0.14, 0.19)
    wave = (rng.uniform(0.04, 0.09), rng.uniform(0.9, 1.5), rng.uniform(0, 2 * np.pi))
    water = wavy_band(size, centre, width, *wave)
    banks = wavy_band(size, centre, width + 0.03, *wave)
    near = wavy_band(size, centre, width + 0.34, *wave)
    paint(img, banks, (182, 166, 122))
    paint(img, water, textured(size, (46, 90, 142), rng, blotch=3, grain=3))
    land = ~banks
    return Ground(
        img,
        {"river": water, "riverside": near & land, "land": land},
        {"river": ("curved",)},
        {"river": water},
    )


def beach(size: int, rng: np.random.Generator) -> Ground:
    """Sea, a wave line, a band of pale sand, and vegetated land behind it."""
    yy, xx = coords(size)
    level, amplitude = rng.uniform(0.3, 0.4), rng.uniform(0.015, 0.035)
    coast = level + amplitude * np.sin(2 * np.pi * xx / rng.uniform(0.7, 1.2) + rng.uniform(0, 6.3))
    inland = coast + rng.uniform(0.18, 0.24)
    sea = yy < coast
    sand = (yy >= coast) & (yy < inland)
    img = textured(size, (90, 140, 72), rng, blotch=10, grain=5)
    paint(img, sand, textured(size, (228, 208, 162), rng, blotch=4, grain=4))
    depth = (40.0 * (yy / np.maximum(coast, 1e-3)))[:, :, None]
    paint(img, sea, textured(size, (22, 82, 140), rng, blotch=3, grain=3) + depth)
    surf = sea & (yy >= coast - 1.5 / size)
    paint(img, surf, (226, 234, 238))
    water = sea & (yy < coast - 2.5 / size)
    return Ground(
        img,
        {"sea": water, "sand": sand, "land": ~sea & ~sand},
        {"sea": ("blue",), "beach": ()},
        {"sea": sea},
    )


def desert(size: int, rng: np.random.Generator) -> Ground:
    """Ochre sand in parallel dune ripples, sometimes crossed by a road."""
    yy, xx = coords(size)
    theta = rng.uniform(0, np.pi)
    period = rng.uniform(0.1, 0.16)
    phase = 2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period + 1.5 * smooth_noise(size, 3, rng)
    img = textured(size, (214, 176, 120), rng, blotch=5, grain=4) + (16.0 * np.sin(phase))[:, :, None]
    features: dict[str, tuple[str, ...]] = {"desert": ()}
    masks: dict[str, Array] = {}
    road = np.zeros((size, size), bool)
    if rng.random() < 0.4:
        road = _straight_road(size, rng, 0.07)
        _draw_road(img, road, size, rng, rgb=(96, 90, 84))
        features["road"] = ()
        masks["road"] = road
    return Ground(img, {"land": ~road, "road": road}, features, masks)


def parking_lot(size: int, rng: np.random.Generator) -> Ground:
    """A dark asphalt lot with two rows of white-lined stalls, framed by grass."""
    yy, xx = coords(size)
    img = textured(size, (100, 142, 72), rng, blotch=8, grain=5)
    m = rng.uniform(0.12, 0.16, 4)  # left, top, right, bottom margins
    lot = (xx >= m[0]) & (xx < 1 - m[2]) & (yy >= m[1]) & (yy < 1 - m[3])
    paint(img, lot, textured(size, (70, 70, 76), rng, blotch=3, grain=3))
    stall_w, stall_l = 0.09, 0.15
    left, right = m[0] + 0.02, 1 - m[2] - 0.02
    n = int((right - left) / stall_w)
    left += (right - left - n * stall_w) / 2
    height = 1 - m[1] - m[3]
    anchors: list[tuple[int, int]] = []
    lines = np.zeros((size, size), bool)
    for row_y in (m[1] + 0.03 + stall_l / 2, m[1] + height - 0.03 - stall_l / 2):
        for k in range(n + 1):
            x = left + k * stall_w
            lines |= (np.abs(xx - x) <= 0.5 / size + 1e-6) & (np.abs(yy - row_y) <= stall_l / 2)
            if k < n:
                anchors.append((int((x + stall_w / 2) * size), int(row_y * size)))
    paint(img, lines, (215, 215, 210))
    return Ground(img, {"lot": lot, "land": ~lot}, {"parking lot": ()}, {"parking lot": lot}, {"stalls": anchors})
