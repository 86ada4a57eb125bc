"""Scene classes, their layout rules, and the making of one scene with its ground-truth graph.

A scene is made in five steps, all driven by one ``numpy.random.Generator``:

1. the class's painter draws the land cover in a canonical orientation
   (:mod:`aerith.data.synthrs.grounds`);
2. each object rule draws a count and places that many objects in its region
   (rejection sampling: the box must lie inside the region, keep a gap to the
   other objects, and the object gets one of its category's colours that
   contrasts with the ground under it; an object that cannot be placed is not
   drawn and so is not in the graph);
3. relations to land-cover features (``in``, ``on``, ``along``,
   ``surrounded by``) are read from the feature masks;
4. the image and boxes are rotated by a multiple of 90 degrees and maybe
   mirrored, so layouts come in every orientation;
5. relations between objects (``next to``, ``left of``) are read from the
   final boxes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from aerith.data.synthrs import grounds
from aerith.data.synthrs.grounds import Ground, Painter
from aerith.data.synthrs.render import Array, draw_object, to_uint8
from aerith.data.synthrs.scene import (
    CATEGORIES,
    COLOURS,
    FEATURE_PREDICATES,
    SIZE_FACTORS,
    SIZE_WORDS,
    PixelBox,
    Relation,
    SceneGraph,
    SceneObject,
)

MIN_CONTRAST = 70.0  # RGB distance between an object's colour and the mean ground under it
MAX_TRIES = 40


@dataclass(frozen=True)
class ObjectRule:
    """How many objects of a category a class holds, and where.

    Attributes:
        category: a key of :data:`~aerith.data.synthrs.scene.CATEGORIES`.
        low, high: the count is drawn uniformly from ``low..high``.
        region: a region of the class's :class:`~aerith.data.synthrs.grounds.Ground`,
            or ``"anchor:<name>"`` to centre objects on its fixed anchors.
        orient: ``"any"``, or ``"h"`` / ``"v"`` for the long side along x / y of the canonical layout.
    """

    category: str
    low: int
    high: int
    region: str
    orient: str = "any"


@dataclass(frozen=True)
class SceneClass:
    """A scene class: its names, its land cover and its object rules.

    Attributes:
        name: the class label.
        folder: the UCM-style class folder (lower case, glued).
        noun: how captions name the scene.
        rural_urban: the RSVQA rural/urban answer.
        painter: draws the land cover.
        rules: the object rules.
        min_objects: counts are redrawn until they reach this total.
        not_askable: categories questions never ask about here (trees in a forest).
    """

    name: str
    folder: str
    noun: str
    rural_urban: str
    painter: Painter
    rules: tuple[ObjectRule, ...]
    min_objects: int = 2
    not_askable: tuple[str, ...] = ()


R = ObjectRule
SCENE_CLASSES: Mapping[str, SceneClass] = MappingProxyType(
    {
        c.name: c
        for c in (
            SceneClass("farmland", "farmland", "farmland", "rural", grounds.farmland,
                       (R("building", 1, 3, "land"), R("tree", 0, 4, "land"), R("vehicle", 0, 2, "road"))),
            SceneClass("forest", "forest", "forest", "rural", grounds.forest,
                       (R("building", 1, 2, "clearing"), R("vehicle", 0, 2, "road")), min_objects=1,
                       not_askable=("tree",)),
            SceneClass("dense residential", "denseresidential", "dense residential area", "urban",
                       grounds.dense_residential,
                       (R("building", 4, 8, "land"), R("tree", 0, 3, "land"), R("vehicle", 0, 3, "road"),
                        R("tennis court", 0, 2, "land"))),
            SceneClass("industrial", "industrial", "industrial area", "urban", grounds.industrial,
                       (R("building", 1, 4, "land"), R("storage tank", 2, 6, "land"), R("vehicle", 0, 3, "road"))),
            SceneClass("harbor", "harbor", "harbor", "urban", grounds.harbor,
                       (R("ship", 2, 6, "water"), R("storage tank", 0, 3, "land"), R("building", 0, 2, "land"),
                        R("vehicle", 0, 2, "land"))),
            SceneClass("airport", "airport", "airport", "urban", grounds.airport,
                       (R("airplane", 1, 5, "apron"), R("airplane", 0, 1, "runway", "h"), R("building", 1, 2, "land"),
                        R("vehicle", 0, 3, "apron"))),
            SceneClass("river", "river", "river", "rural", grounds.river,
                       (R("tree", 1, 5, "riverside"), R("building", 0, 3, "land"), R("ship", 0, 2, "river", "h"))),
            SceneClass("beach", "beach", "beach", "rural", grounds.beach,
                       (R("ship", 0, 3, "sea"), R("building", 0, 3, "land"), R("tree", 0, 4, "land"))),
            SceneClass("desert", "desert", "desert", "rural", grounds.desert,
                       (R("vehicle", 0, 2, "road"), R("vehicle", 0, 2, "land"), R("building", 0, 2, "land"),
                        R("storage tank", 0, 2, "land"))),
            SceneClass("parking lot", "parkinglot", "parking lot", "urban", grounds.parking_lot,
                       (R("vehicle", 3, 8, "anchor:stalls", "v"), R("tree", 0, 4, "land"))),
        )
    }
)  # fmt: skip
CLASS_NAMES: tuple[str, ...] = tuple(SCENE_CLASSES)


@dataclass(frozen=True)
class _Placed:
    category: str
    colour: str
    size: str
    box: PixelBox


def _counts(spec: SceneClass, ground: Ground, rng: np.random.Generator) -> list[int]:
    usable = [
        (rule.region.startswith("anchor:") and bool(ground.anchors.get(rule.region[7:])))
        or bool(ground.regions.get(rule.region, np.zeros(1, bool)).any())
        for rule in spec.rules
    ]
    counts = [0] * len(spec.rules)
    for _ in range(20):
        counts = [int(rng.integers(r.low, r.high + 1)) if ok else 0 for r, ok in zip(spec.rules, usable, strict=True)]
        if sum(counts) >= spec.min_objects:
            break
    return counts


def _free(box: tuple[int, int, int, int], occupied: list[PixelBox]) -> bool:
    if not occupied:
        return True
    occ = np.asarray(occupied)
    hit = (occ[:, 0] < box[2]) & (occ[:, 2] > box[0]) & (occ[:, 1] < box[3]) & (occ[:, 3] > box[1])
    return not hit.any()


def _colour(img: Array, box: tuple[int, int, int, int], options: tuple[str, ...], rng: np.random.Generator) -> str | None:
    x0, y0, x1, y1 = box
    ground = img[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
    for k in rng.permutation(len(options)):
        if np.linalg.norm(np.asarray(COLOURS[options[k]], np.float32) - ground) >= MIN_CONTRAST:
            return options[k]
    return None


def _place(
    rule: ObjectRule, n: int, ground: Ground, occupied: list[PixelBox], size: int, rng: np.random.Generator
) -> list[_Placed]:
    """Place up to ``n`` objects of ``rule`` on ``ground.image`` (in place); returns those placed."""
    cat = CATEGORIES[rule.category]
    gap = max(1, round(0.015 * size))
    anchors: list[tuple[int, int]] = []
    if rule.region.startswith("anchor:"):
        pool = ground.anchors[rule.region[7:]]
        anchors = [pool[i] for i in rng.permutation(len(pool))]
        mask = None
        cells = np.zeros(0, np.int64)
    else:
        mask = ground.regions[rule.region]
        cells = np.flatnonzero(mask)
        if cells.size == 0:
            return []
    placed: list[_Placed] = []
    for _ in range(n):
        word = SIZE_WORDS[int(rng.integers(len(SIZE_WORDS)))]
        factor = SIZE_FACTORS[word] * rng.uniform(0.93, 1.07)
        length = max(3, round(cat.length * factor * size))
        width = length if cat.width == cat.length else max(2, round(cat.width * factor * size))
        for _ in range(MAX_TRIES):
            vertical = rule.orient == "v" or (rule.orient == "any" and rng.random() < 0.5)
            w, h = (width, length) if vertical else (length, width)
            if mask is None:
                if not anchors:
                    break  # every anchor is taken
                cx, cy = anchors.pop()
            else:
                cy, cx = divmod(int(cells[rng.integers(cells.size)]), size)
            x0, y0 = cx - w // 2, cy - h // 2
            if x0 < 1 or y0 < 1 or x0 + w > size - 1 or y0 + h > size - 1:
                continue
            if mask is not None and not mask[y0 : y0 + h, x0 : x0 + w].all():
                continue
            if not _free((x0 - gap, y0 - gap, x0 + w + gap, y0 + h + gap), occupied):
                continue
            colour = _colour(ground.image, (x0, y0, x0 + w, y0 + h), cat.colours, rng)
            if colour is None:
                continue
            box = draw_object(ground.image, cat.name, colour, (x0, y0), length, width, vertical, rng)
            occupied.append(box)
            placed.append(_Placed(cat.name, colour, word, box))
            break
    return placed


def _surrounded(mask: Array, box: PixelBox, size: int) -> bool:
    """Whether ``mask`` covers 30% or more of each of the four strips leading away from ``box``.

    The strips reach a quarter of the image, beyond the clearing a building stands in.
    """
    x1, y1, x2, y2 = box
    reach = max(4, round(0.25 * size))
    sides = (  # each with the distance from the box along axis 1
        mask[y1:y2, max(0, x1 - reach) : x1],
        mask[y1:y2, x2 : x2 + reach],
        mask[max(0, y1 - reach) : y1, x1:x2].T,
        mask[y2 : y2 + reach, x1:x2].T,
    )
    return all(2 * side.shape[1] >= reach and side.mean() >= 0.3 for side in sides)


def _feature_relations(placed: list[_Placed], ground: Ground, size: int) -> list[Relation]:
    near = max(2, round(0.04 * size))
    out = []
    for i, obj in enumerate(placed):
        x1, y1, x2, y2 = obj.box
        for name in sorted(ground.masks):
            mask, predicates = ground.masks[name], FEATURE_PREDICATES[name]
            cover = float(mask[y1:y2, x1:x2].mean())
            if "surrounded by" in predicates:
                if _surrounded(mask, obj.box, size):
                    out.append(Relation(i, "surrounded by", name))
            elif cover >= 0.9 and ("in" in predicates or "on" in predicates):
                out.append(Relation(i, "in" if "in" in predicates else "on", name))
            elif cover == 0.0 and "along" in predicates:
                if mask[max(0, y1 - near) : y2 + near, max(0, x1 - near) : x2 + near].any():
                    out.append(Relation(i, "along", name))
    return out


def _transform(box: PixelBox, size: int, turns: int, mirror: bool) -> PixelBox:
    """The box after ``np.rot90(image, turns)`` and then, if ``mirror``, a left-right flip."""
    x1, y1, x2, y2 = box
    for _ in range(turns):
        x1, y1, x2, y2 = y1, size - x2, y2, size - x1
    if mirror:
        x1, x2 = size - x2, size - x1
    return (x1, y1, x2, y2)


def _pair_relations(boxes: list[PixelBox], size: int) -> list[Relation]:
    close = max(2, round(0.05 * size))
    far = 0.4 * size
    out = []
    for i, a in enumerate(boxes):
        for j, b in enumerate(boxes):
            if i == j:
                continue
            gap_x = max(b[0] - a[2], a[0] - b[2], 0)
            gap_y = max(b[1] - a[3], a[1] - b[3], 0)
            if i < j and max(gap_x, gap_y) <= close:
                out.append(Relation(i, "next to", j))
            overlap_y = min(a[3], b[3]) - max(a[1], b[1])
            if a[2] <= b[0] and b[0] - a[2] <= far and overlap_y >= 0.5 * min(a[3] - a[1], b[3] - b[1]):
                out.append(Relation(i, "left of", j))
    return out


def make_scene(scene_id: int, scene_class: str, size: int, rng: np.random.Generator) -> tuple[np.ndarray, SceneGraph]:
    """Paint one scene and build its graph.

    Args:
        scene_id: the id stored in the graph.
        scene_class: a key of :data:`SCENE_CLASSES`.
        size: image side in pixels.
        rng: the scene's own generator.

    Returns:
        ``(image, graph)``: a ``(size, size, 3)`` ``uint8`` array and its :class:`SceneGraph`.
    """
    spec = SCENE_CLASSES[scene_class]
    ground = spec.painter(size, rng)
    placed: list[_Placed] = []
    occupied: list[PixelBox] = []
    for rule, n in zip(spec.rules, _counts(spec, ground, rng), strict=True):
        if n:
            placed += _place(rule, n, ground, occupied, size, rng)
    feature_rel = _feature_relations(placed, ground, size)
    turns, mirror = int(rng.integers(4)), bool(rng.random() < 0.5)
    image = np.rot90(to_uint8(ground.image), turns)
    if mirror:
        image = image[:, ::-1]
    boxes = [_transform(p.box, size, turns, mirror) for p in placed]
    objects = tuple(SceneObject(i, p.category, p.colour, p.size, boxes[i]) for i, p in enumerate(placed))
    relations = tuple(
        sorted(feature_rel + _pair_relations(boxes, size), key=lambda r: (r.subject, r.predicate, str(r.object)))
    )
    graph = SceneGraph(
        id=scene_id,
        scene_class=spec.name,
        noun=spec.noun,
        rural_urban=spec.rural_urban,
        size=size,
        features=dict(sorted(ground.features.items())),
        objects=objects,
        relations=relations,
        askable=tuple(c for c in CATEGORIES if c not in spec.not_askable),
    )
    return np.ascontiguousarray(image), graph
