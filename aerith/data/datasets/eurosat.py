"""EuroSAT: Sentinel-2 land-use / land-cover patches, RGB and 13-band.

Datasheet:
    Paper: Patrick Helber, Benjamin Bischke, Andreas Dengel and Damian Borth,
        "EuroSAT: A Novel Dataset and Deep Learning Benchmark for Land Use and
        Land Cover Classification", IEEE JSTARS 2019 (first at IGARSS 2018).
    Size: 27,000 patches of 64x64 px at 10 m, 10 classes: AnnualCrop 3000,
        Forest 3000, HerbaceousVegetation 3000, Highway 2500, Industrial 2500,
        Pasture 2000, PermanentCrop 2500, Residential 3000, River 2500,
        SeaLake 3000.
    Format: RGB (``eurosat``): ``2750/<Class>/<Class>_<n>.jpg`` (newer zips:
        ``EuroSAT_RGB/``). Multispectral (``eurosat-ms``):
        ``ds/images/remote_sensing/otherDatasets/sentinel_2/tif/<Class>/<Class>_<n>.tif``
        (newer zips: ``EuroSAT_MS/``), 13-band GeoTIFF with the bands stored
        B01..B12 and **B8A last**.
    Classes: the 10 CamelCase folder names, in alphabetical order.
    Splits: none in the paper (80/20 random). torchgeo's lists
        ``eurosat-{train,val,test}.txt`` name the ``.jpg`` files; for the
        multispectral copy each name's extension is swapped to ``.tif``. They
        are used when passed as ``split_file`` or found in the folders from
        the class folders' parent up to the download folder, or in ``root``;
        otherwise the seeded stratified split
        (default 0.7/0.1/0.2). The same seed splits both copies alike.
    Choices: a multispectral sample carries ``meta["bands"] = (3, 2, 1)``
        (B04, B03, B02 in stored order) and ``meta["band_names"]``; pass
        ``bands=sample.meta["bands"]`` to :func:`aerith.imageio.load_rgb` for
        true colour. Each loader checks the first image it indexes so that the
        RGB loader pointed at the 13-band copy (or the reverse) fails with a
        clear message instead of yielding false colours.
    Root: the download folder, the dataset folder (``2750/``, ``EuroSAT_RGB/``,
        ``tif/``, ``EuroSAT_MS/``) or any folder on the path to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from aerith.data.datasets.folder import FolderClassificationDataset, find_paths, layout_candidates
from aerith.data.errors import DataError, DatasetNotFoundError, ImageReadError
from aerith.imageio import read_array

CLASSES: tuple[str, ...] = (
    "AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial",
    "Pasture", "PermanentCrop", "Residential", "River", "SeaLake",
)  # fmt: skip

BAND_NAMES: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A",
)  # fmt: skip
"""Band order as stored in the EuroSAT-MS GeoTIFFs (B8A last)."""

RGB_BANDS: tuple[int, int, int] = (BAND_NAMES.index("B04"), BAND_NAMES.index("B03"), BAND_NAMES.index("B02"))

_SPLIT_FILES = {"train": "eurosat-train.txt", "val": "eurosat-val.txt", "test": "eurosat-test.txt"}


def band_count(path: Path) -> int:
    """Number of bands of an image file, read by its content.

    Raises:
        ImageReadError: the file is missing or unreadable.
    """
    return int(read_array(path).shape[2])


class EuroSAT(FolderClassificationDataset):
    """EuroSAT RGB JPEGs; options as :class:`~aerith.data.datasets.folder.FolderClassificationDataset`."""

    name = "eurosat"
    classes: ClassVar[tuple[str, ...]] = CLASSES
    layouts = ("2750", "EuroSAT_RGB")
    split_files = _SPLIT_FILES

    def _find_image_dir(self) -> Path:
        try:
            return super()._find_image_dir()
        except DatasetNotFoundError as err:
            other = self._other_copy()
            if other is None:
                raise
            raise DataError(f"{err}; {other}") from err

    def _other_copy(self) -> str | None:
        """What to say when the root holds the other copy (13-band GeoTIFFs for the RGB loader)."""
        for relative in layout_candidates(EuroSATMS.layouts)[:-1]:
            if find_paths(self.root, relative):
                return (
                    f"{self.root} holds the 13-band EuroSAT-MS copy ({relative}/): the 'eurosat' loader reads the "
                    "RGB JPEGs (2750/ or EuroSAT_RGB/); load it with 'eurosat-ms' (true colour from B04, B03, B02)"
                )
        return None

    def _check_copy(self, bands: int, path: Path) -> None:
        if bands > 4:
            raise DataError(
                f"{path}: has {bands} bands; the RGB EuroSAT loader expects 3-band images "
                f"(for the 13-band GeoTIFFs use 'eurosat-ms')"
            )

    def _index(self) -> list[tuple[Path, str]]:
        entries = super()._index()
        if entries:
            first = entries[0][0]
            try:
                bands = band_count(first)
            except ImageReadError:
                bands = None  # reported when read, or by verify_images
            if bands is not None:
                self._check_copy(bands, first)
        return entries


class EuroSATMS(EuroSAT):
    """EuroSAT 13-band GeoTIFFs; samples carry ``meta["bands"] = (3, 2, 1)`` (B04, B03, B02)."""

    name = "eurosat-ms"
    layouts = ("ds/images/remote_sensing/otherDatasets/sentinel_2/tif", "EuroSAT_MS")
    split_suffix = ".tif"

    def _other_copy(self) -> str | None:
        for relative in layout_candidates(EuroSAT.layouts)[:-1]:
            if find_paths(self.root, relative):
                return f"{self.root} holds the RGB EuroSAT copy ({relative}/): load it with 'eurosat'"
        return None

    def _check_copy(self, bands: int, path: Path) -> None:
        if bands != len(BAND_NAMES):
            raise DataError(
                f"{path}: has {bands} band(s); EuroSAT-MS stores {len(BAND_NAMES)} "
                f"({', '.join(BAND_NAMES)}) (for the RGB JPEGs use 'eurosat')"
            )

    def _check_image(self, path: Path, full: bool) -> None:
        bands = band_count(path)  # reads the pixels: EuroSAT patches are 64x64
        if bands != len(BAND_NAMES):
            raise ImageReadError(path, f"has {bands} band(s), expected {len(BAND_NAMES)}")

    def _sample_meta(self, path: Path, cls: str) -> dict[str, Any]:
        return {"bands": RGB_BANDS, "band_names": BAND_NAMES}
