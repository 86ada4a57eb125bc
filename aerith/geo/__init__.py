"""Whole satellite scenes in, georeferenced answers out: ``aerith.geo.scan`` and ``aerith scan``.

Needs the ``geo`` extra (``pip install 'aerith[geo]'``: rasterio, shapely,
pyproj, pyogrio); importing this package works without it, scanning does not.
"""

from aerith.geo.errors import MissingGeoExtraError, RasterNotFoundError, ScanError
from aerith.geo.scan import TASKS, NotGeoreferencedWarning, ScanConfig, ScanResult, check_inputs, run_scan, scan

__all__ = [
    "TASKS",
    "MissingGeoExtraError",
    "NotGeoreferencedWarning",
    "RasterNotFoundError",
    "ScanConfig",
    "ScanError",
    "ScanResult",
    "check_inputs",
    "run_scan",
    "scan",
]
