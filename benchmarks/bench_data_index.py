"""Time to index dataset annotations at real size: RSVQA-HR (about 1M question records) and DIOR-RSVG (38k objects).

The fakes are written first (not timed) in the real formats. RSVQA-HR: the
``train`` split files list every id of a 10,659-image, ~1.07M-question
database, 60% of them active (the real train share) and the rest inactive
stubs, as in the download. DIOR-RSVG: 17,402 XML files with 38,320 objects
(with ``<pose>``/``<difficult>`` children) and a 26,991-line object-index split.
Image files are empty placeholders: indexing only checks that each referenced
image exists (the XML gives the size, so no image header is read). The
baseline "parse only" is reading the same annotation files (``json.load`` with
the garbage collector paused, as the loader does / ``ElementTree.parse`` of one
file at a time), so the ratio is what the loader adds on top of reading. "RSS growth" is how
much the process's resident memory grew while the index was built (Linux
``/proc``; it includes parser memory not yet handed back to the system).

Run: ``python benchmarks/bench_data_index.py``.
"""

from __future__ import annotations

import gc
import json
import statistics
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aerith.data import load_dataset

HR_IMAGES, HR_QUESTIONS_PER_IMAGE, HR_TRAIN_SHARE = 10_659, 100, 0.6
DIOR_IMAGES, DIOR_OBJECTS, DIOR_TRAIN = 17_402, 38_320, 26_991
TYPES = ("presence", "comp", "count", "area")


def _write_rsvqa_hr(folder: Path) -> tuple[int, int]:
    """Write the train triplet; returns (question records, active questions)."""
    (folder / "Data").mkdir(parents=True)
    images, questions, answers = [], [], []
    n_train_images = int(HR_IMAGES * HR_TRAIN_SHARE)
    for img in range(HR_IMAGES):
        ids = list(range(len(questions), len(questions) + HR_QUESTIONS_PER_IMAGE))
        if img >= n_train_images:  # another split's image: stubs only
            images.append({"id": img, "active": False})
            questions += [{"id": q, "active": False} for q in ids]
            answers += [{"id": q, "active": False} for q in ids]
            continue
        (folder / "Data" / f"{img}.tif").touch()
        for q in ids:
            t = TYPES[q % 4]
            questions.append({"id": q, "date_added": 1.6e9, "img_id": img, "people_id": 0, "type": t,
                              "question": f"Is there a {t} road near the residential building number {q}?",
                              "answers_ids": [q], "active": True})  # fmt: skip
            answers.append({"id": q, "date_added": 1.6e9, "question_id": q, "people_id": 0, "answer": "yes", "active": True})
        images.append({"id": img, "date_added": 1.6e9, "questions_ids": ids, "original_name": f"{img}.png", "people_id": 0, "active": True})
    for name, records in (("images", images), ("questions", questions), ("answers", answers)):
        (folder / f"USGS_split_train_{name}.json").write_text(json.dumps({name: records}))
    return len(questions), n_train_images * HR_QUESTIONS_PER_IMAGE


def _write_dior(folder: Path) -> tuple[int, int]:
    """Write Annotations/, placeholder JPEGImages/ and train.txt; returns (objects, split lines)."""
    (folder / "Annotations").mkdir(parents=True)
    (folder / "JPEGImages").mkdir()
    per_image = [DIOR_OBJECTS // DIOR_IMAGES + (1 if i < DIOR_OBJECTS % DIOR_IMAGES else 0) for i in range(DIOR_IMAGES)]
    obj = (
        "  <object>\n    <name>ship</name>\n    <pose>Unspecified</pose>\n    <bndbox>\n      <xmin>10</xmin>\n"
        "      <ymin>10</ymin>\n      <xmax>50</xmax>\n      <ymax>60</ymax>\n    </bndbox>\n    <difficult>0</difficult>\n"
        "    <description>the gray ship at the lower left of the harbor</description>\n  </object>\n"
    )
    for i, n in enumerate(per_image):
        stem = f"{i + 1:05d}"
        (folder / "JPEGImages" / f"{stem}.jpg").touch()
        (folder / "Annotations" / f"{stem}.xml").write_text(
            f'<?xml version="1.0" encoding="UTF-8"?>\n<annotation>\n  <filename>{stem}.jpg</filename>\n'
            f"  <size>\n    <width>800</width>\n    <height>800</height>\n    <depth>3</depth>\n  </size>\n{obj * n}</annotation>\n"
        )
    step = DIOR_OBJECTS / DIOR_TRAIN  # an evenly spread, sorted subset, like the released split files
    (folder / "train.txt").write_text("".join(f"{int(k * step)}\n" for k in range(DIOR_TRAIN)))
    return DIOR_OBJECTS, DIOR_TRAIN


def _rss_mib() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _parse_json_paused(paths: list[Path]) -> list[Any]:
    gc.disable()
    try:
        return [json.loads(p.read_bytes()) for p in paths]
    finally:
        gc.enable()


def _measure(name: str, root: Path, records: int, parse: Callable[[], Any], step: int, repeats: int) -> dict[str, Any]:
    """Median of ``repeats`` index builds and parses; memory and item access from the first build."""
    gc.collect()
    before = _rss_mib()
    first_s, ds = _timed(lambda: load_dataset(name, root, "train"))
    gc.collect()
    after = _rss_mib()
    picks = range(0, len(ds), step)
    item_s, _ = _timed(lambda: [ds[i] for i in picks])
    samples = len(ds)
    del ds
    index_times = [first_s] + [_timed(lambda: load_dataset(name, root, "train"))[0] for _ in range(repeats - 1)]
    parse_times = [_timed(parse)[0] for _ in range(repeats)]
    return {
        "dataset": name, "records": records, "samples": samples,
        "index_s": statistics.median(index_times), "parse_only_s": statistics.median(parse_times),
        "index_rss_mib": None if before is None or after is None else after - before, "item_us": item_s / len(picks) * 1e6,
    }  # fmt: skip


def run(repeats: int = 3) -> dict:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        hr = Path(tmp) / "hr"
        n_records, _ = _write_rsvqa_hr(hr)
        rows.append(_measure("rsvqa-hr", hr, n_records, lambda: _parse_json_paused(sorted(hr.glob("*.json"))), 1000, repeats))
        dior = Path(tmp) / "dior"
        n_objects, _ = _write_dior(dior / "DIOR_RSVG")
        xmls = sorted((dior / "DIOR_RSVG" / "Annotations").glob("*.xml"))
        rows.append(_measure("dior-rsvg", dior, n_objects, lambda: [ET.parse(p).getroot().tag for p in xmls], 100, repeats))
    return {"rows": rows, "repeats": repeats}


def to_markdown(result: dict) -> str:
    lines = [
        "| dataset | records read | samples (train) | index (s) | parse only (s) | ratio index/parse | RSS growth (MiB) | item access (us) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        rss = "n/a" if r["index_rss_mib"] is None else f"{r['index_rss_mib']:.0f}"
        lines.append(
            f"| {r['dataset']} | {r['records']:,} | {r['samples']:,} | {r['index_s']:.2f} | {r['parse_only_s']:.2f} "
            f"| {r['index_s'] / r['parse_only_s']:.2f} | {rss} | {r['item_us']:.2f} |"
        )
    lines += [
        "",
        f"Median of {result['repeats']} runs. Records read: question records of the split files (active + stubs) "
        "for RSVQA-HR, objects for DIOR-RSVG. The index is built once in the constructor; item access is a list lookup.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(to_markdown(run()))
