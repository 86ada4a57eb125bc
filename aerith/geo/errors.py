"""Errors of `aerith scan`: each names the file and the setting at fault."""

from __future__ import annotations

from pathlib import Path


class ScanError(ValueError):
    """Bad input to a scan: a raster that cannot be read, a setting that does not fit it, a foreign out folder."""


class RasterNotFoundError(ScanError, FileNotFoundError):
    """The raster file does not exist."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(f"{path}: raster file not found")


class MissingGeoExtraError(ImportError):
    """rasterio, shapely, pyproj or pyogrio is missing."""

    def __init__(self, module: str) -> None:
        super().__init__(
            f"aerith scan needs {module!r}, which is not installed: pip install 'aerith[geo]' "
            "(rasterio, shapely, pyproj, pyogrio)"
        )
