"""The dataset card (``README.md``) written beside a SynthRS set: what it is and how much of everything."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from aerith.data.synthrs.language import QUESTION_TYPES
from aerith.data.synthrs.layout import SCENE_CLASSES
from aerith.data.synthrs.scene import CATEGORIES, RELATIONS
from aerith.data.synthrs.writers import SPLITS

Record = Mapping[str, Any]


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _per_split(records: Sequence[Record], key) -> dict[str, Counter]:
    out: dict[str, Counter] = {s: Counter() for s in SPLITS}
    for rec in records:
        out[rec["split"]].update(key(rec))
    return out


def dataset_card(records: Sequence[Record], generator: Mapping[str, Any]) -> str:
    """Markdown card with the generator settings and counts per split, class, question type and category."""
    ratios = "/".join(f"{generator['split_ratios'][s]:g}" for s in SPLITS)
    scenes = _per_split(records, lambda r: ["scene"])
    objects = _per_split(records, lambda r: [o["category"] for o in r["objects"]])
    qtypes = _per_split(records, lambda r: [q["type"] for q in r["questions"]])
    classes = _per_split(records, lambda r: [r["class"]])
    exprs = _per_split(records, lambda r: ["expr"] * len(r["expressions"]))
    caps = _per_split(records, lambda r: ["cap"] * len(r["captions"]))
    answers: dict[str, Counter] = {t: Counter() for t in QUESTION_TYPES}
    for rec in records:
        for q in rec["questions"]:
            answers[q["type"]][q["answer"]] += 1
    relations = Counter(rel["predicate"] for rec in records for rel in rec["relations"])
    in_scenes = Counter(c for rec in records for c in {o["category"] for o in rec["objects"]})

    def total(counter: dict[str, Counter], key: str) -> int:
        return sum(counter[s][key] for s in SPLITS)

    sections = [
        "# SynthRS",
        "Procedural top-down remote-sensing scenes whose every object, attribute and relation is known, "
        "written by Aerith's SynthRS generator in the native formats of UC Merced (classification), "
        "DIOR-RSVG (visual grounding), RSVQA-LR (VQA) and RSICD (Karpathy captions). Captions, answers and "
        "referring expressions are derived from each scene's ground-truth graph in `scene_graphs.json`; every "
        "referring expression matches exactly one object. Synthetic data: use it to test and smoke-train "
        "pipelines offline, not to report results on real imagery.",
        _table(
            ("setting", "value"),
            [
                ("generator", f"{generator['name']} {generator['version']}"),
                ("seed", generator["seed"]),
                ("scenes", generator["n"]),
                ("image size", f"{generator['size']} x {generator['size']} px, RGB"),
                ("split ratios (train/val/test)", ratios),
            ],
        ),
        "## Splits",
        _table(
            ("split", "scenes", "objects", "questions", "captions", "referring expressions"),
            [
                (s, scenes[s]["scene"], sum(objects[s].values()), sum(qtypes[s].values()), caps[s]["cap"], exprs[s]["expr"])
                for s in SPLITS
            ],
        ),
        "## Scene classes",
        _table(
            ("class", "UCM folder", "rural/urban", *SPLITS, "total"),
            [
                (name, spec.folder, spec.rural_urban, *(classes[s][name] for s in SPLITS), total(classes, name))
                for name, spec in SCENE_CLASSES.items()
            ],
        ),
        "## Question types (RSVQA-LR)",
        _table(
            ("type", *SPLITS, "total", "answers (most frequent first)"),
            [
                (t, *(qtypes[s][t] for s in SPLITS), total(qtypes, t),
                 ", ".join(f"{a}: {c}" for a, c in sorted(answers[t].items(), key=lambda kv: (-kv[1], kv[0]))[:8]))
                for t in QUESTION_TYPES
            ],
        ),  # fmt: skip
        "## Object categories",
        _table(
            ("category", "colours", *SPLITS, "total objects", "scenes with one"),
            [
                (c, ", ".join(spec.colours), *(objects[s][c] for s in SPLITS), total(objects, c), in_scenes[c])
                for c, spec in CATEGORIES.items()
            ],
        ),
        "## Relations",
        _table(("relation", "count"), [(r, relations[r]) for r in RELATIONS]),
        "## Files",
        "```\n"
        "UCMerced_LandUse/Images/<class folder>/<class folder>NNNNN.tif   classification (UCM layout)\n"
        "uc_merced-{train,val,test}.txt                                   split files (torchgeo style)\n"
        "DIOR_RSVG/Annotations/NNNNN.xml, JPEGImages/NNNNN.jpg             grounding (one <object> per expression)\n"
        "DIOR_RSVG/{train,val,test}.txt                                   object indices over all XML files\n"
        "RSVQA_LR/LR_split_{split}_{images,questions,answers}.json        VQA (stubs outside the split)\n"
        "RSVQA_LR/Images_LR/<id>.tif\n"
        "RSICD/dataset_rsicd.json, RSICD/RSICD_images/<class>_<id>.png    captions (Karpathy JSON)\n"
        "scene_graphs.json                                                ground truth and all text per scene\n"
        "```\n"
        "Boxes are integer pixels `x1 y1 x2 y2` with exclusive ends (width = x2 - x1).",
        "## Loading",
        "```python\n"
        "from aerith.data import load_dataset\n"
        'ds = load_dataset("synthrs", root, split="train", task="all")  # or "cls", "vqa", "cap", "vg"\n'
        "```\n"
        'The formats also open with the loaders of the real datasets: `load_dataset("rsvqa-lr", root)`, '
        '`load_dataset("rsicd", root)`, `load_dataset("dior-rsvg", root)`; the UCM tree reads with the UCM '
        "loader given SynthRS's class list (`aerith.data.datasets.synthrs.SynthRSScenes`).",
    ]
    return "\n\n".join(sections) + "\n"
