"""The work behind ``aerith data convert | stats | show``: plain functions the CLI calls.

All three take the loader's own options (``task``, ``split_file``, ``ratios``,
``verify_images`` ...) as ``options``; on the command line ``--option KEY=VALUE``
(:func:`parse_options`, values read as YAML scalars or lists). ``convert`` and
``show`` also take ``on_bad`` (``stats`` always skips and counts); with
``on_bad="skip"`` bad records and unreadable images are left out and counted.
"""

from __future__ import annotations

import inspect
import io
import os
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from aerith.atomic import atomic_write_bytes, file_in_the_way
from aerith.data.errors import DataError, DatasetNotFoundError, OnBad, SkippedRecordsWarning
from aerith.data.registry import get_dataset_class, load_dataset
from aerith.data.sample import Sample

ExportFormat = Literal["llava", "lhrs"]
FORMATS: tuple[str, ...] = ("llava", "lhrs")
T = TypeVar("T")


def parse_options(items: Sequence[str]) -> dict[str, Any]:
    """``["task=vg", "ratios=[0.8, 0.1, 0.1]"]`` -> ``{"task": "vg", "ratios": [0.8, 0.1, 0.1]}``.

    Values are read as YAML (numbers, ``true``/``false``, ``null``, lists); anything
    else stays text. ``-`` in a key is read as ``_`` (``split-file`` = ``split_file``).

    Raises:
        ValueError: an item without ``=``, an empty key or a key given twice.
    """
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ValueError(f"--option takes KEY=VALUE (e.g. task=vg), got {item!r}")
        if key in out:
            raise ValueError(f"--option {key} is given twice")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        out[key] = value
    return out


def loader_options(name: str) -> list[str]:
    """The keyword options the loader of dataset ``name`` takes (``on_bad``, ``task``, ``split_file`` ...)."""
    cls = get_dataset_class(name)
    params = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def check_options(name: str, options: Mapping[str, Any]) -> None:
    """Refuse an option the loader of ``name`` does not take, listing those it does.

    Raises:
        ValueError: naming the option, the dataset and the valid options.
    """
    valid = loader_options(name)
    for key in options:
        if key not in valid:
            raise ValueError(f"{name} has no loader option {key!r}; its options: {', '.join(valid)}")


def _given_twice(options: Mapping[str, Any] | None, fixed: Mapping[str, Any], why: str) -> None:
    twice = sorted(set(options or {}) & set(fixed))
    if twice:
        raise ValueError(f"loader option {twice[0]!r} is {why}; do not pass it in the options")


def _load(name: str, root: str | Path, split: str | None, options: Mapping[str, Any] | None, **fixed: Any):
    _given_twice(options, fixed, "its own argument (--on-bad on the command line)")
    merged = {**dict(options or {}), **fixed}
    check_options(name, merged)
    return load_dataset(name, root, split=split, **merged)


