"""Writer of fake RSVQA json triplets, quirks included: database-wide ids with inactive stubs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tifffile

TYPES = {"LR": ("presence", "comp", "count", "rural_urban"), "USGS": ("presence", "comp", "count", "area")}
ANSWERS = {"presence": "yes", "comp": "no", "count": "3", "rural_urban": "rural", "area": "120m2"}


def write_rsvqa(folder: Path, *, prefix: str, image_dir: str, splits: tuple[str, ...], seed: int) -> Path:
    """Two images per split, one question of each type per image; every split file lists all ids."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / image_dir).mkdir(exist_ok=True)
    types = TYPES[prefix]
    images, questions, answers = [], [], []
    owner = {}  # id -> split
    for split in splits:
        for _ in range(2):
            img_id = len(images)
            tifffile.imwrite(folder / image_dir / f"{img_id}.tif", rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
            q_ids = []
            for t in types:
                qid = len(questions)
                questions.append({"id": qid, "img_id": img_id, "type": t, "question": f"Is there a {t} thing?", "answers_ids": [qid], "active": True})
                answers.append({"id": qid, "quesiton_id": qid, "answer": ANSWERS[t], "active": True})  # the typo of some copies
                owner[("q", qid)] = split
                q_ids.append(qid)
            images.append({"id": img_id, "questions_ids": q_ids, "active": True, "original_name": f"{img_id}.tif"})
            owner[("i", img_id)] = split
    for split in splits:
        def view(records, kind):
            return [r if owner[(kind, r["id"])] == split else {"id": r["id"], "active": False} for r in records]

        base = f"{prefix}_split_{split}"
        (folder / f"{base}_images.json").write_text(json.dumps({"images": view(images, "i")}))
        (folder / f"{base}_questions.json").write_text(json.dumps({"questions": view(questions, "q")}))
        (folder / f"{base}_answers.json").write_text(json.dumps({"answers": view(answers, "q")}))
    return folder
