"""DIOR-RSVG visual grounding, and the VOC-XML reading that RSVG shares."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from aerith.data.datasets.base import RSDataset
from aerith.data.errors import DatasetNotFoundError, ImageReadError, RecordError
from aerith.data.sample import Box, Sample
from aerith.data.text import read_text
from aerith.imageio import image_size as read_image_size

CATEGORIES = (
    "Expressway-Service-area", "Expressway-toll-station", "airplane", "airport", "baseballfield",
    "basketballcourt", "bridge", "chimney", "dam", "golffield", "groundtrackfield", "harbor",
    "overpass", "ship", "stadium", "storagetank", "tenniscourt", "trainstation", "vehicle", "windmill",
)  # fmt: skip

_OBJECT_TAG = re.compile(rb"<object[\s>/]")
# DIOR-RSVG's folder names, as :func:`aerith.data.datasets.folder.class_key` reduces them ("RSVGD": an older release)
DIOR_RSVG_FOLDERS = ("diorrsvg", "rsvgd")


@dataclass(frozen=True)
class VOCObject:
    """One ``<object>`` of a VOC-like grounding annotation."""

    category: str | None
    description: str
    box: Box


_XML_DECLARATION = re.compile(rb"^(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"'][^>]*\?>")


def read_xml(path: Path) -> ET.Element:
    """Parse an annotation file; a malformed one raises :class:`RecordError` naming it.

    A file that declares a multi-byte encoding expat cannot read itself (``gb2312``,
    ``GBK``, ``Shift_JIS`` ..., as tools on Chinese or Japanese systems write) is decoded
    with Python's codec first.
    """
    try:
        return ET.parse(path).getroot()
    except (ET.ParseError, LookupError) as err:  # LookupError: an encoding Python does not know
        raise RecordError(path, None, None, f"malformed XML ({err})") from err
    except ValueError as err:  # "multi-byte encodings are not supported" (expat)
        raw = path.read_bytes()
        declared = _XML_DECLARATION.match(raw)
        if declared is None:
            raise RecordError(path, None, None, f"malformed XML ({err})") from err
        encoding = declared.group(1).decode("ascii")
        try:
            text = raw[declared.end() :].decode(encoding)
            return ET.fromstring(text)
        except (UnicodeDecodeError, LookupError) as decode_err:
            raise RecordError(path, None, None, f"malformed XML: not {encoding} text as it declares ({decode_err})") from err
        except ET.ParseError as parse_err:
            raise RecordError(path, None, None, f"malformed XML ({parse_err})") from err


def count_object_tags(path: Path) -> int:
    """Number of ``<object>`` opening tags in a file that may not parse (keeps later indices aligned)."""
    return len(_OBJECT_TAG.findall(path.read_bytes()))


def _text(element: ET.Element, tag: str, file: Path, record: object) -> str:
    child = element.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise RecordError(file, record, tag, "missing or empty")
    return child.text.strip()


def _number(element: ET.Element, tag: str, file: Path, record: object) -> float:
    value = _text(element, tag, file, record)
    try:
        number = float(value)
    except ValueError as err:
        raise RecordError(file, record, tag, f"not a number: {value!r}") from err
    if not math.isfinite(number):
        raise RecordError(file, record, tag, f"not a finite number: {value!r}")
    return number


def xml_image_size(root: ET.Element, file: Path) -> tuple[int, int] | None:
    """``(width, height)`` from ``<size>``, or ``None`` when the file has no ``<size>``."""
    size = root.find("size")
    if size is None:
        return None
    width, height = (int(_number(size, tag, file, "size")) for tag in ("width", "height"))
    if width <= 0 or height <= 0:
        raise RecordError(file, "size", "width", f"image size must be positive, got {(width, height)}")
    return width, height


def check_box(box: Box, size: tuple[int, int] | None, file: Path, record: object, field: str) -> Box:
    """Reject a box of zero or negative area, or one that leaves the image (``size`` = ``(w, h)``)."""
    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        raise RecordError(file, record, field, f"zero or negative area: {box}")
    if x1 < 0 or y1 < 0 or (size is not None and (x2 > size[0] or y2 > size[1])):
        where = f"the {size[0]}x{size[1]} image" if size is not None else "the image"
        raise RecordError(file, record, field, f"{box} lies outside {where}")
    return box


def parse_object(obj: ET.Element, file: Path, record: object, size: tuple[int, int] | None) -> VOCObject:
    """Read ``<name>``, ``<description>`` and ``<bndbox>`` by tag, whatever other children exist."""
    name = obj.find("name")
    category = name.text.strip() if name is not None and name.text and name.text.strip() else None
    description = _text(obj, "description", file, record)
    bndbox = obj.find("bndbox")
    if bndbox is None:
        raise RecordError(file, record, "bndbox", "missing")
    x1, y1, x2, y2 = (_number(bndbox, tag, file, record) for tag in ("xmin", "ymin", "xmax", "ymax"))
    return VOCObject(category, description, check_box((x1, y1, x2, y2), size, file, record, "bndbox"))


def header_size(image: Path, file: Path, record: object) -> tuple[int, int]:
    """Image ``(width, height)`` from its header, as a :class:`RecordError` of ``file`` when unreadable."""
    try:
        return read_image_size(image)
    except ImageReadError as err:
        raise RecordError(file, record, "image", str(err)) from err


class VOCGrounding(RSDataset):
    """Grounding from per-image VOC XML (``Annotations/*.xml``) with object-index split files.

    Subclasses set ``folder_names`` (accepted sub-folders of ``root``),
    ``image_dirs``, ``image_exts`` and whether ``<name>`` is required. Object
    indices count ``<object>``s over all XML files in sorted order, then in
    document order.
    """

    task = "vg"
    folder_names: ClassVar[tuple[str, ...]] = ()
    image_dirs: ClassVar[tuple[str, ...]] = ("JPEGImages",)
    image_exts: ClassVar[tuple[str, ...]] = (".jpg",)
    require_category: ClassVar[bool] = True

    def _image_dir(self, folder: Path) -> Path:
        for name in self.image_dirs:
            if (folder / name).is_dir():
                return folder / name
        raise DatasetNotFoundError(folder / self.image_dirs[0], f"the {self.name} image folder ({' or '.join(self.image_dirs)})")

    def _read_object_split(self, split_file: Path) -> dict[int, int]:
        """Object index -> line number; bad lines are reported."""
        if not split_file.is_file():
            raise DatasetNotFoundError(split_file, f"the {self.name} {self.split} split: one 0-based object index per line")
        wanted: dict[int, int] = {}
        for line_no, line in enumerate(read_text(split_file).splitlines(), start=1):
            value = line.strip()
            if not value:
                continue
            if not value.isdigit():
                self.bad.handle(RecordError(split_file, f"line {line_no}", None, f"not an object index: {value!r}"))
            elif int(value) in wanted:
                self.bad.handle(RecordError(split_file, f"line {line_no}", None, f"repeats object index {value} of line {wanted[int(value)]}"))
            else:
                wanted[int(value)] = line_no
        return wanted

    def _image(self, image_dir: Path, xml_path: Path, root: ET.Element) -> Path:
        """``<image_dir>/<filename>`` when the XML names one that exists, else ``<image_dir>/<stem><ext>``."""
        candidates = [image_dir / f"{xml_path.stem}{ext}" for ext in self.image_exts]
        filename = root.find("filename")
        if filename is not None and filename.text and filename.text.strip():
            candidates.insert(0, image_dir / Path(filename.text.strip()).name)
        for image in candidates:
            if image.is_file():
                return image
        raise RecordError(xml_path, None, "filename", f"image {candidates[0]} not found")

    def _load_object_split(self, folder: Path, split_file: Path) -> list[Sample]:
        """The samples of a split file of object indices, in object order."""
        wanted = self._read_object_split(split_file)
        samples, n_objects = self._walk(folder, lambda xml_path, first, n: [k for k in range(n) if first + k in wanted])
        for index in sorted(i for i in wanted if i >= n_objects):
            message = f"object index {index} is beyond the {n_objects} objects in {folder / 'Annotations'}"
            self.bad.handle(RecordError(split_file, f"line {wanted[index]}", None, message))
        return samples

    def _walk(self, folder: Path, pick: Callable[[Path, int, int], list[int]]) -> tuple[list[Sample], int]:
        """Read every annotation file in sorted order; return the picked samples and the number of objects.

        Args:
            pick: ``(xml_path, first_object_index, n_objects) -> positions`` of the
                file's objects that belong to the split.
        """
        image_dir = self._image_dir(folder)
        samples: list[Sample] = []
        n_objects = 0
        for xml_path in sorted((folder / "Annotations").glob("*.xml"), key=lambda p: p.name):
            first = n_objects
            try:
                root = read_xml(xml_path)
            except RecordError as err:
                n_objects += count_object_tags(xml_path)
                lost = len(pick(xml_path, first, n_objects - first))
                message = (
                    f"{err.message}; counted its {n_objects - first} <object> tag(s) to keep later indices aligned, "
                    f"{lost} of them in this split"
                )
                self.bad.handle(RecordError(xml_path, f"objects {first}-{n_objects - 1}", None, message))
                continue
            objects = root.findall("object")
            n_objects += len(objects)
            hits = pick(xml_path, first, len(objects))
            if hits:
                samples.extend(self._image_samples(image_dir, xml_path, root, objects, first, hits))
        return samples, n_objects

    def _image_samples(
        self, image_dir: Path, xml_path: Path, root: ET.Element, objects: list[ET.Element], first: int, hits: list[int]
    ) -> list[Sample]:
        """Samples of the objects ``hits`` of one annotation file (its image is checked once)."""
        try:
            image = self._image(image_dir, xml_path, root)
            size = xml_image_size(root, xml_path) or header_size(image, xml_path, "size")
        except RecordError as err:
            for k in hits:  # reported for each object of the split it costs
                self.bad.handle(RecordError(xml_path, f"object {first + k}", err.field, err.message))
            return []
        samples = []
        for k in hits:
            record = f"object {first + k}"
            try:
                obj = parse_object(objects[k], xml_path, record, size)
                if obj.category is None and self.require_category:
                    raise RecordError(xml_path, record, "name", "missing or empty")
            except RecordError as err:
                self.bad.handle(err)
                continue
            meta = {"object_index": first + k, "category": obj.category, "image_id": xml_path.stem, "image_size": size}
            samples.append(Sample(image=image, task="vg", prompt=obj.description, box=obj.box, meta=meta))
        return samples


class DIORRSVG(VOCGrounding):
    """DIOR-RSVG (Zhan, Xiong and Yuan, "RSVG: Exploring Data and Models for Visual Grounding on Remote Sensing Data", TGRS 2023).

    Datasheet:
        Size: 17,402 DIOR images of 800x800 px; 38,320 referring expressions over
            20 categories (:data:`CATEGORIES`).
        Format: ``DIOR_RSVG/Annotations/NNNNN.xml`` (VOC-like, one file per image,
            several ``<object>`` each with ``<name>``, ``<bndbox>`` of integer
            pixels and ``<description>``, the referring expression) and
            ``DIOR_RSVG/JPEGImages/NNNNN.jpg``.
        Splits: ``DIOR_RSVG/{train,val,test}.txt`` (26,991 / 3,829 / 7,500 lines).
            Each line is the 0-based index of an ``<object>`` counted over ALL XML
            files in sorted order and over objects in document order - not an
            image id (the maintainers confirm this; their loader counts the same way).
        Quirks tolerated: the older release's folder name ``RSVGD`` (any case,
            ``-``/``_`` ignored); elements are found by tag, never by position (``<pose>``,
            ``<difficult>`` ... appear); a malformed XML file cannot be read, so its
            objects are counted from its ``<object>`` tags to keep later indices
            aligned (reported once per file); ``-`` in the folder name.
        Choices: samples come in object order (the released split files are
            sorted, so this is also file order); one sample per object of the
            split; a box of zero area, with a negative corner, or beyond
            ``<size>`` (or the image header when ``<size>`` is absent) is a bad
            record, as are split lines that are not indices, repeat a line, or
            point past the last object. A missing image is reported once per
            object of the split that uses it. Some code calls this dataset "RSVG";
            here ``rsvg`` is Sun et al.'s dataset.
        Samples: ``task="vg"``, ``prompt`` = the expression, ``box`` =
            ``(xmin, ymin, xmax, ymax)`` pixels, ``targets=()``; ``meta``:
            ``object_index``, ``category``, ``image_id`` (file stem), ``image_size`` ``(w, h)``.
        Root: the ``DIOR_RSVG`` (or ``RSVGD``) folder or its parent; a parent
            holding two such folders is refused, listing them.
    """

    name = "dior-rsvg"
    folder_names = ("DIOR_RSVG", "DIOR-RSVG", "RSVGD")

    def _load(self) -> list[Sample]:
        from aerith.data.datasets.folder import class_key
        from aerith.data.datasets.locate import pick_one

        children = [c for c in sorted(self.root.iterdir()) if c.is_dir() and class_key(c.name) in DIOR_RSVG_FOLDERS]
        found = [folder for folder in (self.root, *children) if (folder / "Annotations").is_dir()]
        folder = pick_one(self.root, found, "the DIOR-RSVG folder of XML annotations")
        if folder is not None:
            return self._load_object_split(folder, folder / f"{self.split}.txt")
        expected = "the DIOR-RSVG folder of XML annotations (root = DIOR_RSVG/ or RSVGD/, or its parent)"
        if any(p.is_file() and p.name.lower().startswith("rsvg_") and p.name.lower().endswith(".pth") for p in self.root.iterdir()):
            expected += f"; {self.root} holds rsvg_<split>.pth files: that is RSVG (Sun et al.), load it with 'rsvg'"
        raise DatasetNotFoundError(self.root / "DIOR_RSVG" / "Annotations", expected)
