"""WHU-RS19: 19 scene classes from Google Earth, about 50 images each.

Datasheet:
    Paper: Gui-Song Xia, Wen Yang, Julie Delon, Yann Gousseau, Hong Sun and
        Henri Maitre, "Structural High-resolution Satellite Image Indexing",
        ISPRS TC VII Symposium 2010 (extended by Dai and Yang, IEEE GRSL 2011).
    Size: 1,005 images, 19 classes; 600x600 px JPEG, up to 0.5 m.
    Format: ``<dataset folder>/<class>/<class><sep>NN.jpg``.
    Classes: the 19 names below as DATASETS.md spells them (``footballField``
        and ``railwayStation`` in camelCase, the rest capitalised), in that
        order.
    Splits: none official; seeded stratified split (default 0.7/0.1/0.2) or
        a ``split_file`` of file names.
    Quirks tolerated: folder casing differs between copies
        (``footballField`` / ``railwaystation`` / ``Railway-Station``) and file
        separators mix ``_`` and ``-`` (``airport_01.jpg``, ``beach-01.jpg``):
        folders are matched loosely and file names are not parsed. The dataset
        folder's name varies between copies (``WHU-RS19``, ``RSDataset``;
        unconfirmed): pass it, or its parent when it is spelled ``WHU-RS19``.
        Non-image files (``Thumbs.db``) are passed over.
"""

from __future__ import annotations

from typing import ClassVar

from aerith.data.datasets.folder import FolderClassificationDataset


class WHURS19(FolderClassificationDataset):
    """WHU-RS19; options as :class:`~aerith.data.datasets.folder.FolderClassificationDataset`."""

    name = "whu-rs19"
    classes: ClassVar[tuple[str, ...]] = (
        "Airport", "Beach", "Bridge", "Commercial", "Desert", "Farmland", "footballField", "Forest",
        "Industrial", "Meadow", "Mountain", "Park", "Parking", "Pond", "Port", "railwayStation",
        "Residential", "River", "Viaduct",
    )  # fmt: skip
    layouts = ("WHU-RS19", "RSDataset")
