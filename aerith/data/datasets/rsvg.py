"""RSVG visual grounding (Sun et al. 2022): the authors' ``.pth`` release, VOC XML or line files."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from aerith.data.datasets.base import VerifyImages
from aerith.data.datasets.dior_rsvg import DIOR_RSVG_FOLDERS, VOCGrounding, check_box, header_size
from aerith.data.datasets.folder import class_key, find_children
from aerith.data.datasets.locate import pick_one
from aerith.data.errors import DataError, DatasetNotFoundError, OnBad, RecordError
from aerith.data.sample import Sample
from aerith.data.text import read_text

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


def _numpy_globals() -> list[Any]:
    """The numpy pieces an array or scalar in a pickle needs, under numpy 2's and numpy 1's names."""
    import numpy as np

    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1
        from numpy.core import multiarray  # type: ignore[no-redef]
    return [
        multiarray._reconstruct, (multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
        multiarray.scalar, (multiarray.scalar, "numpy.core.multiarray.scalar"),
        np.ndarray, np.dtype, *{type(np.dtype(t)) for t in ("b", "B", "h", "H", "i", "I", "l", "L", "q", "Q", "e", "f", "d")},
    ]  # fmt: skip


def load_pth(path: Path) -> Any:
    """``torch.load(path, weights_only=True)``: plain containers, tensors and numeric numpy arrays only.

    Never unrestricted pickle: a file that needs anything else is refused.

    Raises:
        RecordError: naming the file when it does not load so.
    """
    import torch

    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError, RuntimeError (not a torch file), EOFError ...
        first = str(err).strip().splitlines()
        unsafe = next((line.strip() for line in first if "Unsupported global" in line), first[0] if first else type(err).__name__)
        raise RecordError(
            path, None, None,
            f"cannot be read with torch.load(weights_only=True) ({unsafe}); Aerith never unpickles a file unrestricted",
        ) from err


def _plain(value: Any) -> Any:
    """Tensors and numpy values as Python lists/numbers; anything else unchanged."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


