"""Reading RS images of any layout into RGB.

RS images come as 8-bit JPEG/PNG, 8- or 16-bit TIFF, RGBA, greyscale, and
multi-band GeoTIFF (Sentinel-2 has 13 bands). Extensions lie, so the file's
own header decides how it is opened. Everything ends as an RGB ``PIL.Image``
(``uint8``) that the processor and the pictures share.

Choices, stated once:
- 8-bit data is kept as is. Deeper data (16-bit, float, reflectance) is
  stretched per band between its 2nd and 98th percentile, the usual display
  stretch for RS imagery; the stretch is per image, so it is deterministic.
- ``bands`` picks three 0-based band indices in stored order (EuroSAT-MS:
  ``(3, 2, 1)`` for B04, B03, B02). Without it, images with three or more
  bands use the first three; one band is repeated to three; an alpha band is
  dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from aerith.data.errors import ImageReadError

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")

ImageInput = "str | Path | Image.Image | np.ndarray"


def _is_tiff(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) in _TIFF_MAGIC


def read_array(path: str | Path) -> np.ndarray:
    """Read an image file into an ``(H, W, C)`` array of its stored dtype.

    Raises:
        ImageReadError: the file is missing, truncated or not an image.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "image file not found")
    try:
        if _is_tiff(path):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                arr = series.asarray()
                axes = series.axes
            if arr.ndim == 3 and "Y" in axes and "X" in axes:
                # bands stored planar (C, Y, X) or as pages: move them last
                band_axis = next(i for i, a in enumerate(axes) if a not in "YX")
                arr = np.moveaxis(arr, band_axis, -1)
        else:
            with Image.open(path) as im:
                im.load()
                if im.mode == "P":
                    im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV", "1"):
                    im = im.convert("RGB")
                arr = np.asarray(im)
    except ImageReadError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise ImageReadError(path, f"cannot read image ({type(err).__name__}: {err})") from err
    except Exception as err:  # tifffile raises its own error types
        raise ImageReadError(path, f"cannot read image ({type(err).__name__}: {err})") from err
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageReadError(path, f"unsupported image shape {arr.shape}")
    return arr


def _stretch(band: np.ndarray) -> np.ndarray:
    band = band.astype(np.float64)
    finite = band[np.isfinite(band)]
    if finite.size == 0:
        return np.zeros(band.shape, np.uint8)
    lo, hi = np.percentile(finite, [2, 98])
    if hi <= lo:
        hi = lo + 1.0
    out = (np.nan_to_num(band, nan=lo) - lo) / (hi - lo)
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def array_to_rgb(arr: np.ndarray, bands: Sequence[int] | None = None, source: str | Path = "<array>") -> Image.Image:
    """Turn an ``(H, W)`` or ``(H, W, C)`` array into an RGB image (see module notes)."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    channels = arr.shape[2]
    if bands is not None:
        bands = tuple(int(b) for b in bands)
        if len(bands) not in (1, 3):
            raise ImageReadError(source, f"bands must name 1 or 3 band indices, got {bands}")
        bad = [b for b in bands if not 0 <= b < channels]
        if bad:
            raise ImageReadError(source, f"band index {bad[0]} out of range: the image has {channels} band(s)")
        arr = arr[:, :, list(bands)]
    elif channels == 4 or channels == 2:
        arr = arr[:, :, : channels - 1]  # drop alpha
    elif channels > 4:
        arr = arr[:, :, :3]
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.dtype == np.uint8:
        out = arr
    elif arr.dtype == bool:
        out = arr.astype(np.uint8) * 255
    else:
        out = np.stack([_stretch(arr[:, :, c]) for c in range(3)], axis=2)
    return Image.fromarray(np.ascontiguousarray(out), mode="RGB")


def load_rgb(image: str | Path | Image.Image | np.ndarray, bands: Sequence[int] | None = None) -> Image.Image:
    """Load a path, PIL image or array as an RGB ``PIL.Image``.

    Raises:
        ImageReadError: naming the path when the file is missing or unreadable.
    """
    if isinstance(image, Image.Image):
        if image.mode == "RGB" and bands is None:
            return image
        if image.mode == "P":
            image = image.convert("RGBA")
        return array_to_rgb(np.asarray(image), bands)
    if isinstance(image, np.ndarray):
        return array_to_rgb(image, bands)
    if isinstance(image, (str, Path)):
        path = Path(image)
        return array_to_rgb(read_array(path), bands, source=path)
    raise TypeError(f"expected a path, PIL image or numpy array, got {type(image).__name__}")


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image file without decoding all its pixels when possible."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "image file not found")
    try:
        if _is_tiff(path):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                shape = tif.series[0].shape
                axes = tif.series[0].axes
            h = shape[axes.index("Y")]
            w = shape[axes.index("X")]
            return int(w), int(h)
        with Image.open(path) as im:
            return im.size
    except Exception as err:
        raise ImageReadError(path, f"cannot read image header ({type(err).__name__}: {err})") from err
