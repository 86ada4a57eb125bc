"""Fake RSVQA-LR in its real layout, and the writer of RSVQA json triplets it shares with RSVQA-HR.

Quirks written: every split file lists every id of the whole database, the
records of other splits as stubs ``{"id": i, "active": false}``; answer
records spell their back-reference ``quesiton_id`` (as some copies do); the
images are ``<id>.tif`` numbered over the whole database.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import tifffile

QA = tuple[str, str, str]  # (type, question, answer)

TYPES = ("presence", "comp", "count", "rural_urban")
ANSWERS = {"presence": "yes", "comp": "no", "count": "3", "rural_urban": "rural", "area": "120m2"}


def write_rsvqa(
    folder: Path, *, prefix: str, image_dir: str, splits: Mapping[str, Sequence[tuple[np.ndarray, Sequence[QA]]]]
) -> Path:
    """Write ``<prefix>_split_<split>_{images,questions,answers}.json`` and ``<image_dir>/<id>.tif``.

    Args:
        prefix: ``"LR"`` or ``"USGS"`` (HR).
        splits: split name -> ``(HxWxC uint8 pixels, [(type, question, answer), ...])`` per image.
            Image, question and answer ids run over all splits in the order given.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / image_dir).mkdir(exist_ok=True)
    images, questions, answers = [], [], []
    owner: dict[tuple[str, int], str] = {}
    for split, records in splits.items():
        for pixels, qas in records:
            img_id = len(images)
            tifffile.imwrite(folder / image_dir / f"{img_id}.tif", pixels)
            q_ids = []
            for qtype, question, answer in qas:
                qid = len(questions)
                questions.append({"id": qid, "img_id": img_id, "type": qtype, "question": question, "answers_ids": [qid], "active": True})
                answers.append({"id": qid, "quesiton_id": qid, "answer": answer, "active": True})
                owner["q", qid] = split
                q_ids.append(qid)
            images.append({"id": img_id, "questions_ids": q_ids, "active": True, "original_name": f"{img_id}.tif"})
            owner["i", img_id] = split

    def view(records: list[dict], kind: str, split: str) -> list[dict]:
        return [r if owner[kind, r["id"]] == split else {"id": r["id"], "active": False} for r in records]

    for split in splits:
        base = f"{prefix}_split_{split}"
        for name, records, kind in (("images", images, "i"), ("questions", questions, "q"), ("answers", answers, "q")):
            (folder / f"{base}_{name}.json").write_text(json.dumps({name: view(records, kind, split)}))
    return folder


def fake_splits(splits: Sequence[str], types: Sequence[str], seed: int) -> dict[str, list[tuple[np.ndarray, list[QA]]]]:
    """Two 16x16 images per split, one question of each type per image."""
    rng = np.random.default_rng(seed)
    return {
        split: [
            (rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), [(t, f"Is there a {t} thing in image {k}?", ANSWERS[t]) for t in types])
            for k in range(2)
        ]
        for split in splits
    }


def write_fake(root: Path, seed: int = 0) -> Path:
    """Write ``root/RSVQA_LR`` (2 images x 4 questions per split) and return ``root``."""
    write_rsvqa(Path(root) / "RSVQA_LR", prefix="LR", image_dir="Images_LR", splits=fake_splits(("train", "val", "test"), TYPES, seed))
    return Path(root)
