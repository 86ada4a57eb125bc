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
- Decompression bombs: a file is refused before its pixels are decoded when
  it declares more than twice ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (Pillow's
  own error threshold, applied by Pillow to PNG/JPEG and here to TIFF from the
  header's declared size), or when its decoded array would exceed the bytes
  of an 8-bit RGBA image of that many pixels (many bands or pages). Raise or
  disable ``PIL.Image.MAX_IMAGE_PIXELS`` to read larger files.
- Compressed TIFFs (LZW, Deflate, JPEG, ZSTD, PackBits, LZMA; tiled or
  striped; BigTIFF; horizontal and floating-point predictors) are decoded by
  tifffile with the ``imagecodecs`` codecs (a dependency: tifffile alone reads
  only uncompressed, Deflate and LZMA data).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from aerith.errors import ImageReadError

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")

ImageInput = "str | Path | Image.Image | np.ndarray"


def _is_tiff(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) in _TIFF_MAGIC


def _check_file(path: Path) -> None:
    """A missing path or a folder given as an image is an :class:`ImageReadError` naming it."""
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image file")
    if not path.is_file():
        raise ImageReadError(path, "image file not found")


def pixel_limit() -> int | None:
    """Most pixels (width x height) a file may declare: ``2 * PIL.Image.MAX_IMAGE_PIXELS``, or ``None`` when disabled."""
    limit = Image.MAX_IMAGE_PIXELS
    return None if limit is None else 2 * int(limit)


def _check_declared_size(path: Path, shape: Sequence[int], axes: str, dtype: np.dtype) -> tuple[int, int]:
    """``(width, height)`` of a TIFF series; refuses a decompression bomb before anything is decoded."""
    if "Y" not in axes or "X" not in axes:
        raise ImageReadError(path, f"unsupported TIFF layout: axes {axes!r}, shape {tuple(shape)} (no Y and X axes)")
    height, width = int(shape[axes.index("Y")]), int(shape[axes.index("X")])
    limit = pixel_limit()
    if limit is not None:
        if width * height > limit:
            raise ImageReadError(
                path,
                f"declares {width}x{height} = {width * height:,} pixels, more than the decompression-bomb limit of "
                f"{limit:,} (2 x PIL.Image.MAX_IMAGE_PIXELS); raise PIL.Image.MAX_IMAGE_PIXELS to read it",
            )
        nbytes = int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize
        if nbytes > 4 * limit:
            raise ImageReadError(
                path,
                f"would decode into {nbytes:,} bytes (shape {tuple(int(v) for v in shape)}, axes {axes!r}, {dtype}), more than "
                f"the decompression-bomb limit of {4 * limit:,} bytes (an 8-bit RGBA image of 2 x PIL.Image.MAX_IMAGE_PIXELS "
                "pixels); raise PIL.Image.MAX_IMAGE_PIXELS to read it",
            )
    return width, height


def _tiff_series(tif: object, path: Path):
    series = getattr(tif, "series", None)
    if not series:
        raise ImageReadError(path, "cannot read image (a TIFF header without an image)")
    return series[0]


def mask_nodata(arr: np.ndarray, tag: Any, source: str | Path) -> np.ndarray:
    """A TIFF's pixels with its ``GDAL_NODATA`` tag (``tag``, tifffile's) applied: float32 with NaN there.

    8-bit images and images without the tag are returned as they are; a tag that is not a number
    is a warning naming ``source`` (the pixels are then read as data).
    """
    if tag is None or arr.dtype in (np.uint8, np.bool_):
        return arr
    text = str(tag.value).strip().rstrip("\x00")
    try:
        nodata = float(text)
    except ValueError:
        warnings.warn(f"{source}: GDAL_NODATA tag {text!r} is not a number; every pixel is read as data", stacklevel=3)
        return arr
    out = arr.astype(np.float32)
    if not np.isnan(nodata):  # NaN nodata is NaN already
        out[arr == nodata] = np.nan
    return out


def _reason(err: Exception) -> str:
    text = f"{type(err).__name__}: {err}"
    if "imagecodecs" in text:
        text += "; install the codecs with: pip install imagecodecs"
    return text


def read_array(path: str | Path) -> np.ndarray:
    """Read an image file into an ``(H, W, C)`` array of its stored dtype, except:

    a GeoTIFF that declares a nodata value (its ``GDAL_NODATA`` tag) and is not 8-bit is
    returned as float32 with NaN there (twice a 16-bit image's memory), so that the contrast
    stretch of :func:`array_to_rgb` is computed on the valid pixels only (as ``aerith scan``
    masks nodata); an 8-bit one is returned as stored.

    Raises:
        ImageReadError: the file is missing, truncated or not an image.
    """
    path = Path(path)
    _check_file(path)
    try:
        if _is_tiff(path):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = _tiff_series(tif, path)
                axes = series.axes
                _check_declared_size(path, series.shape, axes, series.dtype)  # before any large allocation
                arr = series.asarray()
                arr = mask_nodata(arr, tif.pages[0].tags.get("GDAL_NODATA"), path)
            if arr.ndim == 3 and "Y" in axes and "X" in axes:
                # bands stored planar (C, Y, X) or as pages: move them last
                band_axis = next(i for i, a in enumerate(axes) if a not in "YX")
                arr = np.moveaxis(arr, band_axis, -1)
        else:
            with Image.open(path) as im:
                im.load()
                arr = pil_array(im)
    except ImageReadError:
        raise
    except Exception as err:  # Pillow, tifffile and the codecs raise many types (DecompressionBombError among them)
        raise ImageReadError(path, f"cannot read image ({_reason(err)})") from err
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageReadError(path, f"unsupported image shape {arr.shape}")
    return arr


def pil_array(im: Image.Image) -> np.ndarray:
    """The pixels of a PIL image; palette and colour spaces other than RGB are converted to RGB(A) first."""
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV", "1"):
        im = im.convert("RGB")
    return np.asarray(im)


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
    if arr.ndim != 3 or 0 in arr.shape:
        raise ImageReadError(source, f"expected an (H, W) or (H, W, C) array, got shape {arr.shape}")
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


def _refuse_alpha_band(mode: str, bands: Sequence[int] | None, source: str | Path) -> None:
    """``bands`` naming the alpha channel of an RGBA/LA/PA image is an error, not a colour band."""
    if bands is None or not mode.endswith("A"):
        return
    alpha = len(mode) - 1
    if alpha in bands:
        raise ImageReadError(
            source, f"bands {list(bands)} pick channel {alpha}, the alpha channel of this {mode} image, not a colour band"
        )


def load_rgb(image: str | Path | Image.Image | np.ndarray, bands: Sequence[int] | None = None) -> Image.Image:
    """Load a path, PIL image or array as an RGB ``PIL.Image``.

    Raises:
        ImageReadError: naming the path when the file is missing or unreadable.
    """
    if isinstance(image, Image.Image):
        if image.mode == "RGB" and bands is None:
            return image
        source = f"<PIL image, mode {image.mode}, {image.width}x{image.height}>"
        _refuse_alpha_band(image.mode, bands, source)
        return array_to_rgb(pil_array(image), bands, source=source)
    if isinstance(image, np.ndarray):
        # a caller's (C, H, W) array, as rasterio and torch give them: bands fewer than both sides
        if image.ndim == 3 and image.shape[0] <= 32 and image.shape[0] < min(image.shape[1:]):
            raise ImageReadError(
                "<array>", f"shape {image.shape} looks channels-first (C, H, W); pass (H, W, C), e.g. np.moveaxis(arr, 0, -1)"
            )
        return array_to_rgb(image, bands)
    if isinstance(image, (str, Path)):
        path = Path(image)
        arr = read_array(path)
        if bands is not None and not _is_tiff(path):  # a PNG's 4th channel is alpha; a TIFF's may be a band (NIR)
            with Image.open(path) as im:
                _refuse_alpha_band(im.mode, bands, path)
        return array_to_rgb(arr, bands, source=path)
    raise TypeError(f"expected a path, PIL image or numpy array, got {type(image).__name__}")


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image file without decoding all its pixels when possible."""
    path = Path(path)
    _check_file(path)
    try:
        if _is_tiff(path):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = _tiff_series(tif, path)
                shape, axes = series.shape, series.axes
            if "Y" not in axes or "X" not in axes:
                raise ImageReadError(path, f"unsupported TIFF layout: axes {axes!r}, shape {tuple(shape)}")
            return int(shape[axes.index("X")]), int(shape[axes.index("Y")])
        with Image.open(path) as im:
            return im.size
    except ImageReadError:
        raise
    except Exception as err:
        raise ImageReadError(path, f"cannot read image header ({_reason(err)})") from err


def _tail(path: Path, n: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - n))
        return f.read()


def check_image(path: str | Path, *, full: bool = False) -> tuple[int, int]:
    """Check that an image file will read, without decoding it unless ``full``; return ``(width, height)``.

    Header level (the default, about as fast as opening the file): the file
    exists and is not a folder; its header opens; its size is positive and
    within the decompression-bomb limit; and it is not cut short: a JPEG
    ends with its end-of-image marker, a PNG with its ``IEND`` chunk, and every
    strip or tile of a TIFF lies inside the file. ``full=True`` decodes the
    pixels too (:func:`read_array`), which also finds damage inside the data.

    Raises:
        ImageReadError: naming the file and what is wrong with it.
    """
    path = Path(path)
    _check_file(path)
    try:
        if _is_tiff(path):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                series = _tiff_series(tif, path)
                size = _check_declared_size(path, series.shape, series.axes, series.dtype)
                file_size = tif.filehandle.size
                for page in series.pages:
                    if page is None:
                        continue
                    for offset, count in zip(page.dataoffsets, page.databytecounts, strict=False):
                        if count and offset + count > file_size:
                            raise ImageReadError(
                                path, f"truncated: TIFF image data at bytes {offset}-{offset + count} lie past the end of the {file_size}-byte file"
                            )
        else:
            with Image.open(path) as im:  # raises DecompressionBombError past Pillow's limit
                size, kind = im.size, im.format
            if kind == "JPEG" and b"\xff\xd9" not in _tail(path, 4096):
                raise ImageReadError(path, "truncated: the JPEG has no end-of-image marker (FFD9) at its end")
            if kind == "PNG" and b"IEND" not in _tail(path, 64):
                raise ImageReadError(path, "truncated: the PNG has no IEND chunk at its end")
    except ImageReadError:
        raise
    except Exception as err:
        raise ImageReadError(path, f"cannot read image header ({_reason(err)})") from err
    if size[0] <= 0 or size[1] <= 0:
        raise ImageReadError(path, f"image of size {size[0]}x{size[1]}")
    if full:
        read_array(path)
    return int(size[0]), int(size[1])
