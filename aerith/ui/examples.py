"""The page's example scenes: small SynthRS scenes shipped in ``aerith/assets`` (``ui-*`` files).

They were written by :func:`write_example_scenes` (``python -m aerith.ui.examples FOLDER``),
from SynthRS's generator with seed 0: a harbour (PNG), an airport (JPEG), an industrial area
(PNG), and a parking lot as a 13-band Sentinel-2-like GeoTIFF (uint16 reflectance x 10,000 in
the EuroSAT-MS band order B01 ... B12, B8A, the scene's red, green and blue in B04, B03, B02,
the other bands made up from them; UTM zone 33N, 10 m pixels), which shows the band picker's
default and the GeoJSON download. Each comes with a task and text to try.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ASSETS = Path(__file__).resolve().parent.parent / "assets"
S2_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A")
S2_CRS = "EPSG:32633"
S2_ORIGIN = (399960.0, 5900040.0)  # upper-left corner in UTM 33N (about 53.2 N, 13.5 E)
S2_PIXEL = 10.0


@dataclass(frozen=True)
class Example:
    """One example: the file, and the task and text the page is set to with it."""

    file: str
    task: str
    text: str
    label: str
    scene_class: str
    index: int

    @property
    def path(self) -> Path:
        return ASSETS / self.file


EXAMPLES: tuple[Example, ...] = (
    Example("ui-harbor.png", "ground", "the white ship on the left", "Harbour (PNG): ground a ship", "harbor", 1),
    Example("ui-airport.jpg", "question", "How many airplanes are there?", "Airport (JPEG): ask a question", "airport", 2),
    Example("ui-industrial.png", "classify", "", "Industrial area (PNG): classify", "industrial", 2),
    Example(
        "ui-parking-s2.tif", "ground", "the large yellow vehicle at the top right",
        "Parking lot (13-band GeoTIFF, UTM 33N): ground a vehicle", "parking lot", 1,
    ),
)


def example_rows() -> list[Example]:
    """The examples whose files are present (all of them in an installed package)."""
    return [e for e in EXAMPLES if e.path.is_file()]


def sentinel2_stack(rgb: np.ndarray) -> np.ndarray:
    """A made-up 13-band reflectance stack ``(13, H, W)`` uint16 whose B04, B03, B02 are ``rgb``'s red, green, blue."""
    r, g, b = (rgb[..., k].astype(np.float64) / 255.0 for k in range(3))
    vegetation = np.clip(g - (r + b) / 2, 0, 1)
    nir = np.clip(0.25 + 0.5 * vegetation + 0.2 * (r + g + b) / 3, 0, 1)
    swir = np.clip(0.6 * (r + g + b) / 3 + 0.1, 0, 1)
    bands = {
        "B01": 0.9 * b + 0.05, "B02": b, "B03": g, "B04": r, "B05": 0.7 * r + 0.3 * nir, "B06": 0.4 * r + 0.6 * nir,
        "B07": 0.2 * r + 0.8 * nir, "B08": nir, "B09": 0.3 * nir, "B10": np.full_like(r, 0.01), "B11": swir,
        "B12": 0.8 * swir, "B8A": 0.95 * nir,
    }  # fmt: skip
    return np.stack([np.round(np.clip(bands[name], 0, 1) * 10_000).astype(np.uint16) for name in S2_BANDS])


def write_example_scenes(folder: Path) -> list[Path]:
    """Write the example files into ``folder`` (needs the geo extra for the GeoTIFF)."""
    import rasterio
    from PIL import Image
    from rasterio.transform import from_origin

    from aerith.data.synthrs.layout import make_scene

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for example in EXAMPLES:
        rng = np.random.default_rng([0, example.index])
        image, _graph = make_scene(example.index, example.scene_class, 128, rng)
        path = folder / example.file
        if path.suffix == ".tif":
            stack = sentinel2_stack(image)
            profile = {
                "driver": "GTiff", "width": stack.shape[2], "height": stack.shape[1], "count": stack.shape[0],
                "dtype": "uint16", "crs": S2_CRS, "transform": from_origin(*S2_ORIGIN, S2_PIXEL, S2_PIXEL),
                "compress": "deflate", "predictor": 2,
            }  # fmt: skip
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(stack)
                for k, name in enumerate(S2_BANDS, start=1):
                    dst.set_band_description(k, name)
        elif path.suffix == ".jpg":
            Image.fromarray(image).save(path, quality=90)
        else:
            Image.fromarray(image).save(path, optimize=True)
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_example_scenes(Path(sys.argv[1]) if len(sys.argv) > 1 else ASSETS):
        print(p, p.stat().st_size)