def collect_warnings(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, list[str]]:
    """Call ``fn`` and return its result with the messages of the skip warnings it issued (for the CLI to print)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedRecordsWarning)
        result = fn(*args, **kwargs)
    messages = []
    for w in caught:
        if issubclass(w.category, SkippedRecordsWarning):
            messages.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return result, messages


def check_out_file(out: str | Path, root: str | Path, overwrite: bool, option: str = "--out") -> Path:
    """Refuse an output file that would destroy something: a folder, an existing file without
    ``overwrite``, or an existing file under the dataset's ``root`` (its own annotations) at all.
    """
    out = Path(out).expanduser()
    if out.is_dir():
        raise ValueError(f"{option} {out} is a folder, not a file")
    above = file_in_the_way(out)
    if above is not None:
        raise ValueError(f"{option} {out}: {above} is a file, not a folder")
    if out.exists() or out.is_symlink():
        inside = Path(os.path.abspath(out)).is_relative_to(Path(os.path.abspath(Path(root).expanduser())))
        if inside:
            raise ValueError(f"{option} {out} is a file of the dataset under {root}; write elsewhere")
        if not overwrite:
            raise ValueError(f"{option} {out} exists; pass --overwrite to replace it")
    return out


def convert(
    name: str,
    root: str | Path,
    split: str | None,
    out: str | Path,
    fmt: ExportFormat = "llava",
    seed: int = 0,
    *,
    options: Mapping[str, Any] | None = None,
    on_bad: OnBad = "raise",
    overwrite: bool = False,
) -> Path:
    """Write one split of a dataset as LLaVA or LHRS-Bot instruction JSON.

    Every sample becomes one instruction (:func:`aerith.data.instructions.to_instruction`
    with ``index`` = its position, so phrasings vary and are reproducible by ``seed``).
    Image paths are written relative to ``root``: read the file back with
    ``from_llava(out, root)`` / ``from_lhrs(out, root)``.

    Args:
        name / root / split: the dataset as :func:`aerith.data.load_dataset` takes it
            (``split=None``: the dataset's default split).
        out: the JSON file to write (atomically).
        fmt: ``"llava"`` or ``"lhrs"``.
        seed: phrasing seed.
        options: more keyword arguments for the loader.
        on_bad: ``"skip"`` leaves out (and counts, in one warning) bad records and
            unreadable images instead of stopping at the first.
        overwrite: replace an existing ``out`` (never one under ``root``).
    Returns:
        ``out`` as a Path.
    Raises:
        ValueError: ``out`` is a folder, exists without ``overwrite``, or is a file under ``root``.
    """
    from aerith.data.instructions import to_instruction
    from aerith.data.interop import to_lhrs, to_llava, write_json

    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    out = check_out_file(out, root, overwrite)
    ds = _load(name, root, split, options, on_bad=on_bad)
    if len(ds) == 0:
        raise ValueError(f"{name} ({root}, split {ds.split}) has no samples to convert")
    classes = getattr(ds, "classes", None) or None
    names = getattr(ds, "class_names", None) or None
    instructions = [to_instruction(s, classes=classes, seed=seed, index=i, names=names) for i, s in enumerate(ds)]
    base = ds.root  # the root as the loader resolved it (``~`` expanded), so that paths are relative to it
    data = to_llava(instructions, image_base=base) if fmt == "llava" else to_lhrs(instructions, image_base=base)
    return write_json(data, out)


def _split_stats(samples: Sequence[Sample], skipped: int, unreadable: int = 0) -> dict[str, Any]:
    tasks = Counter(s.task for s in samples)
    out: dict[str, Any] = {
        "samples": len(samples),
        "images": len({s.image for s in samples}),
        "skipped": skipped,
        "unreadable_images": unreadable,
        "tasks": dict(sorted(tasks.items())),
    }
    classes = Counter(s.targets[0] for s in samples if s.task == "cls" and s.targets)
    classes.update(str(s.meta["category"]) for s in samples if s.task == "vg" and "category" in s.meta)
    if classes:
        out["classes"] = dict(sorted(classes.items()))
    kinds = Counter(s.kind for s in samples if s.kind is not None)
    if kinds:
        out["question_types"] = dict(sorted(kinds.items()))
    answers = [a for s in samples if s.task == "vqa" for a in s.targets]
    if answers:
        out["answers"] = {"total": len(answers), "unique": len(set(answers))}
    captions = [c for s in samples if s.task == "cap" for c in s.targets]
    if captions:
        out["captions"] = {"total": len(captions), "unique": len(set(captions))}
    expressions = [s.prompt for s in samples if s.task == "vg" and s.prompt]
    if expressions:
        out["expressions"] = {"total": len(expressions), "unique": len(set(expressions))}
    return out


def _sample_problems(split: str, samples: Sequence[Sample]) -> list[str]:
    problems = []
    no_target = sum(1 for s in samples if s.task != "vg" and not s.targets)
    if no_target:
        problems.append(f"{split}: {no_target} sample(s) without a target")
    no_box = sum(1 for s in samples if s.task == "vg" and s.box is None)
    if no_box:
        problems.append(f"{split}: {no_box} grounding sample(s) without a box")
    bad_box = sum(1 for s in samples if s.box is not None and (s.box[2] <= s.box[0] or s.box[3] <= s.box[1]))
    if bad_box:
        problems.append(f"{split}: {bad_box} box(es) with no area (x2 <= x1 or y2 <= y1)")
    no_prompt = sum(1 for s in samples if s.task in ("vqa", "vg") and not (s.prompt or "").strip())
    if no_prompt:
        problems.append(f"{split}: {no_prompt} question(s) or expression(s) empty")
    return problems


def stats(name: str, root: str | Path, *, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Counts and problems of every split of a dataset found on disk.

    Each split the loader knows is indexed with ``on_bad="skip"``, which also checks
    every image's header (``options={"verify_images": "full"}`` decodes them too);
    skipped records, unreadable images and the loader's warnings are counted, a split
    that is not there is reported, not fatal.

    Returns:
        ``{"dataset", "root", "splits": {split: {"samples", "images", "skipped", "unreadable_images", "tasks",
        "classes"?, "question_types"?, "answers"?, "captions"? {"total", "unique"},
        "expressions"?}}, "missing_splits": [...], "warnings": n, "problems": [str, ...]}``
    Raises:
        KeyError: unknown dataset name.
        DatasetNotFoundError: the root folder itself is missing, or no split of the dataset is in it
            (the first split's error: a wrong root is an error, not a table of missing splits).
    """
    from aerith.data.datasets.base import check_root

    cls = get_dataset_class(name)
    root = Path(root)
    check_root(root, name)
    _given_twice(options, {"on_bad": "skip"}, "always 'skip' here, so that bad records are counted")
    check_options(name, {**dict(options or {}), "on_bad": "skip"})
    result: dict[str, Any] = {"dataset": name, "root": str(root), "splits": {}, "missing_splits": [], "warnings": 0}
    problems: list[str] = []
    images: dict[str, set[Path]] = {}
    not_found: list[DatasetNotFoundError] = []
    for split in cls.splits:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                ds = load_dataset(name, root, split=split, **{**dict(options or {}), "on_bad": "skip"})
            except DatasetNotFoundError as err:
                not_found.append(err)
                if len(not_found) == len(cls.splits):
                    raise not_found[0] from None  # no split at all: the root is wrong, and the first reason says how
                result["missing_splits"].append(split)
                problems.append(f"{split}: split not found ({err})")
                continue
            except DataError as err:
                problems.append(f"{split}: cannot be read ({err})")
                continue
        result["warnings"] += len(caught)  # skipped records and what else the loader warned of
        problems += [f"{split}: {w.message}" for w in caught]
        samples = list(ds)
        unreadable = getattr(ds, "unreadable_images", {})
        result["splits"][split] = _split_stats(samples, getattr(ds, "skipped", 0), len(unreadable))
        if unreadable:
            path, reason = next(iter(unreadable.items()))
            problems.append(f"{split}: {len(unreadable)} unreadable image(s), left out (e.g. {path}: {reason})")
        if not samples:
            problems.append(f"{split}: no samples")
        problems += _sample_problems(split, samples)
        images[split] = {s.image for s in samples}
    names = list(images)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = len(images[a] & images[b])
            tasks = set(result["splits"][a]["tasks"]) | set(result["splits"][b]["tasks"])
            # Grounding and VQA splits may share images by design (DIOR-RSVG splits objects).
            if shared and tasks & {"cls", "cap"}:
                problems.append(f"{a} and {b} share {shared} image(s)")
    result["problems"] = problems
    return result


def stats_table(result: Mapping[str, Any]):
    """A ``rich.table.Table`` of :func:`stats` output, one row per split."""
    from rich.table import Table

    table = Table(title=f"{result['dataset']} ({result['root']})")
    unreadable = any(s.get("unreadable_images") for s in result["splits"].values())  # a column only when needed
    columns = ["split", "samples", "images", "skipped", "tasks", "classes", "question types", "captions (unique/total)"]
    if unreadable:
        columns.insert(4, "unreadable images")
    for column in columns:
        table.add_column(column, justify="left" if column in ("split", "tasks", "question types") else "right")
    for split, s in result["splits"].items():
        caps = s.get("captions")
        row = [
            split,
            str(s["samples"]),
            str(s["images"]),
            str(s["skipped"]),
            ", ".join(f"{k} {v}" for k, v in s["tasks"].items()),
            str(len(s.get("classes", {}))) if s.get("classes") else "-",
            ", ".join(f"{k} {v}" for k, v in s.get("question_types", {}).items()) or "-",
            f"{caps['unique']}/{caps['total']}" if caps else "-",
        ]
        if unreadable:
            row.insert(4, str(s.get("unreadable_images", 0)))
        table.add_row(*row)
    for split in result["missing_splits"]:
        table.add_row(split, "missing", *[""] * (len(columns) - 2))
    return table


# ---------------------------------------------------------------------------- show

_MIN_SIDE = 256
_MAX_SIDE = 1024


def _lines(sample: Sample) -> list[str]:
    if sample.task == "cls":
        lines = [f"class: {sample.targets[0] if sample.targets else '?'}"]
    elif sample.task == "vqa":
        kind = f" ({sample.kind})" if sample.kind else ""
        lines = [f"Q{kind}: {sample.prompt}", f"A: {' | '.join(sample.targets)}"]
    elif sample.task == "vg":
        lines = [f"expression: {sample.prompt}"]
    else:
        refs = list(dict.fromkeys(sample.targets))  # unique, in order
        lines = [f"{i + 1}. {c}" for i, c in enumerate(refs)]
    if sample.box is not None:
        lines.append("box (px): [" + ", ".join(f"{v:.0f}" for v in sample.box) + "]")
    return lines


def _wrap(text: str, draw: Any, font: Any, width: int) -> list[str]:
    out: list[str] = []
    line = ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and draw.textlength(trial, font=font) > width:
            out.append(line)
            line = word
        else:
            line = trial
    out.append(line)
    return out


def render_sample(sample: Sample, title: str | None = None):
    """The sample's image with its box in red and its text (class, Q/A, caption, expression) below.

    Small images are enlarged (nearest neighbour) to at least 256 px, large ones reduced
    to at most 1024 px, so the text stays readable. Returns an RGB ``PIL.Image``.
    """
    from PIL import Image, ImageDraw, ImageFont

    from aerith.imageio import load_rgb

    image = load_rgb(sample.image, bands=sample.meta.get("bands"))
    w, h = image.size
    scale = min(max(_MIN_SIDE / min(w, h), 1.0), _MAX_SIDE / max(w, h))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = image.resize(size, Image.NEAREST if scale > 1 else Image.BILINEAR)
    draw = ImageDraw.Draw(image)
    if sample.box is not None:
        x1, y1, x2, y2 = (v * scale for v in sample.box)
        draw.rectangle((x1, y1, x2, y2), outline=(255, 0, 0), width=max(2, round(max(size) / 200)))
    font = ImageFont.load_default(size=14)
    width = max(size[0], 320)
    pad, line_h = 8, 18
    text = [f"{title or sample.image.name} - {sample.task}"] + _lines(sample)
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    wrapped = [piece for line in text for piece in _wrap(line, scratch, font, width - 2 * pad)]
    canvas = Image.new("RGB", (width, size[1] + 2 * pad + line_h * len(wrapped)), "white")
    canvas.paste(image, ((width - size[0]) // 2, 0))
    ink = ImageDraw.Draw(canvas)
    for i, line in enumerate(wrapped):
        ink.text((pad, size[1] + pad + i * line_h), line, fill=(0, 0, 0), font=font)
    return canvas


def show(
    name: str,
    root: str | Path,
    split: str | None,
    index: int,
    out: str | Path,
    *,
    options: Mapping[str, Any] | None = None,
    on_bad: OnBad = "raise",
    overwrite: bool = False,
) -> Path:
    """Draw sample ``index`` of a split (see :func:`render_sample`) into the PNG ``out``, atomically.

    ``split=None`` reads the dataset's default split (:func:`aerith.data.load_dataset`);
    with ``on_bad="skip"`` the index counts the samples left after bad records and
    unreadable images are skipped. An existing ``out`` is replaced only with ``overwrite``,
    and never one under ``root`` (see :func:`check_out_file`).
    """
    out = check_out_file(out, root, overwrite)
    ds = _load(name, root, split, options, on_bad=on_bad)
    if not -len(ds) <= index < len(ds):
        raise ValueError(f"index {index} out of range: {name} split {ds.split} has {len(ds)} samples")
    picture = render_sample(ds[index], title=f"{name} {ds.split} #{index}")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return atomic_write_bytes(out, buffer.getvalue())


__all__ = [
    "FORMATS", "check_options", "collect_warnings", "convert", "loader_options", "parse_options", "render_sample", "show",
    "stats", "stats_table",
]
