"""RSVG visual grounding (Sun et al. 2022), whose raw format is unconfirmed: VOC XML or line files."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Literal

from aerith.data.datasets.dior_rsvg import VOCGrounding, check_box, header_size
from aerith.data.errors import DatasetNotFoundError, OnBad, RecordError
from aerith.data.sample import Sample

SplitBy = Literal["auto", "object", "image"]

LINE_SUFFIXES = (".csv", ".tsv", ".txt")
COMBINED_FILES = ("annotations.csv", "rsvg.csv", "annotations.tsv", "rsvg.tsv")
COLUMNS = {  # canonical column -> header spellings accepted (lower case)
    "image": ("image", "img", "filename", "file_name", "file", "image_name", "image_path", "path"),
    "xmin": ("xmin", "x1", "left"),
    "ymin": ("ymin", "y1", "top"),
    "xmax": ("xmax", "x2", "right"),
    "ymax": ("ymax", "y2", "bottom"),
    "expression": ("expression", "expr", "sentence", "description", "text", "query", "phrase", "caption", "ref"),
    "split": ("split", "subset", "set"),
    "category": ("category", "class", "name", "label"),
}
SPLIT_ALIASES = {"training": "train", "valid": "val", "validation": "val", "testing": "test"}


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


class RSVG(VOCGrounding):
    """RSVG (Sun, Feng, Li, Ye, Kang and Huang, "Visual Grounding in Remote Sensing Images", ACM MM 2022).

    Datasheet:
        Size: about 4,239 images and 7,933 referring expressions (with numeric
            geospatial relations), split 5,505 / 1,201 / 1,227.
        Format (unconfirmed: no primary source describes the raw download, so
            two layouts are accepted, checked in this order):

            1. VOC XML as DIOR-RSVG: ``Annotations/<stem>.xml`` with ``<object>``s of
               ``<description>``, ``<bndbox>`` and optionally ``<name>``; images in
               ``JPEGImages/``, ``images/`` or ``Images/`` (``.jpg``, ``.png``,
               ``.tif``). The split is ``<split>.txt``, whose lines are either
               object indices counted as in DIOR-RSVG, or image names (stem, with or
               without extension; every object of those images is a sample).
               ``split_by="auto"`` reads lines of digits without leading zeros as
               object indices unless every line names an existing annotation
               file, and anything else as image names; ``"object"`` or
               ``"image"`` decides it.
            2. Line files ``image,xmin,ymin,xmax,ymax,expression``: one per split
               (``<split>.csv``, ``<split>.tsv`` or ``<split>.txt``), or one file
               (``annotations.csv`` / ``rsvg.csv``) with a ``split`` column. A header
               row is optional (then columns go by name; spellings such as
               ``filename``, ``x1``, ``sentence`` are accepted); without one, the
               columns are positional and commas after the fifth field belong to
               the expression. Tabs are accepted instead of commas; quoting
               follows CSV rules. The image field is a path relative to the folder
               or a name in one of the image folders.
        Quirks tolerated: elements found by tag; a UTF-8 byte-order mark; blank
            lines; split spelled ``validation``/``valid``. Beware that some code
            calls DIOR-RSVG "RSVG": that is the ``dior-rsvg`` loader.
        Choices: boxes are checked against ``<size>`` or else the image header
            (read once per image); zero-area, negative or out-of-image boxes, a
            missing expression, image or field are bad records (file, record =
            object or line, field). Samples come in file order.
        Samples: ``task="vg"``, ``prompt`` = the expression, ``box`` pixels,
            ``targets=()``; ``meta``: ``image_id`` (file stem), ``image_size``,
            and ``object_index`` + ``category`` (XML) or ``line`` (+ ``category``
            when a column gives it) (line files).
        Root: the dataset folder or its parent (``RSVG/``).
    """

    name = "rsvg"
    folder_names = ("RSVG", "rsvg")
    image_dirs = ("JPEGImages", "images", "Images")
    image_exts = (".jpg", ".png", ".tif", ".jpeg")
    require_category = False

    def __init__(self, root: str | Path, split: str | None = None, *, split_by: SplitBy = "auto", on_bad: OnBad = "raise") -> None:
        if split_by not in ("auto", "object", "image"):
            raise ValueError(f"rsvg: split_by must be 'auto', 'object' or 'image', got {split_by!r}")
        self.split_by = split_by
        super().__init__(root, split, on_bad=on_bad)

    def _line_files(self, folder: Path) -> list[Path]:
        return [folder / f"{self.split}{suffix}" for suffix in LINE_SUFFIXES] + [folder / n for n in COMBINED_FILES]

    def _load(self) -> list[Sample]:
        for folder in (self.root, *(self.root / n for n in self.folder_names)):
            if (folder / "Annotations").is_dir():
                return self._load_xml(folder)
            for path in self._line_files(folder):
                if path.is_file():
                    return self._load_lines(folder, path, combined=path.name in COMBINED_FILES)
        expected = (
            f"an RSVG folder (root or root/RSVG) with Annotations/*.xml and {self.split}.txt, or line files "
            f"image,xmin,ymin,xmax,ymax,expression: {self.split}.csv/.tsv/.txt or annotations.csv with a split column"
        )
        raise DatasetNotFoundError(self.root / "RSVG", expected)

    # --- layout 1: VOC XML -------------------------------------------------

    def _load_xml(self, folder: Path) -> list[Sample]:
        split_file = folder / f"{self.split}.txt"
        if not split_file.is_file():
            raise DatasetNotFoundError(split_file, f"the RSVG {self.split} split: object indices or image names, one per line")
        lines = [(n, line.strip()) for n, line in enumerate(split_file.read_text(encoding="utf-8-sig").splitlines(), start=1)]
        lines = [(n, value) for n, value in lines if value]
        stems = {p.stem for p in (folder / "Annotations").glob("*.xml")}
        values = [v for _, v in lines]
        indices_like = all(v.isdigit() and (v == "0" or not v.startswith("0")) for v in values)
        by_object = self.split_by == "object" or (self.split_by == "auto" and indices_like and not all(v in stems for v in values))
        if by_object:
            return self._load_object_split(folder, split_file)
        return self._load_image_split(folder, split_file, lines, stems)

    def _load_image_split(self, folder: Path, split_file: Path, lines: list[tuple[int, str]], stems: set[str]) -> list[Sample]:
        """Every object of the images the split names, in sorted file order (object indices stay global)."""
        wanted: set[str] = set()
        for line_no, value in lines:
            stem = Path(value).stem if Path(value).suffix.lower() in (".xml", *self.image_exts) else value
            if stem not in stems:
                message = f"no annotation file {stem}.xml in {folder / 'Annotations'}"
                self.bad.handle(RecordError(split_file, f"line {line_no}", None, message))
            elif stem in wanted:
                self.bad.handle(RecordError(split_file, f"line {line_no}", None, f"repeats image {stem}"))
            else:
                wanted.add(stem)
        samples, _ = self._walk(folder, lambda xml_path, first, n: list(range(n)) if xml_path.stem in wanted else [])
        return samples

    # --- layout 2: line files -------------------------------------------------

    def _load_lines(self, folder: Path, path: Path, combined: bool) -> list[Sample]:
        text = path.read_text(encoding="utf-8-sig")
        rows = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
        if not rows:
            return []
        delimiter = "\t" if "\t" in rows[0][1] else ","
        parsed = [(n, fields) for (n, _), fields in zip(rows, csv.reader([line for _, line in rows], delimiter=delimiter))]
        first = parsed[0][1]
        header = None
        if not any(_is_number(v) for v in first[1:5]):  # a header row, not a record with a typo
            header = self._header(path, first, combined)
            parsed = parsed[1:]
        elif combined:
            raise RecordError(path, "line 1", "split", "a combined annotation file needs a header row with a split column")
        images: dict[str, tuple[Path, tuple[int, int]] | RecordError] = {}
        samples = []
        for line_no, fields in parsed:
            try:
                row = self._row(path, line_no, fields, header, delimiter)
                if combined:
                    split = row["split"].lower()
                    split = SPLIT_ALIASES.get(split, split)
                    if split not in self.splits:
                        raise RecordError(path, f"line {line_no}", "split", f"unknown split {row['split']!r}")
                    if split != self.split:
                        continue
                samples.append(self._line_sample(folder, path, line_no, row, images))
            except RecordError as err:
                self.bad.handle(err)
        return samples

    def _header(self, path: Path, names: list[str], combined: bool) -> dict[str, int]:
        """Column name -> position; the required columns must all be there."""
        lowered = [n.strip().lower() for n in names]
        header = {}
        for column, spellings in COLUMNS.items():
            found = next((i for i, n in enumerate(lowered) if n in spellings), None)
            if found is not None:
                header[column] = found
        required = ["image", "xmin", "ymin", "xmax", "ymax", "expression"] + (["split"] if combined else [])
        missing = [c for c in required if c not in header]
        if missing:
            raise RecordError(path, "line 1", missing[0], f"header {names} has no {missing[0]!r} column")
        return header

    def _row(self, path: Path, line_no: int, fields: list[str], header: dict[str, int] | None, delimiter: str) -> dict[str, str]:
        record = f"line {line_no}"
        if header is None:
            if len(fields) < 6:
                raise RecordError(path, record, None, f"expected image,xmin,ymin,xmax,ymax,expression; got {len(fields)} field(s)")
            names = ("image", "xmin", "ymin", "xmax", "ymax")
            return {**dict(zip(names, fields)), "expression": delimiter.join(fields[5:])}
        last = max(header.values())
        if len(fields) > last + 1 and header["expression"] == last:
            fields = fields[:last] + [delimiter.join(fields[last:])]  # unquoted delimiters inside the expression
        row = {}
        for column, index in header.items():
            if index >= len(fields):
                raise RecordError(path, record, column, "missing")
            row[column] = fields[index]
        return row

    def _line_sample(
        self, folder: Path, path: Path, line_no: int, row: dict[str, str], images: dict[str, tuple[Path, tuple[int, int]] | RecordError]
    ) -> Sample:
        record = f"line {line_no}"
        expression = row["expression"].strip()
        if not expression:
            raise RecordError(path, record, "expression", "missing or empty")
        box = []
        for column in ("xmin", "ymin", "xmax", "ymax"):
            if not _is_number(row[column].strip()):
                raise RecordError(path, record, column, f"not a finite number: {row[column]!r}")
            box.append(float(row[column]))
        name = row["image"].strip()
        if name not in images:  # resolved and measured once per image
            try:
                image = self._resolve_image(folder, path, record, name)
                images[name] = (image, header_size(image, path, record))
            except RecordError as err:
                images[name] = err
        found = images[name]
        if isinstance(found, RecordError):
            raise RecordError(path, record, found.field, found.message)
        image, size = found
        check_box((box[0], box[1], box[2], box[3]), size, path, record, "box")
        meta = {"line": line_no, "image_id": image.stem, "image_size": size}
        if row.get("category", "").strip():
            meta["category"] = row["category"].strip()
        return Sample(image=image, task="vg", prompt=expression, box=tuple(box), meta=meta)

    def _resolve_image(self, folder: Path, path: Path, record: str, name: str) -> Path:
        if not name:
            raise RecordError(path, record, "image", "missing or empty")
        candidates = [folder / name]
        for image_dir in self.image_dirs:
            candidates += [folder / image_dir / name, folder / image_dir / Path(name).name]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise RecordError(path, record, "image", f"image {name!r} not found in {folder} or its {'/'.join(self.image_dirs)} folders")

