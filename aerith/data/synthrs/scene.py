"""The ground truth of a SynthRS scene: its vocabulary, objects, relations and scene graph.

Everything SynthRS writes (class label, captions, questions, referring
expressions) is derived from a :class:`SceneGraph`, so what the text says can
always be checked against it. Boxes are integer pixels ``(x1, y1, x2, y2)``
with exclusive ends: pixel ``i`` covers ``[i, i + 1)``, so a box's width is
``x2 - x1`` pixels.

The vocabulary is small on purpose (it helps a tiny tokenizer) and uses the
canonical names of :mod:`aerith.eval.scene_graph`, so that its rule parser
reads SynthRS captions back into the same tuples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

PixelBox = tuple[int, int, int, int]
Node = int | str  # an object id, or the name of a land-cover feature ("road", "river" ...)

# Colour names and the flat RGB an object of that colour is painted with.
COLOURS: Mapping[str, tuple[int, int, int]] = MappingProxyType(
    {
        "white": (240, 240, 234),
        "gray": (128, 128, 132),
        "black": (30, 30, 34),
        "red": (210, 40, 36),
        "blue": (40, 80, 215),
        "yellow": (245, 210, 30),
        "green": (26, 102, 36),
        "brown": (125, 75, 35),
        "orange": (250, 135, 25),
    }
)

SIZE_WORDS: tuple[str, ...] = ("small", "large")
SIZE_FACTORS: Mapping[str, float] = MappingProxyType({"small": 0.8, "large": 1.25})


@dataclass(frozen=True)
class Category:
    """An object category: how it is named, coloured and sized.

    Attributes:
        name: canonical name (singular), as :mod:`aerith.eval.scene_graph` spells it.
        plural: plural form used in text.
        colours: the colours an object of this category may have.
        length: long side as a fraction of the image side, before the size factor.
        width: short side as a fraction of the image side.
    """

    name: str
    plural: str
    colours: tuple[str, ...]
    length: float
    width: float


CATEGORIES: Mapping[str, Category] = MappingProxyType(
    {
        c.name: c
        for c in (
            Category("building", "buildings", ("red", "white", "gray", "blue", "brown"), 0.15, 0.11),
            Category("storage tank", "storage tanks", ("white", "gray", "red"), 0.11, 0.11),
            Category("airplane", "airplanes", ("white", "gray", "blue"), 0.21, 0.19),
            Category("ship", "ships", ("white", "red", "gray", "yellow", "black"), 0.17, 0.07),
            Category("vehicle", "vehicles", ("white", "red", "blue", "black", "yellow"), 0.09, 0.055),
            Category("tree", "trees", ("green",), 0.11, 0.11),
            Category("tennis court", "tennis courts", ("green", "blue", "red"), 0.18, 0.10),
        )
    }
)

# Pairwise relations between objects, and object-to-feature relations.
OBJECT_RELATIONS: tuple[str, ...] = ("next to", "left of")
FEATURE_RELATIONS: tuple[str, ...] = ("in", "on", "along", "surrounded by")
RELATIONS: tuple[str, ...] = OBJECT_RELATIONS + FEATURE_RELATIONS
# Land-cover features objects relate to, and how: "in" the water, "on" the road, "along" the river ...
FEATURE_PREDICATES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "water": ("in",),
        "sea": ("in",),
        "parking lot": ("in",),
        "river": ("in", "along"),
        "road": ("on", "along"),
        "runway": ("on", "along"),
        "apron": ("on",),
        "forest": ("surrounded by",),
    }
)

# 3 x 3 grid of image regions, by row then column, named as text uses them.
REGIONS: tuple[str, ...] = (
    "top left", "top", "top right",
    "left", "center", "right",
    "bottom left", "bottom", "bottom right",
)  # fmt: skip


def region_of(box: PixelBox, size: int) -> str:
    """The 3 x 3 region holding the centre of ``box`` in a ``size`` x ``size`` image."""
    cx = (box[0] + box[2]) / 2
    cy = (box[1] + box[3]) / 2
    col = min(2, int(3 * cx / size))
    row = min(2, int(3 * cy / size))
    return REGIONS[3 * row + col]


@dataclass(frozen=True)
class SceneObject:
    """One object of a scene.

    Attributes:
        id: index in the scene's object list.
        category: a key of :data:`CATEGORIES`.
        colour: a key of :data:`COLOURS`.
        size: ``"small"`` or ``"large"`` (the size class it was drawn with).
        box: pixel box, exclusive ends.
    """

    id: int
    category: str
    colour: str
    size: str
    box: PixelBox

    def to_dict(self, image_size: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "category": self.category,
            "colour": self.colour,
            "size": self.size,
            "box": list(self.box),
            "region": region_of(self.box, image_size),
        }


@dataclass(frozen=True)
class Relation:
    """``subject predicate object``; ``object`` is an object id or a feature name.

    ``next to`` is symmetric and stored once with the smaller id first; ``left of``
    is stored as such (its inverse reads "right of" in text).
    """

    subject: int
    predicate: str
    object: Node

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "predicate": self.predicate, "object": self.object}


@dataclass(frozen=True)
class SceneGraph:
    """The ground truth of one image.

    Attributes:
        id: scene id (its index in the generated set).
        scene_class: the scene class (a key of ``layout.SCENE_CLASSES``).
        noun: how text names the scene ("dense residential area").
        rural_urban: ``"rural"`` or ``"urban"``.
        size: image side in pixels.
        features: land-cover features present (``"road"``, ``"river"`` ...) with their attributes.
        objects: the objects, ``objects[i].id == i``.
        relations: relations between objects and to features.
        askable: categories that questions may ask about (trees are not asked about in a forest).
    """

    id: int
    scene_class: str
    noun: str
    rural_urban: str
    size: int
    features: Mapping[str, tuple[str, ...]]
    objects: tuple[SceneObject, ...]
    relations: tuple[Relation, ...]
    askable: tuple[str, ...] = field(default_factory=tuple)

    def count(self, category: str, colour: str | None = None) -> int:
        """Number of objects of ``category`` (and ``colour`` when given)."""
        return sum(1 for o in self.objects if o.category == category and (colour is None or o.colour == colour))

    def related(self, subject: int, predicate: str, other: Node) -> bool:
        """Whether ``subject predicate other`` holds (``right of`` reads ``left of`` backwards)."""
        if predicate == "right of":
            return isinstance(other, int) and Relation(other, "left of", subject) in self.relations
        if predicate == "next to" and isinstance(other, int):
            a, b = sorted((subject, other))
            return Relation(a, "next to", b) in self.relations
        return Relation(subject, predicate, other) in self.relations

    def region(self, obj: SceneObject) -> str:
        return region_of(obj.box, self.size)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "class": self.scene_class,
            "noun": self.noun,
            "rural_urban": self.rural_urban,
            "size": self.size,
            "features": {k: list(v) for k, v in self.features.items()},
            "objects": [o.to_dict(self.size) for o in self.objects],
            "relations": [r.to_dict() for r in self.relations],
            "askable": list(self.askable),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SceneGraph:
        """Rebuild a graph from :meth:`to_dict` output (as read from ``scene_graphs.json``)."""
        return cls(
            id=int(data["id"]),
            scene_class=str(data["class"]),
            noun=str(data["noun"]),
            rural_urban=str(data["rural_urban"]),
            size=int(data["size"]),
            features={k: tuple(v) for k, v in data["features"].items()},
            objects=tuple(
                SceneObject(int(o["id"]), o["category"], o["colour"], o["size"], tuple(int(v) for v in o["box"]))
                for o in data["objects"]
            ),
            relations=tuple(Relation(int(r["subject"]), r["predicate"], r["object"]) for r in data["relations"]),
            askable=tuple(data.get("askable", ())),
        )
