"""aerith.geo.scan on generated rasters, with a model double that answers each tile with the truth."""

from __future__ import annotations

import json
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from pyogrio.raw import read as read_vector
from rasterio.warp import transform_bounds

from aerith.data.synthrs import CLASS_NAMES
from aerith.geo import NotGeoreferencedWarning, ScanError, scan
from aerith.geo.journal import JOURNAL_DIR

from .rasters import EPSG, ORIGIN, RES, TruthDouble, write_geotiff

# 384 px mosaic, 128 px tiles overlapping by 48 px: 5 x 5 tiles, stride 80. SynthRS objects are at
# most 35 px, so each is seen whole by some tile, and many are cut at the sides of others.
TILE = dict(tile=128, overlap=0.375, batch_size=4)


def read_layer(path: Path):
    meta, _, wkb, fields = read_vector(path)
    columns = dict(zip(meta["fields"], fields))
    return meta, shapely.from_wkb(wkb), columns


def to_map(box):
    """Raster pixel box -> (minx, miny, maxx, maxy) in the mosaic's CRS."""
    x1, y1, x2, y2 = box
    return (ORIGIN[0] + x1 * RES, ORIGIN[1] - y2 * RES, ORIGIN[0] + x2 * RES, ORIGIN[1] - y1 * RES)


@pytest.mark.parametrize("merge, metric", [("nmm", "ios"), ("nms", "iou"), ("nmm", "iou")])
def test_vg_gives_each_true_object_once_at_its_map_coordinates(mosaic, tmp_path, merge, metric):
    double = TruthDouble(mosaic)
    result = scan(
        double, mosaic.path, task="vg", query="object", out=tmp_path / "vg", merge=merge, match_metric=metric, **TILE
    )

    assert result.tiles | {"run_now": 0} == {
        "total": 25, "rows": 5, "cols": 5, "stride": 80, "done": 24, "skipped_nodata": 1, "skipped_empty": 0, "run_now": 0,
    }
    assert len(set(double.seen)) == len(double.seen) == 24  # every tile once; the all-nodata one never
    assert (256, 0) not in double.seen
    assert max(double.batch_sizes) == 4
    # the overlaps made work for the merge: duplicates and cut views
    assert result.results["duplicates_merged"] > 0 and result.results["cut_boxes_dropped"] > 0

    meta, geoms, columns = read_layer(result.outputs["gpkg"])
    assert meta["crs"] == f"EPSG:{EPSG}"
    found = [tuple(g.bounds) for g in geoms]
    truth = [to_map(b) for b in mosaic.boxes]
    assert len(found) == len(truth) == 39  # no duplicates, nothing missed
    unmatched = list(range(len(found)))
    for t in truth:  # one-to-one: each true box has its own found box within one pixel on every side
        hits = [i for i in unmatched if np.allclose(found[i], t, atol=RES, rtol=0)]
        assert len(hits) == 1, f"true box {t}: {len(hits)} found boxes within one pixel"
        unmatched.remove(hits[0])
    assert all(columns["complete"]) and set(columns["query"]) == {"object"}
    assert np.isnan(columns["score"]).all()  # the model gives no scores


