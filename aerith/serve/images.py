"""Images sent to the server: base64 data URLs, or local files under ``--allow-dir``; never fetched from afar.

Every failure is an :class:`ImageInputError` naming where in the request the image was
(``messages[0].content[1]``, ``images[3]``). Sizes are read from the header and checked
against ``max_pixels`` before any pixel is decoded. Decoding follows
:func:`aerith.imageio.read_array` (the file header decides the format; multi-band TIFF
kept whole; a GeoTIFF's nodata is NaN), so a data URL gives the same array as the same file read from disk.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
from PIL import Image, UnidentifiedImageError

from aerith.errors import ImageReadError
from aerith.imageio import image_size, mask_nodata, pil_array, read_array

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
BYTES_PER_PIXEL = 64  # decoded size allowed per pixel of --max-image-pixels: 32 bands of 16 bits
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[\w.+-]+=[^;,]*)*)(?P<b64>;base64)?,", re.I)


class ImageInputError(ValueError):
    """A request's image cannot be used; ``where`` names its place in the request."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


@dataclass(frozen=True)
class ImagePolicy:
    """What the server accepts: images of at most ``max_pixels``, local files only under ``allow_dir``."""

    max_pixels: int = 25_000_000
    allow_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels must be >= 1, got {self.max_pixels}")
        if self.allow_dir is not None and not Path(self.allow_dir).is_dir():
            raise ValueError(f"--allow-dir {self.allow_dir}: not a folder")


def load_image(url: str, where: str, policy: ImagePolicy) -> np.ndarray:
    """A data URL, ``file://`` URL or local path -> the image as an ``(H, W, C)`` array of its stored dtype.

    Raises:
        ImageInputError: remote URL, malformed data URL, path outside ``allow_dir``, too many
            pixels, or not a readable image.
    """
    if not isinstance(url, str) or not url.strip():
        raise ImageInputError(where, "empty image URL; send a base64 data URL (data:image/png;base64,...)")
    url = url.strip()
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "data":
        return decode_image_bytes(_data_url_bytes(url, where), where, policy.max_pixels)
    if scheme in ("http", "https", "ftp", "s3", "gs"):
        raise ImageInputError(
            where,
            f"remote image URLs are refused ({scheme}://...): the server fetches nothing; "
            "send the image inline as a base64 data URL (data:image/png;base64,...)",
        )
    if scheme == "file":
        try:
            path = Path(unquote(urlparse(url).path))
        except ValueError as err:  # "Invalid IPv6 URL"
            raise ImageInputError(where, f"malformed file URL ({err})") from err
    elif scheme and len(scheme) > 1:  # a one-letter scheme is a Windows drive
        raise ImageInputError(where, f"unsupported image URL scheme {scheme!r}; send a base64 data URL")
    else:
        path = Path(url)
    return _read_local(path, where, policy)


def _data_url_bytes(url: str, where: str) -> bytes:
    match = _DATA_URL.match(url)
    if match is None:
        raise ImageInputError(where, "malformed data URL; expected data:image/png;base64,<data>")
    if not match.group("b64"):
        raise ImageInputError(where, "the data URL is not base64-encoded (';base64,' missing)")
    payload = url[match.end() :]
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ImageInputError(where, f"the data URL's base64 payload does not decode ({err})") from err


def _read_local(path: Path, where: str, policy: ImagePolicy) -> np.ndarray:
    if policy.allow_dir is None:
        raise ImageInputError(
            where, f"local image paths are refused ({path}); start the server with --allow-dir DIR to read images under DIR"
        )
    if "\x00" in str(path):
        raise ImageInputError(where, "the image path holds a NUL character")
    root = Path(policy.allow_dir).resolve()
    try:
        resolved = (root / path).resolve()
    except (OSError, RuntimeError, ValueError) as err:  # a symlink loop, a name the system refuses
        raise ImageInputError(where, f"{path}: not a usable path ({err})") from err
    if not resolved.is_relative_to(root):
        raise ImageInputError(where, f"{path} is outside --allow-dir {root}")
    try:
        w, h = image_size(resolved)
        _check_pixels(w, h, where, policy.max_pixels)
        return read_array(resolved)
    except ImageReadError as err:
        raise ImageInputError(where, str(err)) from err


def _check_pixels(width: int, height: int, where: str, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageInputError(
            where, f"the image is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,} (--max-image-pixels)"
        )


def decode_image_bytes(raw: bytes, where: str, max_pixels: int) -> np.ndarray:
    """Encoded image bytes -> ``(H, W, C)`` array, size checked from the header first."""
    if not raw:
        raise ImageInputError(where, "the image is empty (0 bytes)")
    try:
        if raw[:4] in _TIFF_MAGIC:
            import tifffile

            with tifffile.TiffFile(io.BytesIO(raw)) as tif:
                series = tif.series[0]
                axes = series.axes
                _check_pixels(series.shape[axes.index("X")], series.shape[axes.index("Y")], where, max_pixels)
                nbytes = int(np.prod(series.shape, dtype=np.float64)) * series.dtype.itemsize
                if nbytes > BYTES_PER_PIXEL * max_pixels:  # many bands or pages behind few pixels
                    raise ImageInputError(
                        where, f"the image would decode into {nbytes:,} bytes (shape {tuple(series.shape)}), over "
                        f"{BYTES_PER_PIXEL} bytes per allowed pixel (--max-image-pixels {max_pixels:,})"
                    )
                arr = mask_nodata(series.asarray(), tif.pages[0].tags.get("GDAL_NODATA"), where)
            if arr.ndim == 3 and "Y" in axes and "X" in axes:
                band_axis = next(i for i, a in enumerate(axes) if a not in "YX")
                arr = np.moveaxis(arr, band_axis, -1)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies
                with Image.open(io.BytesIO(raw)) as im:
                    _check_pixels(*im.size, where, max_pixels)
                    im.load()
                    arr = pil_array(im)
    except ImageInputError:
        raise
    except UnidentifiedImageError as err:  # its message names an in-memory buffer, not the request
        raise ImageInputError(
            where, "cannot decode the image: not in a format the server reads (PNG, JPEG, TIFF/GeoTIFF, WebP, BMP, GIF)"
        ) from err
    except Image.DecompressionBombError as err:  # Pillow's own limit, checked before ours can be
        raise ImageInputError(where, f"the image is too large to decode ({err})") from err
    except Exception as err:  # PIL and tifffile raise many types for corrupt data
        raise ImageInputError(where, f"cannot decode the image ({type(err).__name__}: {err})") from err
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageInputError(where, f"unsupported image shape {arr.shape}")
    return arr


def data_url(path: str | Path, mime: str | None = None) -> str:
    """A file as a base64 data URL (what a client sends), e.g. ``data:image/png;base64,iVBOR...``."""
    path = Path(path)
    if mime is None:
        suffix = path.suffix.lower().lstrip(".")
        mime = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "tif": "image/tiff", "tiff": "image/tiff"}.get(suffix, f"image/{suffix or 'png'}")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


__all__ = ["ImageInputError", "ImagePolicy", "data_url", "decode_image_bytes", "load_image"]
