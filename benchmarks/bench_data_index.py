"""Time to index dataset annotations at real size: RSVQA-HR (about 1M questions) and DIOR-RSVG (38k objects).

The fakes are written first (not timed) in the real formats; image files are empty
placeholders, since indexing only checks that each referenced image exists. The
baseline is the time to just parse the same annotation files (json.load / XML
parse), so the ratio is what the loader adds on top of reading.
"""

from __future__ import annotations

import json
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from aerith.data import load_dataset

HR_IMAGES, HR_QUESTIONS_PER_IMAGE = 10_659, 94  # about 1M questions in all splits
DIOR_IMAGES, DIOR_OBJECTS = 17_402, 38_320


def _write_rsvqa_hr(folder: Path) -> int:
    (folder / "Data").mkdir(parents=True)
    images, questions, answers = [], [], []
    types = ("presence", "comp", "count", "area")
    for img in range(HR_IMAGES):
        (folder / "Data" / f"{img}.tif").touch()
        ids = list(range(len(questions), len(questions) + HR_QUESTIONS_PER_IMAGE))
        for q in ids:
            questions.append({"id": q, "img_id": img, "type": types[q % 4], "question": "Is there a road?", "answers_ids": [q], "active": True})
            answers.append({"id": q, "question_id": q, "answer": "yes", "active": True})
        images.append({"id": img, "questions_ids": ids, "active": True})
    # one split holding everything: the loader still walks every record, as with the real stub-padded files
    for name, key, records in (("images", "images", images), ("questions", "questions", questions), ("answers", "answers", answers)):
        (folder / f"USGS_split_train_{name}.json").write_text(json.dumps({key: records}))
    return len(questions)


def _write_dior(folder: Path) -> int:
    (folder / "Annotations").mkdir(parents=True)
    (folder / "JPEGImages").mkdir()
    per_image = [DIOR_OBJECTS // DIOR_IMAGES + (1 if i < DIOR_OBJECTS % DIOR_IMAGES else 0) for i in range(DIOR_IMAGES)]
    obj = "<object><name>ship</name><pose>x</pose><bndbox><xmin>10</xmin><ymin>10</ymin><xmax>50</xmax><ymax>60</ymax></bndbox><description>the ship</description></object>"
    for i, n in enumerate(per_image):
        stem = f"{i + 1:05d}"
        (folder / "JPEGImages" / f"{stem}.jpg").touch()
        (folder / "Annotations" / f"{stem}.xml").write_text(f"<annotation><size><width>800</width><height>800</height></size>{obj * n}</annotation>")
    (folder / "train.txt").write_text("".join(f"{i}\n" for i in range(DIOR_OBJECTS)))
    return DIOR_OBJECTS


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def run() -> dict:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        hr = Path(tmp) / "hr"
        n_q = _write_rsvqa_hr(hr)
        base, _ = _timed(lambda: [json.loads(p.read_text()) for p in sorted(hr.glob("*.json"))])
        t, ds = _timed(lambda: load_dataset("rsvqa-hr", hr, "train"))
        rows.append({"dataset": "rsvqa-hr", "records": n_q, "samples": len(ds), "index_s": t, "parse_only_s": base})
        t_item, _ = _timed(lambda: [ds[i] for i in range(0, len(ds), 1000)])
        rows[-1]["item_us"] = t_item / len(range(0, len(ds), 1000)) * 1e6
        del ds
        dior = Path(tmp) / "dior"
        n_o = _write_dior(dior / "DIOR_RSVG")
        base, _ = _timed(lambda: [ET.parse(p) for p in sorted((dior / "DIOR_RSVG" / "Annotations").glob("*.xml"))])
        t, ds = _timed(lambda: load_dataset("dior-rsvg", dior, "train"))
        rows.append({"dataset": "dior-rsvg", "records": n_o, "samples": len(ds), "index_s": t, "parse_only_s": base})
        t_item, _ = _timed(lambda: [ds[i] for i in range(0, len(ds), 100)])
        rows[-1]["item_us"] = t_item / len(range(0, len(ds), 100)) * 1e6
    return {"rows": rows}


def to_markdown(result: dict) -> str:
    lines = [
        "| dataset | records | samples | index (s) | parse only (s) | ratio index/parse | item access (us) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['dataset']} | {r['records']:,} | {r['samples']:,} | {r['index_s']:.2f} | {r['parse_only_s']:.2f} "
            f"| {r['index_s'] / r['parse_only_s']:.2f} | {r['item_us']:.2f} |"
        )
    lines.append("")
    lines.append("The index is built once in the constructor; item access is a list lookup.")
    return "\n".join(lines)


if __name__ == "__main__":
    print(to_markdown(run()))