def test_geojson_is_wgs84_inside_the_raster_and_gpkg_inside_its_crs_bounds(mosaic, tmp_path):
    result = scan(TruthDouble(mosaic), mosaic.path, task="vg", query="object", out=tmp_path / "vg", **TILE)
    with rasterio.open(mosaic.path) as ds:
        bounds, crs = ds.bounds, ds.crs
    _, geoms, _ = read_layer(result.outputs["gpkg"])
    for g in geoms:
        minx, miny, maxx, maxy = g.bounds
        assert bounds.left <= minx < maxx <= bounds.right and bounds.bottom <= miny < maxy <= bounds.top

    doc = json.loads(result.outputs["geojson"].read_text())
    assert doc["type"] == "FeatureCollection" and "crs" not in doc and len(doc["features"]) == len(geoms)
    west, south, east, north = transform_bounds(crs, "EPSG:4326", *bounds, densify_pts=21)
    assert 14.9 < west < east < 15.1 and 40.6 < south < north < 40.7  # UTM 33N, 500 km E, 4,500 km N
    for feature in doc["features"]:
        ring = feature["geometry"]["coordinates"][0]
        assert ring[0] == ring[-1] and shapely.LinearRing(ring).is_ccw  # RFC 7946: exterior counter-clockwise
        for lon, lat in ring:
            assert west <= lon <= east and south <= lat <= north
    # the reprojection is pyproj's: the first feature's corner, back to UTM, lands on the GeoPackage's
    from pyproj import Transformer

    back = Transformer.from_crs("EPSG:4326", f"EPSG:{EPSG}", always_xy=True)
    lon, lat = doc["features"][0]["geometry"]["coordinates"][0][0]
    x, y = back.transform(lon, lat)
    assert min(abs(x - cx) + abs(y - cy) for cx, cy in geoms[0].exterior.coords) < 0.01


def test_cls_class_map_has_the_rasters_crs_and_bounds_and_one_pixel_per_tile(mosaic, tmp_path):
    classes = list(CLASS_NAMES)
    result = scan(TruthDouble(mosaic), mosaic.path, task="cls", classes=classes, out=tmp_path / "cls", **TILE)
    with rasterio.open(mosaic.path) as src, rasterio.open(result.outputs["classmap"]) as cm:
        assert cm.crs == src.crs
        assert np.allclose(tuple(cm.bounds), tuple(src.bounds), atol=1e-6)
        assert (cm.height, cm.width) == (5, 5) and cm.nodata == 0
        values = cm.read(1)
        names = json.loads(cm.tags(1)["classes"])
    xs = ys = [0, 80, 160, 240, 256]
    for r, y in enumerate(ys):
        for c, x in enumerate(xs):
            expected = mosaic.class_at(x + 64, y + 64)
            if expected is None and (x, y) != (256, 0):
                expected = "(no class)"  # centred on nodata, partly valid: scanned, and the double says "None"
            got = names.get(str(values[r, c]))
            assert got == expected, (r, c)  # None (0, skipped) for the all-nodata tile
    meta, geoms, columns = read_layer(result.outputs["gpkg"])
    assert meta["crs"] == f"EPSG:{EPSG}" and len(geoms) == 24
    assert geoms[0].bounds == to_map((0, 0, 128, 128))  # tile 0's footprint
    assert result.results["answers_matching_no_class"] == 1
    assert len(json.loads(result.outputs["geojson"].read_text())["features"]) == 24


def test_cap_writes_a_caption_per_tile(mosaic, tmp_path):
    result = scan(TruthDouble(mosaic), mosaic.path, task="cap", out=tmp_path / "cap", **TILE)
    _, geoms, columns = read_layer(result.outputs["gpkg"])
    for g, caption, x, y in zip(geoms, columns["caption"], columns["px_x"], columns["px_y"]):
        assert caption == f"a tile of {mosaic.class_at(x + 64, y + 64)} at {x} {y}"
        assert g.bounds == to_map((x, y, x + 128, y + 128))
    assert "classmap" not in result.outputs and result.outputs["quicklook"].is_file()


def _outputs(out: Path) -> dict[str, object]:
    """Everything a scan wrote, for comparison: file bytes, GeoPackage features, manifest without run times."""
    seen: dict[str, object] = {}
    for p in sorted(out.iterdir()):
        if p.name == JOURNAL_DIR:
            continue
        if p.suffix == ".gpkg":  # its gpkg_contents.last_change is the time it was written
            meta, geoms, columns = read_layer(p)
            nan_as_none = lambda v: None if isinstance(v, float) and np.isnan(v) else v  # noqa: E731
            seen[p.name] = (meta["crs"], [g.wkt for g in geoms], {k: [nan_as_none(v) for v in c] for k, c in columns.items()})
        elif p.name == "manifest.json":
            manifest = json.loads(p.read_text())
            for key in ("runs", "last_run"):
                manifest.pop(key)
            manifest["tiles"].pop("run_now")
            seen[p.name] = manifest
        else:
            seen[p.name] = p.read_bytes()
    return seen


