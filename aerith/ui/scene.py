"""A scene uploaded to the page: its pixels, the bands shown as RGB, and where it lies on the Earth.

Reading follows the server (:func:`aerith.serve.images.decode_image_bytes`): the file's
header decides the format (PNG, JPEG, TIFF of any band count), the pixel count is checked
from the header before anything is decoded, and every failure is a :class:`SceneError`
naming the file. Bands and stretch follow :func:`aerith.imageio.array_to_rgb`.

Default bands: a stack of 12 or more bands is read as Sentinel-2 and shown as 0-based
``(3, 2, 1)``, i.e. B04, B03, B02 (red, green, blue) in both the 13-band L1C order that
EuroSAT-MS stores (B01 ... B12, B8A) and the 12-band L2A order (B01 ... B8A, B09, B11,
B12); anything else gets the library's default (the first three bands, alpha dropped).

A GeoTIFF that declares a nodata value (its ``GDAL_NODATA`` tag) and is not 8-bit has those
pixels left out of the contrast stretch and shown black, as :func:`aerith.imageio.read_array`
reads files for ``aerith predict`` (a -9999 border would otherwise blow every valid pixel to white).

A TIFF is georeferenced when rasterio (the ``geo`` extra) reads a CRS and a transform
from it (ground control points give a fitted affine, as ``aerith scan`` does).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from aerith.errors import ImageReadError
from aerith.imageio import array_to_rgb
from aerith.serve.images import ImageInputError, decode_image_bytes

SENTINEL2_RGB = (3, 2, 1)
DISPLAY_MIN = 512  # the shorter display side for small scenes (a 64 px SynthRS scene is shown 8x)
DISPLAY_MAX = 1024  # the longer display side for large ones
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class SceneError(ValueError):
    """An upload that cannot be shown or asked about; the message names the file."""


@dataclass(frozen=True)
class Georeference:
    """Where a raster lies: its CRS (a rasterio ``CRS``) and pixel -> map affine ``(a, b, c, d, e, f)``."""

    crs: Any
    transform: tuple[float, float, float, float, float, float]

    @property
    def crs_name(self) -> str:
        epsg = self.crs.to_epsg()
        return f"EPSG:{epsg}" if epsg is not None else self.crs.to_wkt()


@dataclass
class Scene:
    """One uploaded image.

    Attributes:
        name: the file's name as uploaded.
        array: the decoded ``(H, W, C)`` array of its stored dtype.
        bands: the 0-based bands shown as RGB (``None``: the library default).
        rgb: the RGB image the model reads (full resolution).
        georef: map placement, ``None`` when the file has none (or rasterio is missing).
        sha256: checksum of the uploaded bytes.
        notes: what the page should say about the upload (e.g. why it is not georeferenced).
        dtype: the file's stored data type (``array`` is float32 with NaN at nodata pixels when
            the file declares nodata); ``""``: ``array``'s own.
    """

    name: str
    array: np.ndarray
    bands: tuple[int, ...] | None
    rgb: Image.Image
    georef: Georeference | None = None
    sha256: str = ""
    band_names: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    dtype: str = ""

    @property
    def stored_dtype(self) -> str:
        """The data type the file stores its pixels in."""
        return self.dtype or str(self.array.dtype)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return self.rgb.size

    @property
    def band_count(self) -> int:
        return int(self.array.shape[2])

    @property
    def shown_bands(self) -> tuple[int, ...]:
        """The bands actually shown (the default made explicit)."""
        return self.bands if self.bands is not None else library_bands(self.band_count)

    def with_bands(self, bands: Sequence[int]) -> Scene:
        """The same upload shown with other bands (1 or 3 indices)."""
        bands = tuple(int(b) for b in bands)
        try:
            rgb = array_to_rgb(self.array, bands, source=self.name)
        except ImageReadError as err:
            raise SceneError(str(err)) from err
        return Scene(self.name, self.array, bands, rgb, self.georef, self.sha256, self.band_names, list(self.notes), self.dtype)

    def describe(self) -> dict[str, Any]:
        """The scene's facts for the answers' JSON."""
        w, h = self.size
        return {
            "file": self.name,
            "sha256": self.sha256,
            "width": w,
            "height": h,
            "bands_total": self.band_count,
            "bands_shown": list(self.shown_bands),
            "dtype": self.stored_dtype,
            "georeferenced": self.georef is not None,
            "crs": self.georef.crs_name if self.georef else None,
            "transform": list(self.georef.transform) if self.georef else None,
        }

    def display(self) -> Image.Image:
        """The RGB image at display size: small scenes enlarged, large ones reduced (grid coordinates are unchanged)."""
        w, h = self.size
        scale = 1.0
        if min(w, h) < DISPLAY_MIN:
            scale = DISPLAY_MIN / min(w, h)
        if max(w, h) * scale > DISPLAY_MAX:
            scale = DISPLAY_MAX / max(w, h)
        if scale == 1.0:
            return self.rgb.copy()
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return self.rgb.resize(size, Image.Resampling.NEAREST if scale >= 2 else Image.Resampling.LANCZOS)


def library_bands(count: int) -> tuple[int, ...]:
    """The bands :func:`aerith.imageio.array_to_rgb` shows when none are given."""
    if count in (2, 4):
        return tuple(range(count - 1))
    return (0, 1, 2) if count >= 3 else (0,)


def default_bands(count: int) -> tuple[int, ...] | None:
    """Sentinel-2 RGB for stacks of 12 or more bands; ``None`` (the library default) otherwise."""
    return SENTINEL2_RGB if count >= 12 else None


def load_scene(path: str | Path, name: str | None = None, max_pixels: int = 25_000_000) -> Scene:
    """Read an upload.

    Args:
        path: where the uploaded bytes are.
        name: the name to report (the upload's own file name); default the path's name.
        max_pixels: larger images (width x height, read from the header) are refused.

    Raises:
        SceneError: the file is missing, empty, not an image, too large, or of an unsupported shape.
    """
    path = Path(path)
    name = name or path.name
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise SceneError(f"{name}: cannot read the upload ({err.strerror or err})") from err
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*GDAL_NODATA tag", category=UserWarning)  # a note below says it
            array = decode_image_bytes(raw, name, max_pixels)  # nodata already NaN, as read_array gives it
    except ImageInputError as err:
        raise SceneError(str(err)) from err
    stored = str(array.dtype)
    notes = []
    if raw[:4] in _TIFF_MAGIC:
        stored, note = nodata_note(raw, array)
        if note:
            notes.append(note)
    bands = default_bands(array.shape[2])
    try:
        rgb = array_to_rgb(array, bands, source=name)
    except ImageReadError as err:
        raise SceneError(str(err)) from err
    scene = Scene(name, array, bands, rgb, sha256=hashlib.sha256(raw).hexdigest(), notes=notes, dtype=stored)
    if raw[:4] in _TIFF_MAGIC:
        scene.georef, scene.band_names, note = read_georeference(path)
        if note:
            scene.notes.append(note)
    return scene


def nodata_note(raw: bytes, array: np.ndarray) -> tuple[str, str | None]:
    """``(stored dtype, note)`` of a TIFF whose declared nodata (``GDAL_NODATA``) the decoder made NaN.

    As :func:`aerith.imageio.read_array`: 8-bit (and boolean) data is kept as stored; a tag that
    is not a number leaves every pixel as data, and the note says so.
    """
    try:
        import tifffile

        with tifffile.TiffFile(io.BytesIO(raw)) as tif:
            stored = str(tif.series[0].dtype)
            tag = tif.pages[0].tags.get("GDAL_NODATA")
            text = None if tag is None else str(tag.value).strip().rstrip("\x00")
    except Exception:  # noqa: BLE001 - the pixels were decoded; a header that cannot be read again declares nothing
        return str(array.dtype), None
    if text is None or stored in ("uint8", "bool"):
        return stored, None
    try:
        float(text)
    except ValueError:
        return stored, f"the GDAL_NODATA tag {text!r} is not a number: every pixel is read as data"
    count = int(np.isnan(array).sum()) if array.dtype.kind == "f" else 0
    return stored, f"nodata {text}: {count:,} value(s) left out of the contrast stretch and shown black"


def read_georeference(path: Path) -> tuple[Georeference | None, tuple[str, ...], str | None]:
    """``(georeference or None, band descriptions, a note when it could not be read)`` of a TIFF."""
    try:
        from aerith.geo.raster import RasterSource, gdal_env
    except ImportError:  # pragma: no cover - aerith.geo imports nothing optional at module level
        return None, (), "not georeferenced: aerith.geo is unavailable"
    try:
        with gdal_env(), RasterSource.open(path) as source:
            descriptions = tuple(d or "" for d in source.dataset.descriptions)
            if not source.georeferenced:
                return None, descriptions, None
            return Georeference(source.crs, tuple(source.transform)[:6]), descriptions, None
    except ImportError:
        return None, (), "georeference not read: install the geo extra (pip install 'aerith[geo]') for GeoJSON downloads"
    except Exception as err:  # noqa: BLE001 - the pixels were read; a georeference GDAL cannot read is only lost
        return None, (), f"georeference not read ({type(err).__name__}: {err})"


__all__ = [
    "DISPLAY_MAX", "DISPLAY_MIN", "SENTINEL2_RGB", "Georeference", "Scene", "SceneError",
    "default_bands", "library_bands", "load_scene", "nodata_note", "read_georeference",
]
