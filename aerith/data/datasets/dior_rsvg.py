"""DIOR-RSVG (Zhan et al., "RSVG: Exploring Data and Models for Visual Grounding on Remote Sensing Data", TGRS 2023).

Datasheet:
    Size: 17,402 DIOR images of 800x800 px, 38,320 referring expressions over 20 categories.
    Format: ``DIOR_RSVG/Annotations/NNNNN.xml`` (VOC-like, one file per image, several
        ``<object>`` each with ``<name>``, ``<bndbox>`` of integer pixels and
        ``<description>``, the referring expression), ``DIOR_RSVG/JPEGImages/NNNNN.jpg``.
    Splits: ``DIOR_RSVG/{train,val,test}.txt`` (26,991 / 3,829 / 7,500 lines). Each line is
        the 0-based index of an ``<object>`` counted over ALL XML files in sorted order and
        over objects in document order - not an image id (the maintainers confirm this).
    Quirks handled: elements are found by tag, never by position (``<pose>``,
        ``<difficult>`` and others appear); some code calls this dataset "RSVG" - that
        name is a different dataset here (``rsvg``).
    Samples: ``task="vg"``, ``prompt`` = the expression, ``box`` = ``(xmin, ymin, xmax, ymax)``
        pixels; ``meta``: ``object_index``, ``category``, ``image_id``, ``image_size``.
    Root: the ``DIOR_RSVG`` folder or its parent.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from aerith.data.datasets.base import RSDataset
from aerith.data.errors import DatasetNotFoundError, RecordError
from aerith.data.sample import Sample

CATEGORIES = (
    "Expressway-Service-area", "Expressway-toll-station", "airplane", "airport", "baseballfield",
    "basketballcourt", "bridge", "chimney", "dam", "golffield", "groundtrackfield", "harbor",
    "overpass", "ship", "stadium", "storagetank", "tenniscourt", "trainstation", "vehicle", "windmill",
)  # fmt: skip


def _text(element: ET.Element, tag: str, file: Path, record: object) -> str:
    child = element.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise RecordError(file, record, tag, "missing")
    return child.text.strip()


def _number(element: ET.Element, tag: str, file: Path, record: object) -> float:
    value = _text(element, tag, file, record)
    try:
        return float(value)
    except ValueError as err:
        raise RecordError(file, record, tag, f"not a number: {value!r}") from err


class DIORRSVG(RSDataset):
    name = "dior-rsvg"
    task = "vg"

    def _folder(self) -> Path:
        for folder in (self.root, self.root / "DIOR_RSVG"):
            if (folder / "Annotations").is_dir():
                return folder
        raise DatasetNotFoundError(self.root / "DIOR_RSVG" / "Annotations", "the DIOR-RSVG annotation folder of XML files")

    def _load(self) -> list[Sample]:
        folder = self._folder()
        split_file = folder / f"{self.split}.txt"
        if not split_file.is_file():
            raise DatasetNotFoundError(split_file, f"the DIOR-RSVG {self.split} split: one object index per line")
        wanted: dict[int, int] = {}
        for line_no, line in enumerate(split_file.read_text().splitlines(), start=1):
            if line.strip():
                try:
                    wanted[int(line.strip())] = line_no
                except ValueError:
                    self.bad.handle(RecordError(split_file, line_no, None, f"not an object index: {line.strip()!r}"))
        samples: list[Sample] = []
        object_index = 0
        for xml_path in sorted((folder / "Annotations").glob("*.xml")):
            try:
                root = ET.parse(xml_path).getroot()
            except ET.ParseError as err:
                # the file's objects cannot be counted, so every later index would shift: always an error
                raise RecordError(xml_path, None, None, f"malformed XML ({err}); object indices after it cannot be counted") from err
            objects = root.findall("object")
            first, object_index = object_index, object_index + len(objects)
            if not any(first + k in wanted for k in range(len(objects))):
                continue
            try:
                size = root.find("size")
                image_size = None
                if size is not None:
                    image_size = (int(_number(size, "width", xml_path, "size")), int(_number(size, "height", xml_path, "size")))
                image = folder / "JPEGImages" / f"{xml_path.stem}.jpg"
                if not image.is_file():
                    raise RecordError(xml_path, xml_path.stem, "filename", f"image {image} not found")
            except RecordError as err:
                self.bad.handle(err)
                continue
            for k, obj in enumerate(objects):
                if first + k not in wanted:
                    continue
                try:
                    samples.append(self._sample(obj, first + k, xml_path, image, image_size))
                except RecordError as err:
                    self.bad.handle(err)
        beyond = [i for i in wanted if i >= object_index]
        if beyond:
            self.bad.handle(
                RecordError(split_file, wanted[min(beyond)], None, f"{len(beyond)} object index(es) beyond the {object_index} objects in Annotations/")
            )
        return samples

    def _sample(self, obj: ET.Element, index: int, xml_path: Path, image: Path, image_size) -> Sample:
        record = f"object {index}"
        category = _text(obj, "name", xml_path, record)
        description = _text(obj, "description", xml_path, record)
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise RecordError(xml_path, record, "bndbox", "missing")
        x1, y1, x2, y2 = (_number(bndbox, t, xml_path, record) for t in ("xmin", "ymin", "xmax", "ymax"))
        if x2 <= x1 or y2 <= y1:
            raise RecordError(xml_path, record, "bndbox", f"zero or negative area: {(x1, y1, x2, y2)}")
        if image_size is not None and (x1 < 0 or y1 < 0 or x2 > image_size[0] or y2 > image_size[1]):
            raise RecordError(xml_path, record, "bndbox", f"{(x1, y1, x2, y2)} lies outside the {image_size} image")
        meta = {"object_index": index, "category": category, "image_id": xml_path.stem}
        if image_size is not None:
            meta["image_size"] = image_size
        return Sample(image=image, task="vg", prompt=description, box=(x1, y1, x2, y2), meta=meta)
