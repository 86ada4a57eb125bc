"""fMoW (Functional Map of the World), RGB release: 62 categories of facilities and land use.

Datasheet:
    Paper: Gordon Christie, Neil Fendley, James Wilson and Ryan Mukherjee,
        "Functional Map of the World", CVPR 2018.
    Size: about 1 M images (363 k train, 53 k val, 53 k test, 16 k seq in
        fmow-rgb) of about 119 k instances; DigitalGlobe JPEGs of varying size.
    Format: ``fmow-rgb/{train,val}/<category>/<category>_<id>/<category>_<id>_<t>_{rgb,msrgb}.{jpg,json}``.
        Only the ``_rgb`` images are indexed (``_msrgb`` is a second rendering
        of the same capture). Each image has a JSON beside it: ``bounding_boxes``
        (a list of ``{box, category, ID, visible}`` **or a single dict**),
        ``box = [x, y, width, height]`` in pixels from the top-left,
        ``visible`` as the string ``"True"``/``"False"``, and ``gsd``, ``utm``,
        ``cloud_cover``, ``timestamp``, ``img_width``, ``img_height``, angles.
    Classes: the 62 categories below, in alphabetical order (as WILDS orders
        them). ``false_detection``, the challenge's 63rd label, is not a
        class: its images are left out with a warning giving their count
        (whether fmow-rgb ships any is unconfirmed; the test ground truth of
        the challenge used it).
    Splits: official: ``train``, ``val``, ``test``, ``seq`` (many RS-VLM papers
        report on ``val``). ``test/`` and ``seq/`` hold ``<split>/<secret id>/``
        folders without categories: their labels ship separately in
        ``groundtruth.tar.bz2`` as ``<split>_gt/<category>/<instance>/*.json``
        plus ``<split>_gt_mapping.json`` (a list of ``{"input":
        "test_gt/<category>/<instance>", "output": "test/<secret id>"}``).
        They are looked for in the fMoW folder and in ``root``, or in the
        folder given as ``labels=``. (The mapping's shape is taken from public
        scripts that read it, not from a specification: unconfirmed.)
    Choices: one sample per ``_rgb`` image; ``targets`` is its category (the
        folder's, or the ground truth's for test/seq) and ``box`` the first box
        of that category, as ``(x1, y1, x2, y2)`` pixels. If no box names a
        category at all, the first box is taken. ``meta`` keeps ``label``,
        ``instance``, ``box_id``, ``n_boxes``, ``visible`` (bool or None),
        ``gsd``, ``img_width``/``img_height`` and, when present, ``utm``,
        ``cloud_cover``, ``timestamp``, ``country_code`` and the angles.
    Bad records: a missing or malformed JSON, a missing field, a box that is
        not four numbers, of zero area or outside the image -> RecordError
        naming the JSON file, the image and the field (or a counted skip).
    Root: the download folder holding ``fmow-rgb/`` (or ``fmow/``, a renamed
        copy: unconfirmed), or that folder itself.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, ClassVar

from aerith.data.datasets.base import ClassificationDataset, VerifyImages
from aerith.data.datasets.folder import class_key, find_paths, is_image_file, layout_candidates, match_class_folders
from aerith.data.datasets.locate import pick_one
from aerith.data.errors import DataError, DatasetNotFoundError, ImageReadError, OnBad, RecordError
from aerith.imageio import image_size
from aerith.data.sample import Sample
from aerith.data.splits import read_split_file, select_by_name

FALSE_DETECTION = "false_detection"
_KEPT_FIELDS = (
    "utm", "cloud_cover", "timestamp", "country_code",
    "off_nadir_angle_dbl", "target_azimuth_dbl", "sun_azimuth_dbl", "sun_elevation_dbl",
)  # fmt: skip


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _parse_visible(value: Any, file: Path, record: str, field: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise RecordError(file, record, field, f'expected "True" or "False", got {value!r}')


class FMoW(ClassificationDataset):
    """fMoW-rgb scene classification with the box of interest.

    Args:
        root: the download folder holding ``fmow-rgb/``, or that folder.
        split: ``"train"``, ``"val"``, ``"test"`` or ``"seq"``.
        on_bad: ``"raise"`` on the first bad record, or ``"skip"`` and warn once
            with the count.
        split_file: a file of bare ``_rgb`` image file names restricting the
            split (e.g. an evaluation subset).
        seed, ratios: must stay ``None``: fMoW's splits are official (taken so
            that every classification loader takes the same keywords).
        labels: the folder holding ``<split>_gt/`` and
            ``<split>_gt_mapping.json`` (the extracted ``groundtruth.tar.bz2``),
            for ``test`` and ``seq``.
        verify_images: check each image at index time (see
            :class:`~aerith.data.datasets.base.RSDataset`; by default when
            ``on_bad="skip"``). A header is read anyway when a JSON lacks
            ``img_width``/``img_height``.

    Attributes:
        fmow_dir: the folder holding ``train/``, ``val/`` ...
        split_source: how the split was chosen, for results tables.
    """

    name = "fmow"
    splits = ("train", "val", "test", "seq")
    classes: ClassVar[tuple[str, ...]] = (
        "airport", "airport_hangar", "airport_terminal", "amusement_park", "aquaculture",
        "archaeological_site", "barn", "border_checkpoint", "burial_site", "car_dealership",
        "construction_site", "crop_field", "dam", "debris_or_rubble", "educational_institution",
        "electric_substation", "factory_or_powerplant", "fire_station", "flooded_road", "fountain",
        "gas_station", "golf_course", "ground_transportation_station", "helipad", "hospital",
        "impoverished_settlement", "interchange", "lake_or_pond", "lighthouse", "military_facility",
        "multi-unit_residential", "nuclear_powerplant", "office_building", "oil_or_gas_facility",
        "park", "parking_lot_or_garage", "place_of_worship", "police_station", "port", "prison",
        "race_track", "railway_bridge", "recreational_facility", "road_bridge", "runway", "shipyard",
        "shopping_mall", "single-unit_residential", "smokestack", "solar_farm", "space_facility",
        "stadium", "storage_tank", "surface_mine", "swimming_pool", "toll_booth", "tower",
        "tunnel_opening", "waste_disposal", "water_treatment_facility", "wind_farm", "zoo",
    )  # fmt: skip
    layouts: ClassVar[tuple[str, ...]] = ("fmow-rgb", "fmow")

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        *,
        on_bad: OnBad = "raise",
        split_file: str | Path | None = None,
        seed: int | None = None,
        ratios: Any = None,
        labels: str | Path | None = None,
        verify_images: VerifyImages = None,
    ) -> None:
        for name, value in (("ratios", ratios), ("seed", seed)):
            if value is not None:
                raise ValueError(f"fmow: the dataset ships official train/val/test/seq splits; `{name}` does not apply")
        self.split_file = Path(split_file).expanduser() if split_file is not None else None
        self.labels = Path(labels).expanduser() if labels is not None else None
        self.fmow_dir: Path | None = None
        self.split_source = ""
        self._label_of = {c: i for i, c in enumerate(self.classes)}
        self._by_key = {class_key(c): c for c in self.classes}
        self._false_detections = 0
        super().__init__(root, split, on_bad=on_bad, verify_images=verify_images)

    # -- layout ---------------------------------------------------------

    def _find_fmow_dir(self) -> Path:
        candidates = layout_candidates(self.layouts)
        found = [
            folder
            for relative in candidates
            for folder in find_paths(self.root, relative)
            if any((folder / s).is_dir() for s in self.splits)
        ]
        chosen = pick_one(self.root, found, "the fMoW folder (holding train/, val/, test/ or seq/)")
        if chosen is not None:
            return chosen
        tried = ", ".join(f"{relative}/" if relative else "the root itself" for relative in candidates)
        raise DatasetNotFoundError(self.root, f"the fMoW folders train/, val/, test/ or seq/ under one of: {tried}")

    def _find_ground_truth(self) -> tuple[Path, Path]:
        """``(<split>_gt_mapping.json, folder holding <split>_gt/)`` for test/seq."""
        assert self.fmow_dir is not None
        folders = [self.labels] if self.labels is not None else list(dict.fromkeys([self.fmow_dir, self.root]))
        mapping_name, gt_name = f"{self.split}_gt_mapping.json", f"{self.split}_gt"
        for folder in folders:
            if (folder / mapping_name).is_file() and (folder / gt_name).is_dir():
                return folder / mapping_name, folder
        where = self.labels if self.labels is not None else self.fmow_dir
        raise DatasetNotFoundError(
            where / mapping_name,
            f"the labels of fMoW '{self.split}': {self.split}/ has no category folders and its labels ship "
            f"separately in groundtruth.tar.bz2 ({gt_name}/ and {mapping_name}); extract it into "
            f"{self.fmow_dir} or pass labels=<the folder holding them>",
        )

    # -- records --------------------------------------------------------

    def _read_json(self, path: Path, record: str) -> dict[str, Any]:
        if not path.is_file():
            raise RecordError(path, record, None, "metadata JSON missing")
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RecordError(path, record, None, f"invalid JSON ({err})") from err
        if not isinstance(data, dict):
            raise RecordError(path, record, None, f"expected a JSON object, got {type(data).__name__}")
        return data

    def _image_dims(self, data: dict[str, Any], json_path: Path, image: Path, record: str) -> tuple[float, float]:
        width, height = data.get("img_width"), data.get("img_height")
        if _is_number(width) and _is_number(height) and width > 0 and height > 0:
            return float(width), float(height)
        try:
            w, h = image_size(image)
        except ImageReadError as err:
            raise RecordError(image, record, "image", str(err).removeprefix(f"{err.path}: ")) from err
        return float(w), float(h)

    @staticmethod
    def _pick_box(data: dict[str, Any], category: str, json_path: Path, record: str) -> tuple[list[dict], int]:
        """All boxes of the image, and the index of the first one of ``category``."""
        boxes = data.get("bounding_boxes")
        if boxes is None:
            raise RecordError(json_path, record, "bounding_boxes", "missing")
        if isinstance(boxes, dict):
            boxes = [boxes]
        if not isinstance(boxes, list) or not boxes or not all(isinstance(b, dict) for b in boxes):
            message = f"expected a box object or a non-empty list of them, got {boxes!r}"
            raise RecordError(json_path, record, "bounding_boxes", message)
        if not any("category" in b for b in boxes):
            return boxes, 0
        wanted = class_key(category)
        for i, box in enumerate(boxes):
            if isinstance(box.get("category"), str) and class_key(box["category"]) == wanted:
                return boxes, i
        found = ", ".join(sorted({str(b.get("category")) for b in boxes}))
        raise RecordError(json_path, record, "bounding_boxes", f"no box of category {category!r} (found {found})")

    def _parse(self, json_path: Path, image: Path, category: str, extra: dict[str, Any]) -> Sample:
        """One sample from an image and its metadata JSON; raises :class:`RecordError`."""
        record = image.name
        data = self._read_json(json_path, record)
        boxes, index = self._pick_box(data, category, json_path, record)
        chosen = boxes[index]
        field = f"bounding_boxes[{index}].box"
        xywh = chosen.get("box")
        if not (isinstance(xywh, (list, tuple)) and len(xywh) == 4 and all(_is_number(v) for v in xywh)):
            raise RecordError(json_path, record, field, f"expected [x, y, width, height] numbers, got {xywh!r}")
        x, y, w, h = (float(v) for v in xywh)
        if w <= 0 or h <= 0:
            raise RecordError(json_path, record, field, f"zero-area box {list(xywh)} (width and height must be > 0)")
        img_w, img_h = self._image_dims(data, json_path, image, record)
        if x < 0 or y < 0 or x + w > img_w or y + h > img_h:
            raise RecordError(json_path, record, field, f"box {list(xywh)} lies outside the {img_w:g}x{img_h:g} image")
        visible = _parse_visible(chosen.get("visible"), json_path, record, f"bounding_boxes[{index}].visible")
        gsd = data.get("gsd")
        if gsd is not None and not _is_number(gsd):
            raise RecordError(json_path, record, "gsd", f"expected a number, got {gsd!r}")
        meta: dict[str, Any] = {
            "label": self._label_of[category],
            "id": image.stem,
            "box_id": chosen.get("ID"),
            "n_boxes": len(boxes),
            "visible": visible,
            "gsd": None if gsd is None else float(gsd),
            "img_width": int(img_w),
            "img_height": int(img_h),
            "json": str(json_path),
            **{key: data[key] for key in _KEPT_FIELDS if key in data},
            **extra,
        }
        return Sample(image=image, task="cls", targets=(category,), box=(x, y, x + w, y + h), meta=meta)

    def _add(self, samples: list[Sample], json_path: Path, image: Path, category: str, extra: dict[str, Any]) -> None:
        try:
            samples.append(self._parse(json_path, image, category, extra))
        except RecordError as err:
            self.bad.handle(err)

    @staticmethod
    def _rgb_images(folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir() if p.stem.endswith("_rgb") and is_image_file(p))

    def _load_public(self, split_dir: Path) -> list[Sample]:
        """train/ and val/: ``<category>/<instance>/<instance>_<t>_rgb.jpg``."""
        false_dir = next(
            (d for d in split_dir.iterdir() if d.is_dir() and class_key(d.name) == class_key(FALSE_DETECTION)), None
        )
        if false_dir is not None:
            self._false_detections += sum(len(self._rgb_images(d)) for d in false_dir.iterdir() if d.is_dir())
        folders = match_class_folders(split_dir, self.classes, self.bad, ignore=(FALSE_DETECTION,))
        samples: list[Sample] = []
        for category in self.classes:
            if category not in folders:
                continue
            for instance in sorted(d for d in folders[category].iterdir() if d.is_dir()):
                for image in self._rgb_images(instance):
                    self._add(samples, image.with_suffix(".json"), image, category, {"instance": instance.name})
        return samples

    def _load_hidden(self, split_dir: Path) -> list[Sample]:
        """test/ and seq/: ``<secret>/<secret>_<t>_rgb.jpg`` labelled through the ground-truth mapping."""
        assert self.fmow_dir is not None
        mapping_path, gt_root = self._find_ground_truth()
        try:
            mapping = json.loads(mapping_path.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(f"{mapping_path}: invalid JSON ({err})") from err
        if not isinstance(mapping, list):
            raise DataError(
                f"{mapping_path}: expected a list of {{'input', 'output'}} objects, got {type(mapping).__name__}"
            )
        entries: list[tuple[str, str, int]] = []
        for i, entry in enumerate(mapping):
            for field in ("input", "output"):
                if not isinstance(entry, dict) or not isinstance(entry.get(field), str):
                    self.bad.handle(RecordError(mapping_path, i, field, f"expected a string path, got {entry!r}"))
                    break
            else:
                entries.append((entry["output"], entry["input"], i))
        samples: list[Sample] = []
        for output, gt_input, i in sorted(entries):
            parts = Path(gt_input).parts
            if len(parts) != 3:
                self.bad.handle(
                    RecordError(
                        mapping_path, i, "input", f"expected '{self.split}_gt/<category>/<instance>', got {gt_input!r}"
                    )
                )
                continue
            image_dir = self.fmow_dir / output
            if class_key(parts[1]) == class_key(FALSE_DETECTION):
                self._false_detections += len(self._rgb_images(image_dir)) if image_dir.is_dir() else 0
                continue
            category = self._by_key.get(class_key(parts[1]))
            if category is None:
                self.bad.handle(RecordError(mapping_path, i, "input", f"unknown category {parts[1]!r}"))
                continue
            if not image_dir.is_dir():
                self.bad.handle(RecordError(mapping_path, i, "output", f"image folder {image_dir} not found"))
                continue
            secret, instance = image_dir.name, parts[2]
            for image in self._rgb_images(image_dir):
                suffix = (
                    image.stem[len(secret) + 1 :]
                    if image.stem.startswith(secret + "_")
                    else image.stem.split("_", 1)[-1]
                )
                gt_json = gt_root / gt_input / f"{instance}_{suffix}.json"
                self._add(samples, gt_json, image, category, {"instance": instance, "secret_id": secret})
        return samples

    def _load(self) -> list[Sample]:
        self.fmow_dir = self._find_fmow_dir()
        split_dir = self.fmow_dir / self.split
        if not split_dir.is_dir():
            raise DatasetNotFoundError(split_dir, f"the fMoW '{self.split}' folder")
        if self.split in ("train", "val"):
            samples = self._load_public(split_dir)
        else:
            samples = self._load_hidden(split_dir)
        if self._false_detections:
            warnings.warn(
                f"fmow ({self.split}): left out {self._false_detections} 'false_detection' image(s): "
                f"not one of the {len(self.classes)} categories",
                UserWarning,
                stacklevel=4,
            )
        self.split_source = f"official fMoW '{self.split}' split"
        if self.split_file is not None:
            names = read_split_file(self.split_file)
            samples, missing = select_by_name(samples, names, lambda s: s.image.name)
            for name in missing:
                self.bad.handle(
                    RecordError(self.split_file, name, None, f"listed image not found in fMoW '{self.split}'")
                )
            self.split_source += f", restricted to {self.split_file}"
        return samples
