"""Generated rasters with known objects, and model doubles that answer each tile with the truth."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from aerith.boxes import format_box, to_grid
from aerith.data.synthrs import CLASS_NAMES, make_scene

SCENE = 128  # px per SynthRS scene
GRID = 3  # scenes per side of the mosaic
EPSG = 32633  # WGS 84 / UTM zone 33N
ORIGIN = (500_000.0, 4_500_000.0)  # top-left corner, metres
RES = 0.5  # metres per pixel
NODATA_SCENE = (0, 2)  # (row, col) of the scene blanked to nodata


@dataclass(frozen=True)
class Mosaic:
    """A raster of SynthRS scenes and what is in it.

    Attributes:
        path: the GeoTIFF.
        image: ``(H, W, 3)`` uint8 pixels as written (nodata pixels 0).
        boxes: true object boxes in raster pixels (none in the nodata scene).
        classes: scene class per ``(row, col)`` of scenes (None for the nodata scene).
    """

    path: Path
    image: np.ndarray
    boxes: list[tuple[int, int, int, int]]
    classes: dict[tuple[int, int], str | None]

    def class_at(self, x: float, y: float) -> str | None:
        return self.classes[(int(y) // SCENE, int(x) // SCENE)]


def build_mosaic(grid: int = GRID) -> tuple[np.ndarray, list[tuple[int, int, int, int]], dict]:
    size = grid * SCENE
    image = np.zeros((size, size, 3), np.uint8)
    boxes, classes = [], {}
    for r in range(grid):
        for c in range(grid):
            k = r * grid + c
            if (r, c) == NODATA_SCENE:
                classes[(r, c)] = None
                continue
            scene, graph = make_scene(k, CLASS_NAMES[k % len(CLASS_NAMES)], SCENE, np.random.default_rng(k))
            # value 0 is the nodata value: keep real pixels at 1 or above
            image[r * SCENE : (r + 1) * SCENE, c * SCENE : (c + 1) * SCENE] = np.maximum(scene, 1)
            classes[(r, c)] = graph.scene_class
            for o in graph.objects:
                x1, y1, x2, y2 = o.box
                boxes.append((x1 + c * SCENE, y1 + r * SCENE, x2 + c * SCENE, y2 + r * SCENE))
    return image, boxes, classes


def write_geotiff(path: Path, bands_first: np.ndarray, *, nodata=0, crs=f"EPSG:{EPSG}", **extra) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    count, h, w = bands_first.shape
    profile = dict(
        driver="GTiff", width=w, height=h, count=count, dtype=str(bands_first.dtype), crs=crs,
        transform=from_origin(ORIGIN[0], ORIGIN[1], RES, RES), tiled=True, blockxsize=64, blockysize=64,
        compress="deflate", nodata=nodata,
    )
    profile.update(extra)
    profile = {k: v for k, v in profile.items() if v is not None}  # None: leave the option out
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(bands_first)
    return path


@pytest.fixture(scope="session")
def mosaic(tmp_path_factory) -> Mosaic:
    """A 384 px, 3-band, tiled, deflate-compressed GeoTIFF in UTM 33N with one nodata scene."""
    image, boxes, classes = build_mosaic()
    path = write_geotiff(tmp_path_factory.mktemp("raster") / "mosaic.tif", np.moveaxis(image, -1, 0))
    return Mosaic(path, image, boxes, classes)


def locate(image: np.ndarray, tile: np.ndarray) -> tuple[int, int]:
    """Where ``tile`` lies in ``image``: ``(x, y)`` of its top-left pixel (exact match)."""
    h, w = tile.shape[:2]
    H, W = image.shape[:2]
    candidates = np.argwhere(np.all(image[: H - h + 1, : W - w + 1] == tile[0, 0], axis=-1))
    for y, x in candidates:
        if np.array_equal(image[y : y + h, x : x + w], tile):
            return int(x), int(y)
    raise AssertionError("the tile the model was given is not a window of the raster")


class TruthDouble:
    """Stands in for the model: finds each tile in the mosaic and answers with the truth.

    ``vg``: every true box that the tile shows (the visible part of a cut object),
    on the 0-1000 grid; ``cls``: the class of the scene under the tile's centre;
    ``cap``: a caption naming that class and the tile's position. It records the
    tiles it saw, and can stop the scan with KeyboardInterrupt at a given call.
    """

    name = "truth-double"
    is_random_init = False

    def __init__(self, mosaic: Mosaic, interrupt_at_call: int | None = None) -> None:
        self.mosaic = mosaic
        self.interrupt_at_call = interrupt_at_call
        self.calls = 0
        self.seen: list[tuple[int, int]] = []
        self.batch_sizes: list[int] = []
        self.images: list[np.ndarray] = []

    def generate(self, images, prompts, *, batch_size=16, max_new_tokens=64, **kwargs):
        self.calls += 1
        if self.interrupt_at_call is not None and self.calls >= self.interrupt_at_call:
            raise KeyboardInterrupt
        assert len(images) == len(prompts) and len(images) <= batch_size
        self.batch_sizes.append(len(images))
        answers = []
        for image, prompt in zip(images, prompts):
            tile = np.asarray(image)
            self.images.append(tile)
            x, y = locate(self.mosaic.image, tile)
            self.seen.append((x, y))
            size = tile.shape[1]
            if prompt.startswith("[VG]"):
                found = []
                for bx1, by1, bx2, by2 in self.mosaic.boxes:
                    cx1, cy1, cx2, cy2 = max(bx1, x), max(by1, y), min(bx2, x + size), min(by2, y + size)
                    if cx2 > cx1 and cy2 > cy1:
                        found.append(format_box(to_grid((cx1 - x, cy1 - y, cx2 - x, cy2 - y), (size, size))))
                answers.append(" ".join(found) or "none")
            elif prompt.startswith("[CLS]"):
                answers.append(str(self.mosaic.class_at(x + size / 2, y + size / 2)).replace("_", " "))
            else:
                answers.append(f"a tile of {self.mosaic.class_at(x + size / 2, y + size / 2)} at {x} {y}")
        return answers