@pytest.mark.parametrize("task", ["vg", "cls"])
def test_an_interrupted_scan_resumes_at_the_first_unfinished_tile_to_identical_outputs(mosaic, tmp_path, task):
    kwargs = {"query": "object"} if task == "vg" else {"classes": list(CLASS_NAMES)}
    scan(TruthDouble(mosaic), mosaic.path, task=task, out=tmp_path / "full", **kwargs, **TILE)

    first = TruthDouble(mosaic, interrupt_at_call=3)  # two batches of 4 finish, the third is cut off
    with pytest.raises(KeyboardInterrupt):
        scan(first, mosaic.path, task=task, out=tmp_path / "resumed", **kwargs, **TILE)
    assert not (tmp_path / "resumed" / "manifest.json").exists()
    part = next((tmp_path / "resumed" / JOURNAL_DIR).iterdir())
    with part.open("a") as f:
        f.write('{"answer": "[1, 2, 3')  # a line cut short by a crash
    second = TruthDouble(mosaic)
    result = scan(second, mosaic.path, task=task, out=tmp_path / "resumed", **kwargs, **TILE)

    done_first = set(first.seen)
    assert len(done_first) == 8 and not done_first & set(second.seen)
    assert len(done_first) + len(second.seen) == 24
    # the second run started at the first tile the first one had not finished (the cut line is dropped)
    rows = [json.loads(line) for line in part.read_text().splitlines()[1:]]
    second_run = next(k for k, r in enumerate(rows) if k > 0 and "run" in r)
    finished_first = {r["tile"] for r in rows[:second_run] if "tile" in r}
    assert len(finished_first) == 9  # 8 answered + the all-nodata tile 4, skipped
    assert rows[second_run]["run"]["first_tile"] == min(set(range(25)) - finished_first)
    assert result.tiles["run_now"] == 25 - len(finished_first)
    assert _outputs(tmp_path / "resumed") == _outputs(tmp_path / "full")


def test_a_finished_scan_re_merges_with_other_settings_without_the_model(mosaic, tmp_path):
    scan(TruthDouble(mosaic), mosaic.path, task="vg", query="object", out=tmp_path / "vg", **TILE)
    never = TruthDouble(mosaic, interrupt_at_call=1)  # any call would raise
    result = scan(never, mosaic.path, task="vg", query="object", out=tmp_path / "vg", merge="nms", match_metric="iou", **TILE)
    assert never.calls == 0 and result.tiles["run_now"] == 0
    assert result.manifest["settings"]["merge"] == "nms" and result.results["objects"] == len(mosaic.boxes)


class _ThreadState:
    """Two 'processes' as threads sharing a barrier, as accelerate's PartialState behaves."""

    def __init__(self, rank: int, world: int, barrier: threading.Barrier) -> None:
        self.process_index, self.num_processes, self.is_main_process = rank, world, rank == 0
        self._barrier = barrier

    def wait_for_everyone(self) -> None:
        self._barrier.wait(timeout=60)


def test_tiles_shared_over_two_processes_give_the_same_outputs(mosaic, tmp_path):
    scan(TruthDouble(mosaic), mosaic.path, task="vg", query="object", out=tmp_path / "one", **TILE)
    barrier = threading.Barrier(2)
    doubles = [TruthDouble(mosaic), TruthDouble(mosaic)]
    results, errors = {}, []

    def run(rank: int) -> None:
        try:
            results[rank] = scan(
                doubles[rank], mosaic.path, task="vg", query="object", out=tmp_path / "two",
                state=_ThreadState(rank, 2, barrier), **TILE,
            )
        except BaseException as err:  # noqa: BLE001 - surfaced below
            errors.append(err)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert results[1] is None and results[0].tiles["run_now"] == 25  # both processes' tiles
    seen0, seen1 = set(doubles[0].seen), set(doubles[1].seen)
    assert seen0 and seen1 and not seen0 & seen1 and len(seen0 | seen1) == 24
    parts = sorted(p.name for p in (tmp_path / "two" / JOURNAL_DIR).iterdir())
    assert parts == ["part-000-of-002.jsonl", "part-001-of-002.jsonl"]
    assert _outputs(tmp_path / "two") == _outputs(tmp_path / "one")


