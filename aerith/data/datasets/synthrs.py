"""SynthRS: Aerith's procedural remote-sensing scenes, served for all four tasks.

Datasheet:
    Source: generated offline by ``aerith data synth --out DIR --n N --size PX --seed S``
        (:func:`aerith.data.synthrs.generate`); nothing is downloaded.
    Content: top-down scenes of 10 classes (farmland, forest, dense residential,
        industrial, harbor, airport, river, beach, desert, parking lot) with
        objects (building, storage tank, airplane, ship, vehicle, tree, tennis
        court) of known colour, size, box and relations; five captions, six
        RSVQA-LR questions and up to three unique referring expressions per scene.
    Format: the native layouts of UCM (classification), RSVQA-LR (VQA), RSICD
        (Karpathy captions) and DIOR-RSVG (grounding), plus ``scene_graphs.json``
        (see :mod:`aerith.data.synthrs.writers`). Each task is read THROUGH the
        real loader of that format: :class:`~aerith.data.datasets.rsvqa.RSVQALR`,
        :class:`~aerith.data.datasets.karpathy.RSICD`,
        :class:`~aerith.data.datasets.dior_rsvg.DIORRSVG`, and for classification
        the UCM loader with SynthRS's class list (:class:`SynthRSScenes`).
    Splits: train/val/test = 0.8/0.1/0.1 of the scenes, drawn by the generator's
        seed; every format carries the same assignment (UCM split files, RSVQA
        split json, Karpathy ``split`` field, DIOR object-index files).
    Samples: as the underlying loader yields them, with ``meta`` extended by
        ``scene_id`` and ``scene_class``; captions also get ``scene_graph_id``
        (the scene's key in ``scene_graphs.json``) and ``scene_graphs`` (that
        file's path), grounding samples ``object_id`` and the category as
        SynthRS names it (``storage tank``, not DIOR's ``storagetank``).
    Class subsets: ``classes=[...]`` keeps only the scenes of those classes, for
        every task, and narrows ``classes`` (what classification prompts list, and
        what a classification sample's ``meta["label"]`` indexes) to them: train
        on some classes and hold the others out for zero-shot tests.
    Root: the folder ``aerith data synth`` wrote.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

from aerith.data.datasets.base import RSDataset, VerifyImages
from aerith.data.datasets.dior_rsvg import DIORRSVG
from aerith.data.datasets.folder import class_key
from aerith.data.datasets.karpathy import RSICD
from aerith.data.datasets.rsvqa import RSVQALR
from aerith.data.datasets.ucm import UCMerced
from aerith.data.errors import DatasetNotFoundError, OnBad, RecordError, SkippedRecordsWarning
from aerith.data.sample import Sample
from aerith.data.synthrs.layout import CLASS_NAMES
from aerith.data.synthrs.scene import SceneGraph
from aerith.data.synthrs.writers import SCENE_GRAPHS

TASK_CHOICES: tuple[str, ...] = ("all", "cls", "vqa", "cap", "vg")


class SynthRSScenes(UCMerced):
    """The UCM-layout tree of a SynthRS set: the UCM loader (layout, split files) with SynthRS's classes.

    A set of fewer scenes than classes has no folder for the classes it did not
    draw; they are read as empty (labels keep the order of all ten). A folder
    lost from a set is still an error: the split files name its images.
    """

    name = "synthrs"
    classes: ClassVar[tuple[str, ...]] = CLASS_NAMES
    class_names: ClassVar[Mapping[str, str]] = MappingProxyType({})  # SynthRS's names are words already

    def _expected_folders(self) -> tuple[str, ...]:
        assert self.image_dir is not None
        on_disk = {class_key(p.name) for p in self.image_dir.iterdir() if p.is_dir()}
        return tuple(c for c in self.classes if class_key(c) in on_disk)


class SynthRS(RSDataset):
    """A SynthRS set for one task or all four.

    Args:
        root: the folder written by ``aerith data synth``.
        split: ``"train"`` (the default), ``"val"`` or ``"test"``.
        task: ``"cls"``, ``"vqa"``, ``"cap"``, ``"vg"``, or ``"all"`` (the four in that order).
        classes: keep only the scenes of these classes (every task); ``None``: all ten.
        on_bad: ``"raise"`` on the first bad record, or ``"skip"`` and warn with the count.
        verify_images: check each image at index time (see
            :class:`~aerith.data.datasets.base.RSDataset`; by default when ``on_bad="skip"``).

    Attributes:
        classes: the scene classes (label order); only those asked for with ``classes=``.
        generator: the generator settings recorded in ``scene_graphs.json``.
    """

    name = "synthrs"
    classes: tuple[str, ...] = CLASS_NAMES

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        *,
        task: str = "all",
        classes: Sequence[str] | None = None,
        on_bad: OnBad = "raise",
        verify_images: VerifyImages = None,
    ) -> None:
        if task not in TASK_CHOICES:
            raise ValueError(f"synthrs: unknown task {task!r}; valid tasks: {', '.join(TASK_CHOICES)}")
        if classes is not None:
            if isinstance(classes, str):
                classes = [classes]
            unknown = [c for c in classes if c not in CLASS_NAMES]
            if unknown or not classes:
                raise ValueError(
                    f"synthrs: classes={list(classes)!r} names {'unknown ' + repr(unknown) if unknown else 'no class'}; "
                    f"valid classes: {', '.join(CLASS_NAMES)}"
                )
            self.classes = tuple(c for c in CLASS_NAMES if c in set(classes))  # label order
        self.task = task
        self.generator: dict[str, Any] = {}
        self._scenes: dict[int, dict[str, Any]] = {}
        super().__init__(root, split, on_bad=on_bad, verify_images=verify_images)

    @property
    def scene_graphs_path(self) -> Path:
        return self.root / SCENE_GRAPHS

    def scene_record(self, scene_id: int) -> dict[str, Any]:
        """The scene's full entry of ``scene_graphs.json`` (graph, split, files, captions, questions, expressions)."""
        return self._scenes[scene_id]

    def scene_graph(self, scene_id: int) -> SceneGraph:
        """The ground-truth graph of a scene."""
        return SceneGraph.from_dict(self._scenes[scene_id])

    def _read_scenes(self) -> None:
        path = self.scene_graphs_path
        if not path.is_file():
            raise DatasetNotFoundError(path, "the SynthRS ground truth that `aerith data synth` writes")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            self.generator = dict(data["generator"])
            self._scenes = {int(s["id"]): s for s in data["scenes"]}
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as err:
            raise RecordError(path, None, None, f"not a SynthRS scene-graph file ({type(err).__name__}: {err})") from err

    def _tag(self, sample: Sample, scene_id: int | None, source: Path, **extra: Any) -> Sample | None:
        if scene_id is None or scene_id not in self._scenes:
            self.bad.handle(RecordError(source, sample.image.name, "image", f"no scene of {SCENE_GRAPHS} has this image"))
            return None
        meta = {**sample.meta, "scene_id": scene_id, "scene_class": self._scenes[scene_id]["class"], **extra}
        return dataclasses.replace(sample, meta=meta)

    def _read_part(self, loader: type[RSDataset]) -> RSDataset:
        """One format's samples through its loader; the records it skips count as this dataset's.

        The part's own "skipped N bad record(s)" warning is folded into the one this
        dataset gives (so ``skipped`` and the warning count every task's records);
        its other warnings pass through.
        """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            part = loader(self.root, self.split, on_bad=self.bad.on_bad, verify_images=False)
        summary = f"{part.bad.source}: skipped {part.bad.count} bad record(s)"
        for w in caught:
            if not (issubclass(w.category, SkippedRecordsWarning) and part.bad.count and str(w.message).startswith(summary)):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        self.bad.skipped.extend(part.bad.skipped)
        return part

    def _load(self) -> list[Sample]:
        self._read_scenes()
        by_name = {
            fmt: {Path(s["files"][fmt]).name: sid for sid, s in self._scenes.items()} for fmt in ("ucm", "dior", "rsicd")
        }
        tagged: list[Sample | None] = []
        if self.task in ("all", "cls"):
            for s in self._read_part(SynthRSScenes):
                tagged.append(self._tag(s, by_name["ucm"].get(s.image.name), s.image))
        if self.task in ("all", "vqa"):
            for s in self._read_part(RSVQALR):
                tagged.append(self._tag(s, s.meta.get("image_id"), s.image))
        if self.task in ("all", "cap"):
            graphs = str(self.scene_graphs_path)
            for s in self._read_part(RSICD):
                sid = by_name["rsicd"].get(s.image.name)
                tagged.append(self._tag(s, sid, s.image, scene_graph_id=sid, scene_graphs=graphs))
        if self.task in ("all", "vg"):
            targets = {
                (sid, e["text"]): e["object"] for sid, scene in self._scenes.items() for e in scene["expressions"]
            }
            for s in self._read_part(DIORRSVG):
                sid = by_name["dior"].get(s.image.name)
                oid = targets.get((sid, s.prompt))
                if sid is not None and oid is None:
                    reason = "no referring expression of this scene reads so"
                    self.bad.handle(RecordError(s.image, s.prompt, "description", reason))
                    continue
                category = self._scenes[sid]["objects"][oid]["category"] if oid is not None else None
                tagged.append(self._tag(s, sid, s.image, object_id=oid, category=category))
        label = {c: i for i, c in enumerate(self.classes)}  # classes= narrows the label order too
        kept = []
        for s in tagged:
            if s is None or s.meta["scene_class"] not in label:
                continue
            if s.task == "cls":
                s = dataclasses.replace(s, meta={**s.meta, "label": label[s.targets[0]]})
            kept.append(s)
        return kept
