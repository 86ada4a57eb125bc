"""SynthRS in the native formats of UCM, DIOR-RSVG, RSVQA-LR and RSICD (``DATASETS.md``).

Layout under the output folder (``NNNNN`` = scene id, zero-padded to at least 5 digits)::

    UCMerced_LandUse/Images/<class folder>/<class folder>NNNNN.tif   RGB TIFF (zlib)
    uc_merced-{train,val,test}.txt                                   torchgeo-style split files
    DIOR_RSVG/Annotations/NNNNN.xml                                  VOC-like, one <object> per expression
    DIOR_RSVG/JPEGImages/NNNNN.jpg                                   JPEG, quality 95, no chroma subsampling
    DIOR_RSVG/{train,val,test}.txt                                   0-based object indices over all XML files
    RSVQA_LR/Images_LR/<id>.tif                                      same TIFF bytes as the UCM copy
    RSVQA_LR/LR_split_{split}_{images,questions,answers}.json        every id of the database, stubs outside the split
    RSICD/dataset_rsicd.json + RSICD/RSICD_images/<class folder>_<id>.png   Karpathy JSON with a split field
    scene_graphs.json                                                the ground truth and all text, per scene
    README.md                                                        the dataset card

Every file is a pure function of the records and images: JSON keys are
sorted, encoders run with fixed settings, and nothing records a time.
"""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from PIL import Image

SPLITS: tuple[str, ...] = ("train", "val", "test")
UCM_IMAGES = "UCMerced_LandUse/Images"
DIOR = "DIOR_RSVG"
RSVQA = "RSVQA_LR"
RSICD = "RSICD"
SCENE_GRAPHS = "scene_graphs.json"
CARD = "README.md"

Record = Mapping[str, Any]


def id_width(n: int) -> int:
    """Digits of the zero-padded scene ids of a set of ``n`` scenes."""
    return max(5, len(str(max(n - 1, 0))))


def scene_files(scene_id: int, folder: str, width: int) -> dict[str, str]:
    """Paths (relative to the output folder) of one scene's images in each format."""
    padded = f"{scene_id:0{width}d}"
    return {
        "ucm": f"{UCM_IMAGES}/{folder}/{folder}{padded}.tif",
        "dior": f"{DIOR}/JPEGImages/{padded}.jpg",
        "rsvqa": f"{RSVQA}/Images_LR/{scene_id}.tif",
        "rsicd": f"{RSICD}/RSICD_images/{folder}_{scene_id}.png",
    }


def encode_images(image: np.ndarray) -> dict[str, bytes]:
    """The image as TIFF, PNG and JPEG bytes (fixed encoder settings, no timestamps)."""
    tif = io.BytesIO()
    tifffile.imwrite(tif, image, photometric="rgb", compression="zlib", compressionargs={"level": 1}, metadata=None)
    pil = Image.fromarray(image)
    png, jpg = io.BytesIO(), io.BytesIO()
    pil.save(png, format="PNG", compress_level=1)
    pil.save(jpg, format="JPEG", quality=95, subsampling=0)
    return {"tif": tif.getvalue(), "png": png.getvalue(), "jpg": jpg.getvalue()}


def write_images(out: Path, files: Mapping[str, str], encoded: Mapping[str, bytes]) -> None:
    """Write one scene's images in every format."""
    for key, relative in files.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encoded[Path(relative).suffix[1:]])


def dump_json(path: Path, data: Any, *, indent: int | None = None) -> None:
    """Write JSON with sorted keys (compact unless ``indent``) and a final newline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    separators = (",", ":") if indent is None else (",", ": ")
    text = json.dumps(data, sort_keys=True, indent=indent, separators=separators, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")


def _by_split(records: Iterable[Record]) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = {s: [] for s in SPLITS}
    for rec in records:
        out[rec["split"]].append(rec)
    return out


# -- UCM ---------------------------------------------------------------------------


def write_ucm_splits(out: Path, records: Sequence[Record]) -> None:
    """``uc_merced-{split}.txt`` beside ``UCMerced_LandUse/``: one bare file name per line."""
    for split, recs in _by_split(records).items():
        names = "".join(Path(r["files"]["ucm"]).name + "\n" for r in recs)
        (out / f"uc_merced-{split}.txt").write_text(names, encoding="utf-8")


# -- DIOR-RSVG ---------------------------------------------------------------------


def dior_name(category: str) -> str:
    """DIOR spells categories glued in lower case (``storagetank``)."""
    return category.replace(" ", "")


def dior_xml(record: Record) -> bytes:
    """The VOC-like annotation of one scene: one ``<object>`` per referring expression."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "JPEGImages"
    ET.SubElement(root, "filename").text = Path(record["files"]["dior"]).name
    ET.SubElement(ET.SubElement(root, "source"), "database").text = "SynthRS"
    size = ET.SubElement(root, "size")
    for tag, value in (("width", record["size"]), ("height", record["size"]), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    objects = {o["id"]: o for o in record["objects"]}
    for expr in record["expressions"]:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = dior_name(objects[expr["object"]]["category"])
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "0"
        box = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), expr["box"], strict=True):
            ET.SubElement(box, tag).text = str(int(value))
        ET.SubElement(obj, "description").text = expr["text"]
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=False) + b"\n"


