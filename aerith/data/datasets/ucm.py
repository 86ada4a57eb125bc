"""UC Merced Land Use (UCM): 21 land-use classes, 100 aerial images each.

Datasheet:
    Paper: Yi Yang and Shawn Newsam, "Bag-of-visual-words and spatial
        extensions for land-use classification", ACM SIGSPATIAL GIS 2010.
    Size: 2,100 images, 21 classes x 100; 0.3 m USGS orthophotos.
    Format: ``UCMerced_LandUse/Images/<class>/<class>NN.tif``, RGB TIFF,
        nominally 256x256 px.
    Classes: the 21 lower-case folder names below, in alphabetical order;
        prompts and targets spell the glued ones as words (``class_names``:
        ``denseresidential`` -> ``dense residential``).
    Splits: none official. torchgeo's lists ``uc_merced-{train,val,test}.txt``
        (bare file names) are used when passed as ``split_file`` or found
        beside ``UCMerced_LandUse/`` (torchgeo's place), in it or in ``root``;
        otherwise the seeded stratified
        split of :mod:`aerith.data.splits` (default 0.7/0.1/0.2).
    Quirks tolerated: a few TIFFs are not 256x256 (e.g. 247x256): they are
        indexed as they are and resized later by the processor; extensions are
        not trusted (images are opened by content).
    Root: the download folder, ``UCMerced_LandUse/`` or ``Images/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar

from aerith.data.datasets.folder import FolderClassificationDataset


class UCMerced(FolderClassificationDataset):
    """UC Merced Land Use; options as :class:`~aerith.data.datasets.folder.FolderClassificationDataset`."""

    name = "ucm"
    classes: ClassVar[tuple[str, ...]] = (
        "agricultural", "airplane", "baseballdiamond", "beach", "buildings", "chaparral",
        "denseresidential", "forest", "freeway", "golfcourse", "harbor", "intersection",
        "mediumresidential", "mobilehomepark", "overpass", "parkinglot", "river", "runway",
        "sparseresidential", "storagetanks", "tenniscourt",
    )  # fmt: skip
    class_names: ClassVar[Mapping[str, str]] = MappingProxyType({
        "baseballdiamond": "baseball diamond", "denseresidential": "dense residential", "golfcourse": "golf course",
        "mediumresidential": "medium residential", "mobilehomepark": "mobile home park", "parkinglot": "parking lot",
        "sparseresidential": "sparse residential", "storagetanks": "storage tanks", "tenniscourt": "tennis court",
    })  # fmt: skip
    layouts = ("UCMerced_LandUse/Images",)
    split_files = {"train": "uc_merced-train.txt", "val": "uc_merced-val.txt", "test": "uc_merced-test.txt"}