def test_a_plain_png_is_scanned_in_pixel_coordinates_with_a_warning(mosaic, tmp_path):
    from PIL import Image

    png = tmp_path / "mosaic.png"
    Image.fromarray(mosaic.image).save(png)
    with pytest.warns(NotGeoreferencedWarning, match="pixel coordinates"):
        result = scan(TruthDouble(mosaic), png, task="vg", query="object", out=tmp_path / "png", **TILE)
    assert not result.georeferenced and "geojson" not in result.outputs
    assert not (tmp_path / "png" / "detections.geojson").exists()
    meta, geoms, _ = read_layer(result.outputs["gpkg"])
    assert meta["crs"] is None
    # a PNG has no nodata value: the blank scene is a tile of one value, skipped as empty
    assert result.tiles["skipped_empty"] == 1 and result.tiles["skipped_nodata"] == 0
    found = sorted(tuple(g.bounds) for g in geoms)
    assert len(found) == len(mosaic.boxes)
    for t in mosaic.boxes:
        assert any(np.allclose(f, t, atol=1.0, rtol=0) for f in found)
    assert json.loads(result.outputs["manifest"].read_text())["coordinates"].startswith("pixel coordinates")


def test_a_geotransform_without_crs_gives_map_coordinates_and_says_so(mosaic, tmp_path):
    path = write_geotiff(tmp_path / "nocrs.tif", np.moveaxis(mosaic.image, -1, 0), crs=None)
    with pytest.warns(NotGeoreferencedWarning, match="geotransform but no CRS: the outputs are in map coordinates"):
        result = scan(TruthDouble(mosaic), path, task="cls", classes=list(CLASS_NAMES), out=tmp_path / "out", tile=128, overlap=0.0)
    assert json.loads(result.outputs["manifest"].read_text())["coordinates"].startswith(
        "map coordinates of the raster's geotransform, CRS unknown"
    )
    meta, geoms, columns = read_layer(result.outputs["gpkg"])
    assert meta["crs"] is None and "geojson" not in result.outputs
    first = next(g for g, x, y in zip(geoms, columns["px_x"], columns["px_y"]) if (x, y) == (0, 0))
    assert np.allclose(first.bounds, to_map((0, 0, 128, 128)))  # where the raster's own pixels are in a GIS
    with rasterio.open(result.outputs["classmap"]) as cm:
        assert cm.crs is None and np.allclose(cm.bounds, to_map((0, 0, 384, 384)))


class RecordingDouble:
    """Records the tiles it is given and answers with a fixed caption."""

    name = "recording-double"

    def __init__(self) -> None:
        self.images: list[np.ndarray] = []

    def generate(self, images, prompts, *, batch_size=16, **kwargs):
        self.images += [np.asarray(im) for im in images]
        return ["a caption"] * len(images)