def write_dior(out: Path, records: Sequence[Record]) -> None:
    """Annotation XML per scene and the object-index split files.

    Object indices count ``<object>`` elements over all XML files in sorted file
    order; file names are zero-padded scene ids, so that order is scene order.
    """
    folder = out / DIOR / "Annotations"
    folder.mkdir(parents=True, exist_ok=True)
    lines: dict[str, list[str]] = {s: [] for s in SPLITS}
    index = 0
    for rec in sorted(records, key=lambda r: Path(r["files"]["dior"]).stem):
        (folder / f"{Path(rec['files']['dior']).stem}.xml").write_bytes(dior_xml(rec))
        for _ in rec["expressions"]:
            lines[rec["split"]].append(f"{index}\n")
            index += 1
    for split, rows in lines.items():
        (out / DIOR / f"{split}.txt").write_text("".join(rows), encoding="utf-8")


# -- RSVQA-LR ----------------------------------------------------------------------


def write_rsvqa(out: Path, records: Sequence[Record]) -> None:
    """``LR_split_{split}_{images,questions,answers}.json``: list index = id, stubs outside the split.

    Question and answer ids run over the whole database in scene order; each
    question has one answer with the same id.
    """
    images, questions, answers = [], [], []
    for rec in sorted(records, key=lambda r: r["id"]):
        split, name = rec["split"], Path(rec["files"]["rsvqa"]).name
        q_ids = [q["id"] for q in rec["questions"]]
        images.append(({"id": rec["id"], "active": True, "questions_ids": q_ids, "original_name": name}, split))
        for q in rec["questions"]:
            question = {"id": q["id"], "img_id": rec["id"], "type": q["type"], "question": q["question"]}
            questions.append(({**question, "answers_ids": [q["id"]], "active": True}, split))
            answers.append(({"id": q["id"], "question_id": q["id"], "answer": q["answer"], "active": True}, split))
    for table in (images, questions, answers):
        if [r["id"] for r, _ in table] != list(range(len(table))):
            raise ValueError("RSVQA ids must run 0..N-1 in order (list index = id)")
    for split in SPLITS:
        for key, table in (("images", images), ("questions", questions), ("answers", answers)):
            rows = [r if s == split else {"id": r["id"], "active": False} for r, s in table]
            dump_json(out / RSVQA / f"LR_split_{split}_{key}.json", {key: rows})


# -- RSICD (Karpathy JSON) ---------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")


def write_karpathy(out: Path, records: Sequence[Record]) -> None:
    """``dataset_rsicd.json``: one image record per scene with its five sentences and split."""
    images = []
    sentid = 0
    for rec in sorted(records, key=lambda r: r["id"]):
        sentences = []
        for raw in rec["captions"]:
            sentences.append({"tokens": _WORD.findall(raw.lower()), "raw": raw, "imgid": rec["id"], "sentid": sentid})
            sentid += 1
        images.append(
            {
                "filename": Path(rec["files"]["rsicd"]).name,
                "imgid": rec["id"],
                "split": rec["split"],
                "sentids": [s["sentid"] for s in sentences],
                "sentences": sentences,
            }
        )
    dump_json(out / RSICD / "dataset_rsicd.json", {"dataset": "synthrs", "images": images})


# -- ground truth ------------------------------------------------------------------


def write_scene_graphs(out: Path, records: Sequence[Record], generator: Mapping[str, Any]) -> None:
    """``scene_graphs.json``: ``{"generator": {...}, "scenes": [record, ...]}`` in scene order."""
    dump_json(out / SCENE_GRAPHS, {"generator": dict(generator), "scenes": sorted(records, key=lambda r: r["id"])})
