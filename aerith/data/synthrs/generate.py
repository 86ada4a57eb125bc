"""Generate a SynthRS set: scenes, their text, every native format, the card.

Determinism: scene ``i`` is drawn from its own generator seeded with
``(seed, i)``; classes (balanced, in shuffled order) and splits come from a
generator seeded with ``seed`` alone. So the same ``(n, size, seed)`` gives
byte-identical files, whatever the number of worker processes (with the same
numpy, Pillow, tifffile and zlib versions: their encoders make the bytes).
Scene ``i`` keeps its content when ``n`` changes as long as its class does;
classes and splits are drawn for the whole set.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aerith.atomic import atomic_dir, file_in_the_way
from aerith.data.synthrs import writers
from aerith.data.synthrs.card import dataset_card
from aerith.data.synthrs.language import captions, questions, referring_expressions
from aerith.data.synthrs.layout import CLASS_NAMES, SCENE_CLASSES, make_scene

GENERATOR_VERSION = "1.0"
SPLIT_RATIOS: Mapping[str, float] = {"train": 0.8, "val": 0.1, "test": 0.1}
DEFAULT_SIZE = 128
EXPRESSIONS_PER_SCENE = 3


@dataclass(frozen=True)
class GenerateSummary:
    """What :func:`generate` wrote.

    Attributes:
        out_dir: the output folder.
        n, size, seed: the arguments.
        seconds: wall time of the generation.
        splits: scenes per split.
        classes: scenes per class.
        question_types: questions per RSVQA type.
        categories: objects per category.
        captions, expressions: totals.
    """

    out_dir: Path
    n: int
    size: int
    seed: int
    seconds: float
    splits: dict[str, int] = field(default_factory=dict)
    classes: dict[str, int] = field(default_factory=dict)
    question_types: dict[str, int] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)
    captions: int = 0
    expressions: int = 0


def assign(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Class and split of each of ``n`` scenes.

    Classes are balanced (``i % K`` shuffled); splits follow :data:`SPLIT_RATIOS`
    over a seeded permutation, val and test each ``round(0.1 n)``, train the rest.
    """
    rng = np.random.default_rng(seed)
    classes = [CLASS_NAMES[k] for k in rng.permutation(np.arange(n) % len(CLASS_NAMES))]
    n_val, n_test = round(n * SPLIT_RATIOS["val"]), round(n * SPLIT_RATIOS["test"])
    splits = [""] * n
    for rank, i in enumerate(rng.permutation(n)):
        splits[i] = "val" if rank < n_val else "test" if rank < n_val + n_test else "train"
    return classes, splits


def build_scene(
    index: int, scene_class: str, split: str, size: int, seed: int, width: int
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """One scene's record (graph, text, file names) and its encoded images."""
    rng = np.random.default_rng([seed, index])
    image, graph = make_scene(index, scene_class, size, rng)
    caps = captions(graph, rng)
    qs = questions(graph, rng)
    exprs = referring_expressions(graph, rng, EXPRESSIONS_PER_SCENE)
    record = graph.to_dict()
    record.update(
        split=split,
        files=writers.scene_files(index, SCENE_CLASSES[scene_class].folder, width),
        captions=caps,
        questions=[{"type": q.type, "question": q.question, "answer": q.answer} for q in qs],
        expressions=[{"object": oid, "text": q.text(), "box": list(graph.objects[oid].box)} for oid, q in exprs],
    )
    return record, writers.encode_images(image)


def _build(args: tuple[int, str, str, int, int, int]) -> tuple[dict[str, Any], dict[str, bytes]]:
    return build_scene(*args)


def _scenes(jobs: list[tuple[int, str, str, int, int, int]], workers: int) -> Iterator[tuple[dict[str, Any], dict[str, bytes]]]:
    if workers <= 1:
        yield from map(_build, jobs)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(workers) as pool:
        yield from pool.imap(_build, jobs, chunksize=16)


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"--out {out_dir} is a file, not a folder; SynthRS writes a folder of scenes (choose another --out)")
    above = file_in_the_way(out_dir)
    if above is not None:
        raise FileExistsError(f"--out {out_dir}: {above} is a file, not a folder; SynthRS cannot write under it (choose another --out)")
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return
    if not overwrite:
        raise FileExistsError(
            f"{out_dir} exists and is not empty; pass overwrite=True (--overwrite) to replace a SynthRS folder"
        )
    if not (out_dir / writers.SCENE_GRAPHS).is_file():
        raise FileExistsError(f"{out_dir} is not a SynthRS folder (no {writers.SCENE_GRAPHS}); refusing to replace it")


def generate(
    out_dir: str | Path,
    n: int,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    *,
    workers: int = 1,
    overwrite: bool = False,
) -> GenerateSummary:
    """Write ``n`` SynthRS scenes of ``size`` x ``size`` px to ``out_dir`` in every native format.

    The folder is built beside ``out_dir`` and renamed into place at the end, so an
    interrupted run leaves nothing half-written.

    Args:
        out_dir: output folder; must be absent, empty, or (with ``overwrite``) a SynthRS folder.
        n: number of scenes (at least 1).
        size: image side in pixels (at least 32; objects are sized relative to it).
        seed: non-negative seed; the same ``(n, size, seed)`` gives byte-identical files.
        workers: processes drawing scenes (the output does not depend on it).
        overwrite: replace an existing SynthRS folder.

    Raises:
        ValueError: bad ``n``, ``size``, ``seed`` or ``workers``.
        FileExistsError: ``out_dir`` holds something else.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if size < 32:
        raise ValueError(f"size must be at least 32 px so that objects stay visible, got {size}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    out_dir = Path(out_dir).expanduser()
    _check_out_dir(out_dir, overwrite)
    start = time.perf_counter()
    classes, splits = assign(n, seed)
    width = writers.id_width(n)
    jobs = [(i, classes[i], splits[i], size, seed, width) for i in range(n)]
    generator = {
        "name": "SynthRS",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "n": n,
        "size": size,
        "split_ratios": dict(SPLIT_RATIOS),
        "classes": list(CLASS_NAMES),
    }
    records: list[dict[str, Any]] = []
    with atomic_dir(out_dir) as tmp:
        q_id = 0
        for record, encoded in _scenes(jobs, workers):
            for q in record["questions"]:
                q["id"] = q_id
                q_id += 1
            writers.write_images(tmp, record["files"], encoded)
            records.append(record)
        writers.write_ucm_splits(tmp, records)
        writers.write_dior(tmp, records)
        writers.write_rsvqa(tmp, records)
        writers.write_karpathy(tmp, records)
        writers.write_scene_graphs(tmp, records, generator)
        (tmp / writers.CARD).write_text(dataset_card(records, generator), encoding="utf-8")
        tmp.chmod(0o755)  # mkdtemp made it private; the dataset is an ordinary folder
    return GenerateSummary(
        out_dir=out_dir,
        n=n,
        size=size,
        seed=seed,
        seconds=time.perf_counter() - start,
        splits=dict(Counter(r["split"] for r in records)),
        classes=dict(Counter(r["class"] for r in records)),
        question_types=dict(Counter(q["type"] for r in records for q in r["questions"])),
        categories=dict(Counter(o["category"] for r in records for o in r["objects"])),
        captions=sum(len(r["captions"]) for r in records),
        expressions=sum(len(r["expressions"]) for r in records),
    )
