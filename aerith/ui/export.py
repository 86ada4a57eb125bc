"""The page's downloads: the conversation's answers as JSON, and their boxes as GeoJSON for a georeferenced scene.

Both are written atomically (a temporary file renamed into place). The GeoJSON follows
``aerith scan``: each box's four pixel corners go through the raster's affine transform
(so a rotated raster is right too), are reprojected to WGS84 longitude/latitude with pyproj
and written as RFC 7946 polygons (:mod:`aerith.geo.outputs`); it needs the ``geo`` extra.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aerith.atomic import atomic_write_text
from aerith.ui.conversation import Turn
from aerith.ui.scene import Scene

FORMAT_VERSION = 1


def answers_document(model: Mapping[str, Any], scene: Scene, turns: Sequence[Turn]) -> dict[str, Any]:
    """The JSON download: the model (and whether its weights are random), the scene, every turn."""
    return {
        "aerith_ui": FORMAT_VERSION,
        "model": dict(model),
        "scene": scene.describe(),
        "box_format": "boxes_grid: [x1, y1, x2, y2] on the 0-1000 grid; boxes_pixel: the same in the scene's pixels",
        "turns": [{"turn": i + 1, **t.to_dict()} for i, t in enumerate(turns)],
    }


def write_answers(path: Path, model: Mapping[str, Any], scene: Scene, turns: Sequence[Turn]) -> Path:
    """Write :func:`answers_document` to ``path``."""
    doc = answers_document(model, scene, turns)
    return atomic_write_text(path, json.dumps(doc, ensure_ascii=False, indent=2) + "\n")


def write_boxes_geojson(path: Path, scene: Scene, turns: Sequence[Turn], model: Mapping[str, Any] | None = None) -> Path:
    """Every box of every turn as a WGS84 polygon (properties: turn, task, label, answer, pixel and grid box,
    and with ``model`` the model's name and whether its weights are random, so that a layer opened
    alone in a GIS still says where its boxes came from).

    Raises:
        ValueError: the scene is not georeferenced.
        ImportError: the geo extra (shapely, pyproj) is missing.
    """
    if scene.georef is None:
        raise ValueError(f"{scene.name} is not georeferenced: no GeoJSON")
    from aerith.geo.outputs import pixel_polygons, to_wgs84, write_geojson

    boxes, columns = [], {"turn": [], "task": [], "label": [], "answer": [], "box_pixel": [], "box_grid": []}
    for i, t in enumerate(turns):
        for pixel, grid in zip(t.boxes_pixel, t.boxes_grid):
            boxes.append(pixel)
            columns["turn"].append(i + 1)
            columns["task"].append(t.task)
            columns["label"].append(t.text or t.task)
            columns["answer"].append(t.answer)
            columns["box_pixel"].append(list(pixel))
            columns["box_grid"].append(list(grid))
            if model is not None:
                columns.setdefault("model", []).append(model.get("name"))
                columns.setdefault("random_weights", []).append(bool(model.get("random_weights")))
    polygons = to_wgs84(pixel_polygons(boxes, scene.georef.transform), scene.georef.crs) if boxes else []
    return write_geojson(path, polygons, columns)


__all__ = ["FORMAT_VERSION", "answers_document", "write_answers", "write_boxes_geojson"]
