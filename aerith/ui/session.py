"""What one browser session holds: the scene, the conversation, the region being drawn, the downloads.

Plain Python (no Gradio), so the page's logic is tested without a browser; the page keeps
one :class:`Session` per visitor in a ``gr.State``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from aerith.boxes import GRID
from aerith.ui.conversation import Turn, region_text
from aerith.ui.draw import LabelledBox, annotate, turn_colour
from aerith.ui.export import write_answers, write_boxes_geojson
from aerith.ui.scene import Scene


class RegionError(ValueError):
    """A region that cannot be used (the two corners on one line)."""


def grid_point(x: float, y: float, size: tuple[int, int]) -> tuple[int, int]:
    """A pixel of an image of ``size`` (width, height) -> the 0-1000 grid, clamped."""
    w, h = size
    return min(GRID, max(0, round(x * GRID / w))), min(GRID, max(0, round(y * GRID / h)))


@dataclass
class Session:
    """One visitor's page state.

    Attributes:
        scene: the uploaded scene, ``None`` before an upload.
        base: the scene at display size (what the page shows under the drawings).
        turns: the answered turns, oldest first.
        corner: the first corner of a region being drawn (grid), until the second click.
        region: the last region drawn (grid ``[x1, y1, x2, y2]``).
        id: names this session's download files.
        epoch: counts the times the conversation started over (a new scene or bands, Clear): an
            answer asked in an earlier epoch arrives too late to join the conversation shown.
    """

    scene: Scene | None = None
    base: Image.Image | None = None
    turns: list[Turn] = field(default_factory=list)
    corner: tuple[int, int] | None = None
    region: list[int] | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    epoch: int = 0

    def load(self, scene: Scene) -> None:
        """Show a new scene: the conversation and region start over."""
        self.scene = scene
        self.base = scene.display()
        self.reset()

    def unload(self) -> None:
        self.scene = None
        self.base = None
        self.reset()

    def reset(self) -> None:
        """Forget the conversation and the region (the scene stays)."""
        self.clear_turns()
        self.corner = None
        self.region = None

    def clear_turns(self) -> None:
        """Forget the conversation (the scene and region stay); answers still coming will not join it."""
        self.turns = []
        self.epoch += 1

    def click(self, x: float, y: float) -> str | None:
        """A click at display pixel ``(x, y)``: the first sets a corner, the second closes the region.

        Returns:
            The region's text (``[x1, y1, x2, y2]``) when the click closed a region, else ``None``.

        Raises:
            RegionError: the second corner is on a line with the first (no area).
        """
        if self.base is None:
            raise RegionError("upload a scene first")
        point = grid_point(x, y, self.base.size)
        if self.corner is None:
            self.corner = point
            return None
        (ax, ay), (bx, by) = self.corner, point
        self.corner = None
        if ax == bx or ay == by:
            raise RegionError("the two corners are on one line; click two opposite corners of the region")
        self.region = [min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)]
        return region_text(self.region)

    def clear_region(self) -> None:
        self.corner = None
        self.region = None

    def boxes(self) -> list[LabelledBox]:
        """Every answer box, labelled with its turn and what was asked."""
        out = []
        for i, turn in enumerate(self.turns, start=1):
            label = turn.text if turn.task == "ground" else turn.task
            for k, box in enumerate(turn.boxes_grid):
                suffix = f" #{k + 1}" if len(turn.boxes_grid) > 1 else ""
                out.append(LabelledBox(box, f"{i}: {label}{suffix}", turn_colour(i)))
        return out

    def render(self) -> Image.Image | None:
        """The scene as shown: answer boxes, the region and a pending corner drawn on it."""
        if self.base is None:
            return None
        return annotate(self.base, self.boxes(), self.region, self.corner)

    def write_downloads(self, folder: Path, model: dict[str, Any]) -> tuple[Path, Path | None]:
        """Write the answers' JSON (and the boxes' GeoJSON for a georeferenced scene) under ``folder``.

        Returns:
            ``(json_path, geojson_path or None)``.
        """
        if self.scene is None:
            raise ValueError("no scene")
        stem = Path(self.scene.name).stem or "scene"
        out = folder / self.id
        answers = write_answers(out / f"{stem}-answers.json", model, self.scene, self.turns)
        geojson = write_boxes_geojson(out / f"{stem}-boxes.geojson", self.scene, self.turns, model) if self.scene.georef else None
        return answers, geojson


__all__ = ["RegionError", "Session", "grid_point"]
