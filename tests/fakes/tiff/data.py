"""Fake TIFFs in every layout users meet, written by two independent writers, and decompression bombs.

Pillow (through libtiff, as GIS and photo tools write them) writes the
striped LZW, JPEG, Adobe Deflate and PackBits files; tifffile writes ZSTD,
LZMA, tiled, BigTIFF, the predictor variants, 16-bit and 13-band files.
:func:`write_bomb` writes a tiled TIFF of a few KB that declares any size (one
compressed blank tile that every tile offset points to), byte for byte with
``struct``, the way a hostile or broken file looks.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image


@dataclass(frozen=True)
class Variant:
    """One TIFF layout: how it is written and what reading it must give."""

    write: Callable[[Path, np.ndarray], None]
    pixels: Callable[[], np.ndarray]
    lossy: bool = False


def rgb8() -> np.ndarray:
    """A smooth 40x48 RGB image (JPEG keeps it within a few levels)."""
    y, x = np.mgrid[0:40, 0:48]
    return np.stack([x * 5, y * 6, (x + y) * 2], axis=2).astype(np.uint8)


def gray16() -> np.ndarray:
    y, x = np.mgrid[0:40, 0:48]
    return (x * 1000 + y * 7).astype(np.uint16)


def bands13() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 10000, (40, 48, 13), dtype=np.uint16)


def reflectance() -> np.ndarray:
    y, x = np.mgrid[0:40, 0:48]
    return np.stack([x / 48, y / 40, (x + y) / 88], axis=2).astype(np.float32)


def _pillow(compression: str) -> Callable[[Path, np.ndarray], None]:
    def write(path: Path, pixels: np.ndarray) -> None:
        Image.fromarray(pixels).save(path, format="TIFF", compression=compression)

    return write


def _tifffile(**kwargs: object) -> Callable[[Path, np.ndarray], None]:
    def write(path: Path, pixels: np.ndarray) -> None:
        photometric = "rgb" if pixels.ndim == 3 and pixels.shape[2] == 3 else "minisblack"
        planar = {"planarconfig": "contig"} if pixels.ndim == 3 else {}  # bands, not pages
        tifffile.imwrite(path, pixels, photometric=photometric, **planar, **kwargs)

    return write


VARIANTS: dict[str, Variant] = {
    # Pillow / libtiff, striped
    "lzw": Variant(_pillow("tiff_lzw"), rgb8),
    "jpeg": Variant(_pillow("tiff_jpeg"), rgb8, lossy=True),
    "deflate": Variant(_pillow("tiff_adobe_deflate"), rgb8),
    "packbits": Variant(_pillow("packbits"), rgb8),
    # tifffile
    "zstd": Variant(_tifffile(compression="zstd"), rgb8),
    "lzma": Variant(_tifffile(compression="lzma"), rgb8),
    "lzw-tiled": Variant(_tifffile(compression="lzw", tile=(16, 16)), rgb8),
    "jpeg-tiled": Variant(_tifffile(compression="jpeg", tile=(16, 16)), rgb8, lossy=True),
    "deflate-striped-4-rows": Variant(_tifffile(compression="zlib", rowsperstrip=4), rgb8),
    "bigtiff-zstd-tiled": Variant(_tifffile(compression="zstd", tile=(16, 16), bigtiff=True), rgb8),
    "lzw-horizontal-predictor-16bit": Variant(_tifffile(compression="lzw", predictor=2), gray16),
    "deflate-float-predictor": Variant(_tifffile(compression="zlib", predictor=3), reflectance),
    "packbits-13-bands": Variant(_tifffile(compression="packbits"), bands13),
    "zstd-13-bands-planar-tiled": Variant(
        lambda path, px: tifffile.imwrite(path, np.moveaxis(px, 2, 0), photometric="minisblack", planarconfig="separate", compression="zstd", tile=(16, 16)),
        bands13,
    ),
}


def write_all(folder: Path) -> dict[str, tuple[Path, np.ndarray, bool]]:
    """Write every :data:`VARIANTS` file into ``folder``: ``{name: (path, pixels written, lossy)}``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, variant in VARIANTS.items():
        pixels = variant.pixels()
        path = folder / f"{name}.tif"
        variant.write(path, pixels)
        out[name] = (path, pixels, variant.lossy)
    return out


def write_bomb(path: Path, width: int, height: int, *, tile: int = 512, bigtiff: bool = False) -> Path:
    """A tiled, Deflate-compressed 8-bit grey TIFF declaring ``width`` x ``height`` in a few KB of tiles.

    Every tile offset points to the same compressed blank tile, so the file is
    small whatever it declares; decoding it would allocate ``width * height`` bytes.
    """
    blank = zlib.compress(bytes(tile * tile), 9)
    n_tiles = -(-width // tile) * -(-height // tile)
    if bigtiff:
        header, entry, count_fmt, off_fmt, long_type = b"II+\x00" + struct.pack("<HHQ", 8, 0, 16), "<HHQQ", "<Q", "Q", 16
        head_len = 16
    else:
        header, entry, count_fmt, off_fmt, long_type = b"II*\x00" + struct.pack("<I", 8), "<HHII", "<H", "I", 4
        head_len = 8
    data_at = head_len
    offsets_at = data_at + len(blank)
    counts_at = offsets_at + n_tiles * struct.calcsize(off_fmt)
    ifd_at = counts_at + n_tiles * struct.calcsize(off_fmt)
    tags = [  # (tag, type, count, value); SHORT = 3
        (256, 3 if width < 65536 else 4, 1, width),
        (257, 3 if height < 65536 else 4, 1, height),
        (258, 3, 1, 8),  # BitsPerSample
        (259, 3, 1, 8),  # Compression: Adobe Deflate
        (262, 3, 1, 1),  # Photometric: min-is-black
        (277, 3, 1, 1),  # SamplesPerPixel
        (284, 3, 1, 1),  # PlanarConfiguration
        (322, 3, 1, tile),
        (323, 3, 1, tile),
        # one value fits in the entry itself (the TIFF rule); more are stored at an offset
        (324, long_type, n_tiles, data_at if n_tiles == 1 else offsets_at),
        (325, long_type, n_tiles, len(blank) if n_tiles == 1 else counts_at),
    ]
    body = bytearray(header)
    if bigtiff:
        body[8:16] = struct.pack("<Q", ifd_at)
    else:
        body[4:8] = struct.pack("<I", ifd_at)
    body += blank
    body += struct.pack(f"<{n_tiles}{off_fmt}", *([data_at] * n_tiles))
    body += struct.pack(f"<{n_tiles}{off_fmt}", *([len(blank)] * n_tiles))
    body += struct.pack(count_fmt, len(tags))
    for tag, kind, count, value in tags:
        body += struct.pack(entry, tag, kind, count, value)
    body += struct.pack("<Q" if bigtiff else "<I", 0)  # no next IFD
    path.write_bytes(bytes(body))
    return path


def write_fake(root: Path, seed: int = 0) -> Path:
    """Every variant under ``root/tiffs`` (for the shared fake-data conventions); returns ``root``."""
    write_all(Path(root) / "tiffs")
    return Path(root)
