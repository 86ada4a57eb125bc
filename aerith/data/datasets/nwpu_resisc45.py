"""NWPU-RESISC45: 45 remote-sensing scene classes, 700 images each.

Datasheet:
    Paper: Gong Cheng, Junwei Han and Xiaoqiang Lu, "Remote Sensing Image
        Scene Classification: Benchmark and State of the Art", Proceedings of
        the IEEE 2017.
    Size: 31,500 images, 45 classes x 700; 256x256 px JPEG, 0.2-30 m.
    Format: ``NWPU-RESISC45/<class>/<class>_NNN.jpg``.
    Classes: the 45 underscored folder names below, in alphabetical order.
    Splits: none in the paper (it uses random 10%/20% training sets).
        torchgeo's lists ``resisc45-{train,val,test}.txt`` (bare file names)
        are used when passed as ``split_file`` or found beside or in the
        dataset folder, or in ``root``; otherwise the seeded stratified split
        (default 0.7/0.1/0.2).
    Quirks tolerated: the dataset folder spelled ``NWPU-RESISC45``,
        ``NWPU_RESISC45`` or ``RESISC45`` (any case; the last two unconfirmed);
        extensions are not trusted.
    Root: the download folder, the dataset folder, or the class folders' parent.
"""

from __future__ import annotations

from typing import ClassVar

from aerith.data.datasets.folder import FolderClassificationDataset


class NWPURESISC45(FolderClassificationDataset):
    """NWPU-RESISC45; options as :class:`~aerith.data.datasets.folder.FolderClassificationDataset`."""

    name = "nwpu-resisc45"
    classes: ClassVar[tuple[str, ...]] = (
        "airplane", "airport", "baseball_diamond", "basketball_court", "beach", "bridge", "chaparral",
        "church", "circular_farmland", "cloud", "commercial_area", "dense_residential", "desert",
        "forest", "freeway", "golf_course", "ground_track_field", "harbor", "industrial_area",
        "intersection", "island", "lake", "meadow", "medium_residential", "mobile_home_park",
        "mountain", "overpass", "palace", "parking_lot", "railway", "railway_station",
        "rectangular_farmland", "river", "roundabout", "runway", "sea_ice", "ship", "snowberg",
        "sparse_residential", "stadium", "storage_tank", "tennis_court", "terrace",
        "thermal_power_station", "wetland",
    )  # fmt: skip
    layouts = ("NWPU-RESISC45", "RESISC45")
    split_files = {"train": "resisc45-train.txt", "val": "resisc45-val.txt", "test": "resisc45-test.txt"}
