"""AID (Aerial Image Dataset): 30 scene classes from Google Earth.

Datasheet:
    Paper: Gui-Song Xia, Jingwen Hu, Fan Hu, Baoguang Shi, Xiang Bai, Yanfei
        Zhong, Liangpei Zhang and Xiaoqiang Lu, "AID: A Benchmark Data Set for
        Performance Evaluation of Aerial Scene Classification", IEEE TGRS 2017.
    Size: 10,000 images, 220-420 per class; 600x600 px JPEG, 0.5-8 m.
    Format: ``AID/<ClassFolder>/<lowercaseclass>_<n>.jpg`` - folders in
        CamelCase, files in lower case, ``n`` from 1.
    Classes: the 30 CamelCase folder names below, in alphabetical order.
    Splits: none official; papers draw random 20% or 50% training sets. The
        default is the seeded stratified split (0.7/0.1/0.2); pass
        ``ratios=(0.2, 0.0, 0.8)`` or ``(0.5, 0.0, 0.5)`` for the papers'
        protocols, or ``split_file`` for a list of file names.
    Quirks tolerated: folder casing and separators (matched loosely);
        extensions are not trusted (images are opened by content).
    Root: the download folder holding ``AID/`` or ``AID/`` itself.
"""

from __future__ import annotations

from typing import ClassVar

from aerith.data.datasets.folder import FolderClassificationDataset


class AID(FolderClassificationDataset):
    """AID; options as :class:`~aerith.data.datasets.folder.FolderClassificationDataset`."""

    name = "aid"
    classes: ClassVar[tuple[str, ...]] = (
        "Airport", "BareLand", "BaseballField", "Beach", "Bridge", "Center", "Church", "Commercial",
        "DenseResidential", "Desert", "Farmland", "Forest", "Industrial", "Meadow", "MediumResidential",
        "Mountain", "Park", "Parking", "Playground", "Pond", "Port", "RailwayStation", "Resort", "River",
        "School", "SparseResidential", "Square", "Stadium", "StorageTanks", "Viaduct",
    )  # fmt: skip
    layouts = ("AID",)
