"""Fake fMoW-rgb in its real layout, quirks included.

``fmow-rgb/{train,val}/<category>/<category>_<id>/<category>_<id>_<t>_{rgb,msrgb}.{jpg,json}``
for all 62 categories (one instance each; train instances of even-numbered
categories have two timestamps). ``bounding_boxes`` is a single dict for
most images and a list for the rest (one list holds a box of another
category first); ``visible`` is the string ``"True"``/``"False"``.

``test/`` and ``seq/`` hold ``<secret id>/<secret id>_<t>_rgb.jpg`` with
category-less JSONs, as the challenge released them. The test labels are
written apart, as in ``groundtruth.tar.bz2``: ``<root>/groundtruth/test_gt/``
and ``test_gt_mapping.json``; one test instance is a ``false_detection``.
No seq labels are written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

CATEGORIES = (
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
WIDTH, HEIGHT = 24, 20
# (secret id, category, instance) of the test set; labels live in groundtruth/.
TEST = (("0000007", "dam", "dam_5"), ("0000011", "zoo", "zoo_2"), ("0000013", "false_detection", "false_detection_0"))
SEQ = ("0000021",)


def _metadata(rng: np.random.Generator, category: str | None, box_id: int, as_list: bool) -> dict:
    x, y = int(rng.integers(0, 8)), int(rng.integers(0, 6))
    box = {"box": [x, y, int(rng.integers(4, 12)), int(rng.integers(4, 10))], "ID": box_id}
    box["visible"] = "True" if box_id % 3 else "False"
    if category is not None:
        box["category"] = category
    return {
        "gsd": round(float(rng.uniform(0.3, 2.0)), 3),
        "img_width": WIDTH,
        "img_height": HEIGHT,
        "utm": "33T",
        "country_code": "FRA",
        "cloud_cover": 0,
        "timestamp": "2016-04-01T10:11:12Z",
        "off_nadir_angle_dbl": 12.5,
        "bounding_boxes": [box] if as_list else box,
    }


def _write_image(rng: np.random.Generator, folder: Path, stem: str, meta: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for kind in ("rgb", "msrgb"):
        pixels = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        Image.fromarray(pixels, "RGB").save(folder / f"{stem}_{kind}.jpg", format="JPEG")
        (folder / f"{stem}_{kind}.json").write_text(json.dumps(meta))


def write_fake(root: Path, seed: int = 0) -> Path:
    """Write the fake dataset under ``root``; return ``root / "fmow-rgb"``.

    The test ground truth goes to ``root / "groundtruth"``.
    """
    rng = np.random.default_rng(seed)
    base = root / "fmow-rgb"
    box_id = 0
    for split in ("train", "val"):
        for i, category in enumerate(CATEGORIES):
            instance = f"{category}_{i}"
            for t in range(2 if split == "train" and i % 2 == 0 else 1):
                box_id += 1
                meta = _metadata(rng, category, box_id, as_list=(box_id % 4 == 0))
                if split == "train" and category == "port":
                    other = {"box": [0, 0, 3, 3], "ID": 999, "category": "shipyard", "visible": "False"}
                    meta["bounding_boxes"] = [other, meta["bounding_boxes"]]
                _write_image(rng, base / split / category / instance, f"{instance}_{t}", meta)
    gt = root / "groundtruth"
    mapping = []
    for secret, category, instance in TEST:
        for t in range(2):
            box_id += 1
            _write_image(rng, base / "test" / secret, f"{secret}_{t}", _metadata(rng, None, -1, as_list=True))
            labelled = _metadata(rng, category, box_id, as_list=False)
            (gt / "test_gt" / category / instance).mkdir(parents=True, exist_ok=True)
            (gt / "test_gt" / category / instance / f"{instance}_{t}_rgb.json").write_text(json.dumps(labelled))
        mapping.append({"input": f"test_gt/{category}/{instance}", "output": f"test/{secret}"})
    (gt / "test_gt_mapping.json").write_text(json.dumps(mapping))
    for secret in SEQ:
        _write_image(rng, base / "seq" / secret, f"{secret}_0", _metadata(rng, None, -1, as_list=True))
    return base
