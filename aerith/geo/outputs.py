"""Writing a scan's results: GeoPackage, RFC 7946 GeoJSON, class-map GeoTIFF, quicklook PNG.

Every file is written under a temporary name in its folder and renamed into
place (``os.replace``), so a crash never leaves a half-written output.
Geometries are polygons: a box's four pixel corners mapped through the
raster's affine transform (so rotated or sheared rasters are right too).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import textwrap
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aerith.geo.errors import MissingGeoExtraError

GEOJSON_DECIMALS = 7  # about 1 cm in longitude and latitude
# Class colours of the class map and the quicklook (matplotlib's tab10, then tab10 darkened).
_TAB10 = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)  # fmt: skip
NO_CLASS_COLOUR = (255, 255, 255)  # answers that name no class


def class_colour(k: int) -> tuple[int, int, int]:
    """Colour of class ``k`` (0-based)."""
    base = _TAB10[k % len(_TAB10)]
    shade = 0.6 ** (k // len(_TAB10))
    return (round(base[0] * shade), round(base[1] * shade), round(base[2] * shade))


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); on success it replaces ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # GDAL drivers want to create the file themselves
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def pixel_polygons(boxes: Sequence[Sequence[float]], transform: Any) -> list[Any]:
    """Shapely polygons of pixel boxes ``(x1, y1, x2, y2)`` in map coordinates, exterior counter-clockwise."""
    import shapely

    a, b, c, d, e, f = tuple(transform)[:6]
    polys = []
    for x1, y1, x2, y2 in boxes:
        corners = [(a * x + b * y + c, d * x + e * y + f) for x, y in ((x1, y1), (x2, y1), (x2, y2), (x1, y2))]
        polys.append(shapely.geometry.polygon.orient(shapely.Polygon(corners), 1.0))
    return polys


def _crs_arg(crs: Any) -> str | None:
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg is not None else crs.to_wkt()


def _column(values: Sequence[Any], dtype: str | None = None) -> np.ndarray:
    if dtype == "float64":
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    if dtype is not None:
        return np.array(list(values), dtype=dtype)
    if values and all(isinstance(v, bool) for v in values):
        return np.array(values, dtype=bool)
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.int64)
    if values and all(isinstance(v, float) or v is None for v in values) and any(v is not None for v in values):
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return np.array(list(values), dtype=object)


def write_gpkg(
    path: Path, layer: str, polygons: Sequence[Any], columns: Mapping[str, Sequence[Any]], crs: Any,
    types: Mapping[str, str] | None = None,
) -> Path:
    """A one-layer GeoPackage of polygons in ``crs`` (None: no CRS, e.g. pixel coordinates).

    Args:
        types: numpy dtype per column (``float64`` columns take None as null); other columns are
            inferred from their values, strings otherwise.
    """
    try:
        import shapely
        from pyogrio.raw import write
    except ImportError as err:
        raise MissingGeoExtraError("pyogrio") from err
    names = list(columns)
    types = types or {}
    fields = [_column(list(columns[n]), types.get(n)) if polygons else np.array([], dtype=types.get(n, object)) for n in names]
    geometry = np.array(shapely.to_wkb(list(polygons)) if polygons else [], dtype=object)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*'crs' was not provided.*")
        write(
            str(tmp), geometry=geometry, field_data=fields, fields=names, crs=_crs_arg(crs),
            driver="GPKG", geometry_type="Polygon", layer=layer,
        )
    return path


def to_wgs84(polygons: Sequence[Any], crs: Any) -> list[Any]:
    """Polygons reprojected from ``crs`` to WGS84 longitude/latitude with pyproj."""
    import shapely

    try:
        from pyproj import CRS, Transformer
    except ImportError as err:
        raise MissingGeoExtraError("pyproj") from err
    transformer = Transformer.from_crs(CRS.from_wkt(crs.to_wkt()), CRS.from_epsg(4326), always_xy=True)

    def project(xy: np.ndarray) -> np.ndarray:
        lon, lat = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    return [shapely.transform(p, project) for p in polygons]


def _round(coords: Any) -> list:
    return [[round(float(x), GEOJSON_DECIMALS), round(float(y), GEOJSON_DECIMALS)] for x, y in coords]


def write_geojson(path: Path, polygons_wgs84: Sequence[Any], columns: Mapping[str, Sequence[Any]]) -> Path:
    """An RFC 7946 FeatureCollection: WGS84 lon/lat, exteriors counter-clockwise, no ``crs`` member."""
    import shapely

    names = list(columns)
    features = []
    for i, poly in enumerate(polygons_wgs84):
        poly = shapely.geometry.polygon.orient(poly, 1.0)
        props = {n: _jsonable(columns[n][i]) for n in names}
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [_round(poly.exterior.coords)]},
                "properties": props,
            }
        )
    doc = {"type": "FeatureCollection", "features": features}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    return path


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def write_classmap(
    path: Path,
    values: np.ndarray,
    class_names: Sequence[str],
    colours: Sequence[tuple[int, int, int]],
    crs: Any,
    transform: Any,
    width: int,
    height: int,
) -> Path:
    """The class map: one pixel per tile, value ``k + 1`` for class ``k``, 0 for skipped tiles.

    The transform is the raster's, scaled so that the map covers the raster's bounds:
    a pixel spans ``width / cols`` by ``height / rows`` raster pixels.
    """
    import rasterio
    from affine import Affine

    rows, cols = values.shape
    a, b, c, d, e, f = tuple(transform)[:6]
    sx, sy = width / cols, height / rows
    dtype = "uint8" if len(class_names) < 255 else "uint16"
    profile = {
        "driver": "GTiff",
        "width": cols,
        "height": rows,
        "count": 1,
        "dtype": dtype,
        "crs": crs,
        "transform": Affine(a * sx, b * sy, c, d * sx, e * sy, f),  # the raster's transform, pixels scaled
        "nodata": 0,
        "compress": "deflate",
    }
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(values.astype(dtype), 1)
            dst.update_tags(1, classes=json.dumps({str(k + 1): n for k, n in enumerate(class_names)}))
            dst.set_band_description(1, "scene class per tile (0 = skipped tile)")
            if dtype == "uint8":
                dst.write_colormap(1, {0: (0, 0, 0, 0), **{k + 1: (*c, 255) for k, c in enumerate(colours)}})
    return path


def write_quicklook(
    path: Path,
    background: np.ndarray,
    raster_size: tuple[int, int],
    title: str,
    boxes: Sequence[tuple[Sequence[float], tuple[int, int, int]]] = (),
    fills: Sequence[tuple[Sequence[float], tuple[int, int, int]]] = (),
    legend: Sequence[tuple[str, tuple[int, int, int]]] = (),
) -> Path:
    """A PNG of the raster (decimated) with results drawn on it and a title strip.

    Args:
        background: ``(h, w, 3)`` uint8 overview of the raster.
        raster_size: ``(width, height)`` of the raster, to scale pixel boxes.
        boxes: outlined ``((x1, y1, x2, y2) raster pixels, colour)``.
        fills: filled half-transparent, ``((x1, y1, x2, y2), colour)``.
        legend: ``(label, colour)`` rows drawn under the title.
    """
    from PIL import Image, ImageDraw, ImageFont

    h, w = background.shape[:2]
    sx, sy = w / raster_size[0], h / raster_size[1]
    base = Image.fromarray(background, "RGB").convert("RGBA")
    if fills:
        layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        for (x1, y1, x2, y2), colour in fills:
            draw.rectangle([x1 * sx, y1 * sy, x2 * sx - 1, y2 * sy - 1], fill=(*colour, 110))
        base = Image.alpha_composite(base, layer)
    draw = ImageDraw.Draw(base)
    line = max(1, round(min(w, h) / 300))
    for (x1, y1, x2, y2), colour in boxes:
        draw.rectangle([x1 * sx, y1 * sy, max(x1 * sx, x2 * sx - 1), max(y1 * sy, y2 * sy - 1)], outline=(*colour, 255), width=line)
    font = ImageFont.load_default()
    row = 14
    title_lines = textwrap.wrap(title, width=max(20, (w - 8) // 6)) or [""]  # the default font is about 6 px a character
    strip = row * (len(title_lines) + len(legend)) + 8
    canvas = Image.new("RGB", (w, h + strip), (255, 255, 255))
    canvas.paste(base.convert("RGB"), (0, strip))
    text = ImageDraw.Draw(canvas)
    for i, line_text in enumerate(title_lines):
        text.text((4, 3 + row * i), line_text, fill=(0, 0, 0), font=font)
    for i, (label, colour) in enumerate(legend):
        y = 3 + row * (len(title_lines) + i)
        text.rectangle([4, y + 2, 14, y + 11], fill=colour)
        text.text((20, y), label, fill=(0, 0, 0), font=font)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path