def test_16_bit_bands_are_chosen_and_stretched_once_per_raster_as_the_processor_does(tmp_path):
    from aerith.imageio import array_to_rgb

    rng = np.random.default_rng(0)
    data = (rng.gamma(2.0, 800.0, size=(5, 160, 160)) + np.linspace(0, 3000, 160)[None, None, :]).astype(np.uint16)
    path = write_geotiff(tmp_path / "ms.tif", data, nodata=None)

    whole = RecordingDouble()  # one tile covering the raster: exactly the processor's per-image stretch
    scan(whole, path, task="cap", out=tmp_path / "whole", tile=160, overlap=0.0, bands=(3, 2, 1))
    expected = np.asarray(array_to_rgb(np.moveaxis(data, 0, -1), bands=(3, 2, 1)))
    assert np.array_equal(whole.images[0], expected)

    tiles = RecordingDouble()  # 80 px tiles: the same stretch for all, so overlapping pixels agree
    result = scan(tiles, path, task="cap", out=tmp_path / "tiles", tile=96, overlap=0.5, bands=(3, 2, 1))
    assert result.tiles["total"] == 9 and len(tiles.images) == 9
    assert np.array_equal(tiles.images[0][:, 48:], tiles.images[1][:, :48])  # tiles 0 and 1 share x 48-96
    assert np.array_equal(tiles.images[0], expected[:96, :96])
    stretch = result.manifest["stretch"]
    assert stretch["method"].startswith("2-98 percentile") and stretch["from_read_of"] == [160, 160]


@pytest.mark.parametrize("overviews", [False, True])
def test_the_stretch_of_a_large_raster_comes_from_a_decimated_read(tmp_path, overviews):
    from rasterio.enums import Resampling

    from aerith.geo.raster import RasterSource, gdal_env

    rng = np.random.default_rng(2)
    data = rng.integers(100, 4000, size=(3, 512, 512)).astype(np.uint16)
    path = write_geotiff(tmp_path / "big.tif", data, nodata=None)
    if overviews:
        with rasterio.open(path, "r+") as ds:
            ds.build_overviews([2, 4], Resampling.nearest)
    with gdal_env(), RasterSource.open(path) as src:
        stretch = src.stretch(stats_size=128)
    assert stretch.sample_shape == (128, 128)
    full_lo, full_hi = np.percentile(data.reshape(3, -1).astype(float), [2, 98], axis=1)
    assert np.allclose(stretch.lo, full_lo, rtol=0.05) and np.allclose(stretch.hi, full_hi, rtol=0.05)


def test_the_stretch_reads_full_resolution_when_the_decimated_read_holds_no_valid_pixel(tmp_path):
    data = np.zeros((3, 256, 256), np.uint16)
    data[:, 1::2, 1::2] = np.random.default_rng(3).integers(1000, 5000, (3, 128, 128))  # every 2nd pixel is nodata
    path = write_geotiff(tmp_path / "sparse.tif", data, nodata=0)
    double = RecordingDouble()
    result = scan(double, path, task="cap", out=tmp_path / "out", tile=256, stats_size=128)  # step 2: even pixels only
    valid = double.images[0][1::2, 1::2]
    assert valid.min() < 30 and valid.max() > 225  # stretched, not every valid pixel at 255
    stretch = result.manifest["stretch"]
    assert "held no valid pixel" in stretch["note"] and stretch["from_read_of"] == [256, 256]
    expected_lo, expected_hi = np.percentile(data[:, 1::2, 1::2].reshape(3, -1).astype(float), [2, 98], axis=1)
    assert np.allclose(stretch["lo"], expected_lo, rtol=0.02) and np.allclose(stretch["hi"], expected_hi, rtol=0.02)  # a sample


@pytest.mark.parametrize(
    "options",
    [
        {"tiled": False, "compress": "lzw"},  # striped
        {"compress": "zstd", "BIGTIFF": "YES"},
        {"compress": "jpeg", "photometric": "ycbcr", "nodata": None},  # lossy: compared loosely
    ],
    ids=["striped-lzw", "bigtiff-zstd", "jpeg-ycbcr"],
)
def test_geotiff_layouts_and_compressions_read_the_same_tiles(mosaic, tmp_path, options):
    if options.get("tiled") is False:
        options = {**options, "blockxsize": None, "blockysize": None}
    path = write_geotiff(tmp_path / "variant.tif", np.moveaxis(mosaic.image, -1, 0), **options)
    double = RecordingDouble()
    result = scan(double, path, task="cap", out=tmp_path / "out", tile=192, overlap=0.0)
    assert result.tiles["total"] == 4 and len(double.images) == 4
    tile = double.images[0].astype(int)
    if options["compress"] == "jpeg":
        assert np.abs(tile - mosaic.image[:192, :192]).mean() < 8
    else:
        assert np.array_equal(tile, mosaic.image[:192, :192])


