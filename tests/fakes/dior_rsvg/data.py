"""Fake DIOR-RSVG in its real layout, and the writer of VOC grounding trees it uses.

Quirks written: ``<pose>`` and ``<difficult>`` children around ``<bndbox>`` and
``<description>`` (readers must find elements by tag), several objects per
image, and split files of object indices counted over all XML files.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

# (category, (xmin, ymin, xmax, ymax) pixels, referring expression)
VGObject = tuple[str, tuple[int, int, int, int], str]

OBJECTS: list[list[VGObject]] = [  # per image
    [("ship", (2, 3, 10, 12), "the ship on the left"), ("harbor", (0, 0, 30, 20), "the large harbor")],
    [("vehicle", (5, 5, 9, 9), "the small white vehicle")],
    [
        ("storagetank", (1, 1, 6, 6), "the storage tank at the top left"),
        ("storagetank", (20, 20, 30, 30), "the storage tank at the bottom right"),
        ("chimney", (12, 2, 14, 20), "the tall chimney & its shadow"),
    ],
]
# object indices over all files: 0 ship, 1 harbor | 2 vehicle | 3 tank TL, 4 tank BR, 5 chimney
SPLITS = {"train": [0, 2, 3, 5], "val": [1], "test": [4]}


def voc_xml(filename: str, size: tuple[int, int], objects: Sequence[VGObject]) -> str:
    """One annotation file as DIOR-RSVG writes it: ``<source>``, ``<size>``, objects with extra children."""
    ann = ET.Element("annotation")
    ET.SubElement(ann, "filename").text = filename
    ET.SubElement(ET.SubElement(ann, "source"), "database").text = "DIOR"
    size_el = ET.SubElement(ann, "size")
    for tag, value in (("width", size[0]), ("height", size[1]), ("depth", 3)):
        ET.SubElement(size_el, tag).text = str(value)
    ET.SubElement(ann, "segmented").text = "0"
    for name, box, description in objects:
        obj = ET.SubElement(ann, "object")
        ET.SubElement(obj, "name").text = name
        ET.SubElement(obj, "pose").text = "Unspecified"
        bndbox = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box):
            ET.SubElement(bndbox, tag).text = str(value)
        ET.SubElement(obj, "difficult").text = "0"
        ET.SubElement(obj, "description").text = description
    ET.indent(ann, space="  ")
    return '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + ET.tostring(ann, encoding="unicode")


def write_voc_tree(folder: Path, images: Sequence[tuple[str, np.ndarray, Sequence[VGObject]]], image_dir: str = "JPEGImages") -> list[str]:
    """Write ``folder/Annotations/<stem>.xml`` and ``folder/<image_dir>/<stem>.jpg``; returns the stems in order.

    Args:
        images: ``(stem, HxWx3 uint8 array, objects)`` per image.
    """
    (folder / "Annotations").mkdir(parents=True, exist_ok=True)
    (folder / image_dir).mkdir(exist_ok=True)
    for stem, pixels, objects in images:
        Image.fromarray(pixels).save(folder / image_dir / f"{stem}.jpg")
        size = (pixels.shape[1], pixels.shape[0])
        (folder / "Annotations" / f"{stem}.xml").write_text(voc_xml(f"{stem}.jpg", size, objects), encoding="utf-8")
    return [stem for stem, _, _ in images]


def write_dior_rsvg(folder: Path, images: Sequence[tuple[str, np.ndarray, Sequence[VGObject]]], splits: Mapping[str, Sequence[int]]) -> Path:
    """Write a DIOR-RSVG tree under ``folder`` (the ``DIOR_RSVG`` folder itself).

    Args:
        images: ``(stem, pixels, objects)`` per image; stems sort in the order given.
        splits: split name -> 0-based object indices counted over all images in
            sorted stem order and objects in the order given.
    """
    write_voc_tree(folder, images)
    for split, indices in splits.items():
        (folder / f"{split}.txt").write_text("".join(f"{i}\n" for i in indices))
    return folder


def write_fake(root: Path, seed: int = 0) -> Path:
    """Write ``root/DIOR_RSVG`` (3 images of 32x32, 6 objects) and return ``root``."""
    rng = np.random.default_rng(seed)
    images = [(f"{i + 1:05d}", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), objs) for i, objs in enumerate(OBJECTS)]
    write_dior_rsvg(Path(root) / "DIOR_RSVG", images, SPLITS)
    return Path(root)
