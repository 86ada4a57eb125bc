"""RSVG (Sun et al., "Visual Grounding in Remote Sensing Images", ACM MM 2022).

Datasheet:
    Size: about 4,239 images and 7,933 referring expressions; split 5,505 / 1,201 / 1,227.
    Format (unconfirmed: no primary source documents the raw files, so both layouts seen in
    public code are read):
      - line files ``{train,val,test}.csv`` (or ``.txt``), one expression per line:
        ``image,xmin,ymin,xmax,ymax,expression`` (the expression may itself hold commas; a
        header line starting with ``image`` is skipped), images in ``images/`` or ``JPEGImages/``;
      - per-image VOC XML as DIOR-RSVG (``Annotations/``, ``JPEGImages/``, ``{split}.txt`` of
        object indices), read by the DIOR-RSVG rules.
    Beware: some code calls DIOR-RSVG "RSVG"; here ``rsvg`` is Sun et al.'s dataset.
    Root: the dataset folder or its parent (``RSVG/``).
"""

from __future__ import annotations

from pathlib import Path

from aerith.data.datasets.dior_rsvg import DIORRSVG
from aerith.data.errors import DatasetNotFoundError, RecordError
from aerith.data.sample import Sample


class RSVG(DIORRSVG):
    name = "rsvg"

    def _line_file(self) -> tuple[Path, Path] | None:
        for folder in (self.root, self.root / "RSVG"):
            for ext in (".csv", ".txt"):
                path = folder / f"{self.split}{ext}"
                if path.is_file() and not (folder / "Annotations").is_dir():
                    return folder, path
        return None

    def _load(self) -> list[Sample]:
        found = self._line_file()
        if found is None:
            if any((f / "Annotations").is_dir() for f in (self.root, self.root / "RSVG", self.root / "DIOR_RSVG")):
                return super()._load()
            raise DatasetNotFoundError(
                self.root / f"{self.split}.csv",
                "RSVG split lines 'image,xmin,ymin,xmax,ymax,expression', or Annotations/ with VOC XML",
            )
        folder, path = found
        image_dir = next((folder / d for d in ("images", "JPEGImages") if (folder / d).is_dir()), None)
        if image_dir is None:
            raise DatasetNotFoundError(folder / "images", "the RSVG image folder (images/ or JPEGImages/)")
        samples = []
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip() or (line_no == 1 and line.lower().startswith("image")):
                continue
            try:
                samples.append(self._line_sample(line, line_no, path, image_dir))
            except RecordError as err:
                self.bad.handle(err)
        return samples

    def _line_sample(self, line: str, line_no: int, path: Path, image_dir: Path) -> Sample:
        parts = [p.strip() for p in line.split(",", 5)]
        if len(parts) != 6:
            raise RecordError(path, line_no, None, "expected 'image,xmin,ymin,xmax,ymax,expression'")
        name, *coords, expression = parts
        try:
            x1, y1, x2, y2 = (float(c) for c in coords)
        except ValueError as err:
            raise RecordError(path, line_no, "box", f"not numbers: {coords}") from err
        if x2 <= x1 or y2 <= y1:
            raise RecordError(path, line_no, "box", f"zero or negative area: {(x1, y1, x2, y2)}")
        if not expression:
            raise RecordError(path, line_no, "expression", "empty")
        image = image_dir / name
        if not image.is_file():
            raise RecordError(path, line_no, "image", f"image {image} not found")
        return Sample(image=image, task="vg", prompt=expression, box=(x1, y1, x2, y2), meta={"line": line_no, "image_id": image.stem})