def test_nodata_and_empty_tiles_are_skipped_and_counted(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.integers(1, 255, size=(3, 256, 256), dtype=np.uint8)
    data[:, :128, 128:] = 0  # nodata (declared)
    data[:, 128:, 128:] = 77  # a fill of one value, no nodata declared for it
    path = write_geotiff(tmp_path / "r.tif", data, nodata=0)
    double = RecordingDouble()
    result = scan(double, path, task="cap", out=tmp_path / "out", tile=128, overlap=0.0)
    assert result.tiles | {"run_now": 0} == {
        "total": 4, "rows": 2, "cols": 2, "stride": 128, "done": 2, "skipped_nodata": 1, "skipped_empty": 1, "run_now": 0,
    }
    assert len(double.images) == 2
    manifest = json.loads(result.outputs["manifest"].read_text())
    assert manifest["tiles"]["skipped_nodata"] == 1 and manifest["raster"]["sha256"]


def test_partial_nodata_is_black_for_the_model(tmp_path):
    data = np.full((3, 128, 128), 200, np.uint8)
    data[:, :, :40] = 0
    data[0, 5, 50] = 10  # so the tile is not one value
    path = write_geotiff(tmp_path / "r.tif", data, nodata=0)
    double = RecordingDouble()
    scan(double, path, task="cap", out=tmp_path / "out", tile=128)
    assert (double.images[0][:, :40] == 0).all() and (double.images[0][:, 41:] > 0).any()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"task": "vg"}, "needs --query"),
        ({"task": "cls", "classes": ["forest"]}, "at least two names"),
        ({"task": "cap", "query": "x"}, "--query is only for task 'vg'"),
        ({"task": "det"}, "unknown task 'det'; valid tasks: vg"),
        ({"task": "cap", "bands": (0, 1, 7)}, "band index 7 out of range: the raster has 3 band"),
        ({"task": "cap", "bands": (0, 1)}, "1 or 3 band indices"),
        ({"task": "cap", "tile": 512}, "tile 512 px is larger than the raster (384 x 384 px)"),
        ({"task": "cap", "overlap": 1.5}, "--overlap must be a fraction"),
    ],
)
def test_bad_settings_fail_with_a_clear_error(mosaic, tmp_path, kwargs, message):
    with pytest.raises(ScanError) as err:
        scan(RecordingDouble(), mosaic.path, out=tmp_path / "out", **kwargs)
    assert message in str(err.value)
    assert not (tmp_path / "out" / JOURNAL_DIR).exists()


def test_bad_rasters_and_foreign_out_folders_are_refused(mosaic, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.tif: raster file not found"):
        scan(RecordingDouble(), tmp_path / "missing.tif", task="cap", out=tmp_path / "a")
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    with pytest.raises(ScanError, match="notes.tif: not a raster GDAL can read"):
        scan(RecordingDouble(), text, task="cap", out=tmp_path / "a")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.docx").write_text("x")
    with pytest.raises(ScanError, match="is not empty and holds no scan"):
        scan(RecordingDouble(), mosaic.path, task="cap", out=busy, tile=128)
    # an earlier scan with other settings is refused, and named, unless overwritten
    scan(RecordingDouble(), mosaic.path, task="cap", out=tmp_path / "s", tile=128)
    with pytest.raises(ScanError, match="tile is 128 there, 192 here"):
        scan(RecordingDouble(), mosaic.path, task="cap", out=tmp_path / "s", tile=192)
    result = scan(RecordingDouble(), mosaic.path, task="cap", out=tmp_path / "s", tile=192, overwrite=True)
    assert result.tiles["total"] == 9 and (busy / "thesis.docx").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a georeferenced raster raises no warning
        scan(RecordingDouble(), mosaic.path, task="cap", out=tmp_path / "s", tile=192)