class RSVG(VOCGrounding):
    """RSVG (Sun, Feng, Li, Ye, Kang and Huang, "Visual Grounding in Remote Sensing Images", ACM MM 2022).

    Datasheet:
        Size: about 4,239 images and 7,933 referring expressions (with numeric
            geospatial relations), split 5,505 / 1,201 / 1,227.
        Format: three layouts are accepted:

            0. The release as its authors ship it (their data loader, a TransVG
               fork, reads it): ``rsvg/images/<file>`` and
               ``rsvg/rsvg_{train,val,test}.pth``, each a ``torch.save``d list
               of ``(image file, [x1, y1, x2, y2], phrase, ...)`` with the box
               in pixels, corners inclusive as the authors' loader reads them.
               Read with ``torch.load(weights_only=True)`` only (numeric numpy
               arrays allowed), never unrestricted pickle: a file that needs
               more is refused. Elements after the phrase are kept in
               ``meta["extra"]``. Folder and file names in either case
               (``rsvg/``, ``RSVG/``, ``RSVG_train.pth``).

            Two more layouts exist in the wild (unconfirmed, no primary source):

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
            and ``object_index`` (the record's position in the ``.pth`` list, or
            the XML object index) + ``category`` (XML) or ``line`` (+
            ``category`` when a column gives it) (line files).
        Root: the dataset folder or its parent (``rsvg/`` or ``RSVG/``). A root
            holding two candidate folders is refused, listing them; a
            DIOR-RSVG folder (``DIOR_RSVG``, ``RSVGD``) is refused with a
            pointer to ``dior-rsvg``.
    """

    name = "rsvg"
    folder_names = ("RSVG", "rsvg")
    image_dirs = ("JPEGImages", "images", "Images")
    image_exts = (".jpg", ".png", ".tif", ".jpeg")
    require_category = False

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        *,
        split_by: SplitBy = "auto",
        on_bad: OnBad = "raise",
        verify_images: VerifyImages = None,
    ) -> None:
        if split_by not in ("auto", "object", "image"):
            raise ValueError(f"rsvg: split_by must be 'auto', 'object' or 'image', got {split_by!r}")
        self.split_by = split_by
        super().__init__(root, split, on_bad=on_bad, verify_images=verify_images)

    def _line_files(self, folder: Path) -> list[Path]:
        return [folder / f"{self.split}{suffix}" for suffix in LINE_SUFFIXES] + [folder / n for n in COMBINED_FILES]

    @staticmethod
    def _pth_files(folder: Path) -> dict[str, Path]:
        """``{split: rsvg_<split>.pth}`` in ``folder``, names matched in any case."""
        if not folder.is_dir():
            return {}
        return {
            p.name.lower()[len("rsvg_") : -len(".pth")]: p
            for p in sorted(folder.iterdir())
            if p.is_file() and p.name.lower().startswith("rsvg_") and p.name.lower().endswith(".pth")
        }

    def _layout(self, folder: Path) -> str | None:
        """Which RSVG layout ``folder`` holds: ``"pth"``, ``"xml"``, ``"lines"`` or ``None``."""
        if self._pth_files(folder):
            return "pth"
        if (folder / "Annotations").is_dir():
            return "xml"
        if any(path.is_file() for path in self._line_files(folder)):
            return "lines"
        return None

    def _load(self) -> list[Sample]:
        candidates = [self.root, *(c for n in self.folder_names for c in find_children(self.root, n))]
        layouts = {folder: self._layout(folder) for folder in candidates}
        found = [folder for folder, layout in layouts.items() if layout is not None]
        folder = pick_one(self.root, found, "an RSVG folder", lambda f: f"{layouts[f]} layout")
        dior = [c for c in (self.root, *self.root.iterdir()) if c.is_dir() and class_key(c.name) in DIOR_RSVG_FOLDERS]
        if folder is not None and dior and folder in dior:
            raise DataError(
                f"{folder}: is a DIOR-RSVG folder (named {folder.name!r}), not RSVG (Sun et al.); "
                "load it with 'dior-rsvg' (some code calls DIOR-RSVG 'RSVG')"
            )
        if folder is None:
            expected = (
                "an RSVG folder (root, root/rsvg or root/RSVG) with images/ and rsvg_{train,val,test}.pth (the release), "
                f"or Annotations/*.xml and {self.split}.txt, or line files image,xmin,ymin,xmax,ymax,expression: "
                f"{self.split}.csv/.tsv/.txt or annotations.csv with a split column"
            )
            if dior:
                expected += f"; {dior[0]} is DIOR-RSVG: load it with 'dior-rsvg'"
            raise DatasetNotFoundError(self.root / "rsvg", expected)
        if layouts[folder] == "pth":
            return self._load_pth(folder)
        if layouts[folder] == "xml":
            return self._load_xml(folder)
        path = next(p for p in self._line_files(folder) if p.is_file())
        return self._load_lines(folder, path, combined=path.name in COMBINED_FILES)

    # --- layout 0: the authors' .pth release -------------------------------------

    def _image_folder(self, folder: Path) -> Path:
        found = [child for name in ("images", "JPEGImages") for child in find_children(folder, name)]
        if not found:
            raise DatasetNotFoundError(folder / "images", "the RSVG image folder beside the rsvg_<split>.pth files")
        return found[0]

    def _load_pth(self, folder: Path) -> list[Sample]:
        files = self._pth_files(folder)
        if self.split not in files:
            raise DatasetNotFoundError(
                folder / f"rsvg_{self.split}.pth",
                f"the RSVG {self.split} split: a torch.save'd list of (image file, [x1, y1, x2, y2], phrase, ...) "
                f"(found: {', '.join(p.name for p in files.values())})",
            )
        path, images = files[self.split], self._image_folder(folder)
        data = load_pth(path)
        if not isinstance(data, (list, tuple)):
            raise RecordError(path, None, None, f"expected a list of (image file, box, phrase, ...) records, got {type(data).__name__}")
        sizes: dict[str, tuple[Path, tuple[int, int]] | RecordError] = {}
        samples = []
        for index, record in enumerate(data):
            try:
                samples.append(self._pth_sample(path, images, index, record, sizes))
            except RecordError as err:
                self.bad.handle(err)
        return samples

    def _pth_sample(
        self, path: Path, images: Path, index: int, record: Any, sizes: dict[str, tuple[Path, tuple[int, int]] | RecordError]
    ) -> Sample:
        if not isinstance(record, (list, tuple)) or len(record) < 3:
            raise RecordError(path, index, None, f"expected (image file, [x1, y1, x2, y2], phrase, ...), got {type(record).__name__} {record!r:.80}")
        name, box, phrase = record[0], _plain(record[1]), record[2]
        if not isinstance(name, str) or not name.strip():
            raise RecordError(path, index, "image", f"not an image file name: {name!r:.80}")
        if not isinstance(phrase, str) or not phrase.strip():
            raise RecordError(path, index, "phrase", f"missing or not text: {phrase!r:.80}")
        if not isinstance(box, Sequence) or len(box) != 4 or not all(_is_number(str(v)) for v in box):
            raise RecordError(path, index, "box", f"expected [x1, y1, x2, y2] as 4 finite numbers, got {box!r:.80}")
        name = name.strip()
        if name not in sizes:  # resolved and measured once per image
            image = images / name
            try:
                if not image.is_file():
                    raise RecordError(path, index, "image", f"image {name!r} not found in {images}")
                sizes[name] = (image, header_size(image, path, index))
            except RecordError as err:
                sizes[name] = err
        found = sizes[name]
        if isinstance(found, RecordError):
            raise RecordError(path, index, found.field, found.message)
        image, size = found
        x1, y1, x2, y2 = (float(v) for v in box)
        check_box((x1, y1, x2, y2), size, path, index, "box")
        meta: dict[str, Any] = {"object_index": index, "image_id": image.stem, "image_size": size}
        if len(record) > 3:
            meta["extra"] = [_plain(v) for v in record[3:]]
        return Sample(image=image, task="vg", prompt=phrase.strip(), box=(x1, y1, x2, y2), meta=meta)

    # --- layout 1: VOC XML -------------------------------------------------

    def _load_xml(self, folder: Path) -> list[Sample]:
        split_file = folder / f"{self.split}.txt"
        if not split_file.is_file():
            raise DatasetNotFoundError(split_file, f"the RSVG {self.split} split: object indices or image names, one per line")
        lines = [(n, line.strip()) for n, line in enumerate(read_text(split_file).splitlines(), start=1)]
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
        text = read_text(path)
        rows = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
        if not rows:
            return []
        delimiter = "\t" if "\t" in rows[0][1] else ","
        # one record per physical line: a stray quote must not swallow the lines after it
        parsed = [(n, next(csv.reader([line], delimiter=delimiter))) for n, line in rows]
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

