"""From the journal's per-tile answers to the scan's output files and manifest."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

import aerith
from aerith.atomic import atomic_write_text
from aerith.geo import outputs
from aerith.geo.merge import Detection, cut_sides, merge_detections
from aerith.geo.raster import RasterSource, Stretch
from aerith.geo.scan import MANIFEST, NO_CLASS, ScanConfig, ScanResult, config_dict
from aerith.geo.tiles import TileGrid
from aerith.parsing import match_class, parse_boxes

RED, ORANGE, WHITE = (230, 25, 25), (255, 150, 0), (255, 255, 255)


def _cell(grid: TileGrid, row: int, col: int) -> tuple[float, float, float, float]:
    """The class-map pixel of a tile, in raster pixels (the map covers the raster with one pixel per tile)."""
    rows, cols = grid.shape
    cw, ch = grid.width / cols, grid.height / rows
    return col * cw, row * ch, (col + 1) * cw, (row + 1) * ch


def write_results(
    vlm: Any,
    src: RasterSource,
    grid: TileGrid,
    config: ScanConfig,
    stretch: Stretch,
    records: Mapping[int, Mapping[str, Any]],
    out: Path,
    fingerprint: Mapping[str, Any],
    *,
    runs: list[dict[str, Any]],
    last_run: dict[str, Any],
) -> ScanResult:
    """Write every output of a finished scan, then the manifest (last, so its presence means complete)."""
    status = Counter(r["status"] for r in records.values())
    rows, cols = grid.shape
    tiles = {
        "total": len(grid),
        "rows": rows,
        "cols": cols,
        "stride": grid.stride,
        "done": status["done"],
        "skipped_nodata": status["nodata"],
        "skipped_empty": status["empty"],
        "run_now": int(last_run["tiles"]),
    }
    georef = src.georeferenced
    crs = src.crs if georef else None
    random_weights = bool(getattr(vlm, "is_random_init", False))
    model = str(fingerprint["model"])
    done = [(grid[i], records[i]) for i in sorted(records) if records[i]["status"] == "done"]
    overview = src.read_overview(config.quicklook_size, stretch)
    label = f"aerith scan --task {config.task}: {model}" + (" - RANDOM WEIGHTS, outputs are noise" if random_weights else "")
    paths: dict[str, Path] = {}

    if config.task == "vg":
        detections, no_box = [], 0
        for t, r in done:
            boxes = parse_boxes(r["answer"], (t.size, t.size), fmt="aerith")
            no_box += not boxes
            tol = config.edge_tolerance * t.size
            for k, b in enumerate(boxes):
                detections.append(
                    Detection((b[0] + t.x, b[1] + t.y, b[2] + t.x, b[3] + t.y), t.index, k, cut_sides(b, t.size, t.edges, tol))
                )
        merged, stats = merge_detections(
            detections, method=config.merge, metric=config.match_metric, threshold=config.match_threshold
        )
        merged.sort(key=lambda m: (m.box[1], m.box[0], m.box[3], m.box[2], m.tile))
        polys = outputs.pixel_polygons([m.box for m in merged], src.transform)
        columns = {
            "query": [config.query] * len(merged),
            "score": [m.score for m in merged],
            "tile": [m.tile for m in merged],
            "tiles": [",".join(str(t) for t in m.tiles) for m in merged],
            "complete": [m.complete for m in merged],
            "px_x1": [float(m.box[0]) for m in merged],
            "px_y1": [float(m.box[1]) for m in merged],
            "px_x2": [float(m.box[2]) for m in merged],
            "px_y2": [float(m.box[3]) for m in merged],
        }
        types = {"score": "float64", "tile": "int64", "complete": "bool", **{f"px_{c}": "float64" for c in ("x1", "y1", "x2", "y2")}}
        paths["gpkg"] = outputs.write_gpkg(out / "detections.gpkg", "detections", polys, columns, crs, types)
        if georef:
            paths["geojson"] = outputs.write_geojson(out / "detections.geojson", outputs.to_wgs84(polys, crs), columns)
        results: dict[str, Any] = {**stats.to_dict(), "tiles_without_box": no_box}
        draw = [(m.box, RED if m.complete else ORANGE) for m in merged]
        title = f"{label} | {len(merged)} x '{config.query}'"
        paths["quicklook"] = outputs.write_quicklook(
            out / "quicklook.png", overview, (src.width, src.height), title, boxes=draw,
            legend=[("seen whole", RED), ("cut at tile sides only", ORANGE)] if any(not m.complete for m in merged) else (),
        )
    else:
        polys = outputs.pixel_polygons([t.bounds for t, _ in done], src.transform)
        columns = {
            "tile": [t.index for t, _ in done],
            "row": [t.row for t, _ in done],
            "col": [t.col for t, _ in done],
            "px_x": [t.x for t, _ in done],
            "px_y": [t.y for t, _ in done],
        }
        types = dict.fromkeys(columns, "int64")
        if config.task == "cls":
            classes = list(config.classes or ())
            names = [*classes, NO_CLASS]
            matched = [match_class(r["answer"], classes) for _, r in done]
            columns["class"] = [c for c, _ in matched]
            columns["match"] = [how for _, how in matched]
            columns["answer"] = [r["answer"] for _, r in done]
            values = np.zeros(grid.shape, np.uint16)
            for (t, _), (c, _) in zip(done, matched):
                values[t.row, t.col] = (classes.index(c) if c is not None else len(classes)) + 1
            colours = {n: outputs.class_colour(k) for k, n in enumerate(classes)} | {NO_CLASS: outputs.NO_CLASS_COLOUR}
            paths["classmap"] = outputs.write_classmap(
                out / "classmap.tif", values, names, [colours[n] for n in names], crs, src.transform, src.width, src.height
            )
            counts = Counter(c if c is not None else NO_CLASS for c, _ in matched)
            results = {"tiles_per_class": {n: counts.get(n, 0) for n in names}, "answers_matching_no_class": counts.get(NO_CLASS, 0)}
            fills = [(_cell(grid, t.row, t.col), colours[c if c is not None else NO_CLASS]) for (t, _), (c, _) in zip(done, matched)]
            legend = [(f"{n} ({counts.get(n, 0)})", colours[n]) for n in names if counts.get(n, 0)]
            paths["quicklook"] = outputs.write_quicklook(
                out / "quicklook.png", overview, (src.width, src.height), label, fills=fills, legend=legend
            )
            layer = "tiles"
        else:
            columns["caption"] = [r["answer"] for _, r in done]
            results = {"captions": len(done), "empty_captions": sum(1 for _, r in done if not r["answer"].strip())}
            draw = [(_cell(grid, t.row, t.col), WHITE) for t, _ in done]
            paths["quicklook"] = outputs.write_quicklook(
                out / "quicklook.png", overview, (src.width, src.height), f"{label} | captions per tile in tiles.gpkg", boxes=draw
            )
            layer = "tiles"
        paths["gpkg"] = outputs.write_gpkg(out / "tiles.gpkg", layer, polys, columns, crs, types)
        if georef:
            paths["geojson"] = outputs.write_geojson(out / "tiles.geojson", outputs.to_wgs84(polys, crs), columns)

    manifest = {
        "tool": "aerith scan",
        "aerith_version": aerith.__version__,
        "status": "complete",
        "model": {"name": model, "random_weights": random_weights, "fingerprint": fingerprint["model_fingerprint"]},
        "task": config.task,
        "prompt": config.prompt,
        "settings": config_dict(config),
        "raster": {**src.describe(), "sha256": fingerprint["raster_sha256"]},
        "coordinates": src.coordinates,
        "stretch": stretch.to_dict(),
        "tiles": tiles,
        "results": results,
        "outputs": {k: p.name for k, p in paths.items()},
        "runs": runs,
        "last_run": last_run,
    }
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return ScanResult(
        out=out,
        outputs={**paths, "manifest": out / MANIFEST},
        tiles=tiles,
        results=results,
        georeferenced=georef,
        manifest=manifest,
    )
