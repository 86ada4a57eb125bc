"""Run a benchmark: ask a model in batches, log answers as they come, score them (DESIGN §6).

:func:`evaluate` asks a model (an :class:`~aerith.infer.vlm.AerithVLM` or anything with
``generate(images, prompts, batch_size=...) -> list[str]``) every sample of a
benchmark, appending one JSON line per answer to ``predictions.jsonl`` and flushing
after each batch (an image that cannot be read is counted in ``counts["unreadable"]``,
listed in ``unreadable_images`` and scored as a missing answer: the benchmark goes
on); run it again on the same folder and the samples already answered are not asked
again (a partial last line from an interrupted run is dropped and redone). Scores are
always computed from ``predictions.jsonl``.

:func:`score_predictions` scores another model's answers, a JSONL file of
``{"id": ..., "answer": ...}`` records (``"prediction"`` is accepted for
``"answer"``) whose ids are those :func:`write_prompts` lists. Nothing in such a
file makes scoring fail: samples without a prediction (``missing``, scored as an
empty answer), predictions for no sample (``extra``), answers that cannot be read
(``unparsable``), repeated ids (``duplicates``, the last one wins) and lines that are
not a record (``bad_lines``) are all counted in the results.

A prediction file may also be one JSON array of such records (``[{"id": ..., "answer": ...}, ...]``,
as many tools dump them): it is read as the list of records, and a bad element is counted as
a bad line numbered by its position in the array.

Sample ids are stable: ``<benchmark>/<split>/<index>:<record id>``, the record id
being the loader's own (image id, question id, object index ...) where it has one.

**Several processes** (``accelerate launch -m aerith.cli eval ...``; see
:mod:`aerith.eval.distributed`): the samples still to answer are cut into batches as one
process cuts them and dealt out by batch; each process appends its answers to its own
``predictions.rank<R>.jsonl``; the main process then merges every file into
``predictions.jsonl`` in sample order and scores once. The answers, the file and the scores
are those of one process. An interrupted run resumes from whatever files it left, with any
number of processes.

**Resuming only the same run:** ``run.json`` records the benchmark, split, model name, the
model's fingerprint (:mod:`aerith.eval.fingerprint`) and the generation settings, and each
answer keeps its prompt. A folder holding answers made otherwise is refused with what
differs; ``overwrite=True`` (``--overwrite``) discards them and starts over.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aerith.atomic import atomic_write_bytes, atomic_write_text
from aerith.data.errors import ImageReadError
from aerith.data.sample import Sample
from aerith.eval.benchmarks import Benchmark, Context, get_benchmark, get_suite, sample_image_size
from aerith.eval.distributed import SHARED_ERRORS, Processes
from aerith.eval.fingerprint import loaded_model_fingerprint

logger = logging.getLogger(__name__)

PREDICTIONS = "predictions.jsonl"
SHARD_PREFIX = "predictions.rank"
RUN_INFO = "run.json"
RESULT_FILES = ("results.md", "results.json")
_Answered = tuple[int, float, list[dict[str, str]]]  # answered, seconds in generate, unreadable images
# a bare-list box answer file with at least this many boxes, all inside their images in pixels, gets a warning
PIXEL_HINT_MIN_BOXES = 10
MAX_LISTED_IDS = 20
# meta keys holding a loader's own record id, most specific first
_RECORD_KEYS = ("question_id", "object_index", "id", "imgid", "image_id", "filename")


class Generator(Protocol):
    """Anything that answers prompts about images, batched."""

    def generate(self, images: Any, prompts: Any, *, batch_size: int = ..., **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class EvalItem:
    """One sample of a benchmark run, with its stable id and index in the split."""

    id: str
    index: int
    sample: Sample


def record_id(sample: Sample) -> str | None:
    """The loader's own id of a sample's record, if it has one (``pair`` numbers RSIEval's QA pairs)."""
    for key in _RECORD_KEYS:
        if sample.meta.get(key) is not None:
            rid = str(sample.meta[key])
            if "pair" in sample.meta:
                rid = f"{rid}#{sample.meta['pair']}"
            return rid
    return None


def sample_id(benchmark: str, split: str, index: int, sample: Sample) -> str:
    """``<benchmark>/<split>/<index>:<record id>`` (without ``:...`` when the record has no id)."""
    rid = record_id(sample)
    return f"{benchmark}/{split}/{index}" + (f":{rid}" if rid is not None else "")


def eval_items(
    benchmark: Benchmark, root: str | Path, split: str | None = None, limit: int | None = None
) -> tuple[Any, list[EvalItem]]:
    """Load a benchmark's split and give its first ``limit`` samples their ids.

    Returns:
        ``(dataset, items)``.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    split = split or benchmark.split
    dataset = benchmark.load(root, split)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    items = [EvalItem(sample_id(benchmark.name, split, i, dataset[i]), i, dataset[i]) for i in range(n)]
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):  # the index makes ids unique; this guards the format
        raise ValueError(f"{benchmark.name}: sample ids are not unique")
    return dataset, items


def load_image(sample: Sample, crop_to_box: bool = False) -> Any:
    """The sample's image as RGB ``PIL.Image`` (bands from ``meta["bands"]``), cropped to its box if asked."""
    from aerith.imageio import load_rgb

    image = load_rgb(sample.image, sample.meta.get("bands"))
    if crop_to_box and sample.box is not None:
        x1, y1, x2, y2 = (int(round(v)) for v in sample.box)
        if x2 > x1 and y2 > y1:
            image = image.crop((x1, y1, x2, y2))
    return image


def reference_of(sample: Sample) -> Any:
    """The ground truth as written in prediction records: class, answers, captions or pixel box."""
    if sample.task == "cls":
        return sample.targets[0]
    if sample.task == "vg":
        return list(sample.box) if sample.box is not None else None
    return list(sample.targets)


# -- prediction files ----------------------------------------------------------------------------


@dataclass
class PredictionFile:
    """What was read from a predictions JSONL file.

    Attributes:
        answers: id -> answer (the last record of an id wins).
        records: valid records read.
        duplicates: records whose id was seen before.
        bad_lines: ``(line number, reason)`` of lines that are not a valid record.
        partial_tail: line number of an unterminated last line that is not a valid record
            (an interrupted write), else ``None``; it is not in ``bad_lines``.
        valid_bytes: file length up to the end of the last line kept.
        prompts: id -> the prompt recorded with its answer (records of Aerith's own runs have one).
        format: ``jsonl``, or ``json-array`` for a file that is one JSON array of records
            (then ``bad_lines`` holds element numbers, counted from 1).
    """

    answers: dict[str, str] = field(default_factory=dict)
    records: int = 0
    duplicates: int = 0
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    partial_tail: int | None = None
    valid_bytes: int = 0
    prompts: dict[str, str] = field(default_factory=dict)
    format: str = "jsonl"

    def add(self, record: tuple[str, str, str | None]) -> None:
        rid, answer, prompt = record
        self.records += 1
        self.duplicates += rid in self.answers
        self.answers[rid] = answer
        if prompt is not None:
            self.prompts[rid] = prompt
        else:
            self.prompts.pop(rid, None)


def read_predictions(path: str | Path) -> PredictionFile:
    """Read a predictions JSONL file, or a file holding one JSON array of records.

    Never raises on the content (only when the file cannot be opened). A UTF-8 byte-order mark
    (Notepad, PowerShell 5) is read past.
    """
    data = Path(path).read_bytes()
    bom = len(_BOM) if data.startswith(_BOM) else 0
    array = _json_array(data[bom:])
    if array is not None:
        out = PredictionFile(format="json-array", valid_bytes=len(data))
        for number, obj in enumerate(array, start=1):
            record, reason = _from_object(obj)
            if record is None:
                out.bad_lines.append((number, f"element {number}: {reason}"))
            else:
                out.add(record)
        return out
    out = PredictionFile()
    lines = data.split(b"\n")
    offset = 0
    for number, raw in enumerate(lines, start=1):
        terminated = number < len(lines)  # the piece after the last newline has none
        end = offset + len(raw) + terminated
        if raw.strip():
            record, reason = _record(raw[bom:] if number == 1 else raw)
            if record is None and not terminated:
                out.partial_tail = number
                break
            if record is None:
                out.bad_lines.append((number, reason))
            else:
                out.add(record)
        offset = out.valid_bytes = end
    return out


_BOM = b"\xef\xbb\xbf"


def _json_array(data: bytes) -> list[Any] | None:
    """The list when the whole file is one JSON array, else ``None`` (read as JSONL)."""
    if not data.lstrip()[:1] == b"[":
        return None
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    return obj if isinstance(obj, list) else None


def _record(raw: bytes) -> tuple[tuple[str, str, str | None] | None, str]:
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        return None, f"not JSON ({type(err).__name__}: {str(err)[:200]})"
    return _from_object(obj)


def _from_object(obj: Any) -> tuple[tuple[str, str, str | None] | None, str]:
    if not isinstance(obj, dict):
        return None, f"a JSON {type(obj).__name__}, not an object"
    rid = obj.get("id")
    if isinstance(rid, int) and not isinstance(rid, bool):
        rid = str(rid)
    if not isinstance(rid, str) or not rid:
        return None, "no string 'id'"
    answer = obj.get("answer", obj.get("prediction"))
    if not isinstance(answer, str):
        return None, f"id {rid[:200]!r}: no string 'answer'"
    prompt = obj.get("prompt")
    return (rid, answer, prompt if isinstance(prompt, str) else None), ""


def prediction_parts(out_dir: Path) -> list[Path]:
    """A run folder's prediction files: ``predictions.jsonl`` (if any), then each process's, by rank."""
    main = [out_dir / PREDICTIONS] if (out_dir / PREDICTIONS).is_file() else []
    shards = [p for p in out_dir.glob(f"{SHARD_PREFIX}*.jsonl") if p.name[len(SHARD_PREFIX) : -len(".jsonl")].isdigit()]
    return main + sorted(shards, key=lambda p: int(p.name[len(SHARD_PREFIX) : -len(".jsonl")]))


def shard_path(out_dir: Path, processes: Processes) -> Path:
    """Where this process appends its answers: ``predictions.jsonl`` alone, else its own file."""
    return out_dir / (PREDICTIONS if processes.world == 1 else f"{SHARD_PREFIX}{processes.rank}.jsonl")


def read_run_predictions(out_dir: Path) -> PredictionFile:
    """Every answer in a run folder's prediction files (later files win on a repeated id)."""
    out = PredictionFile()
    for part in prediction_parts(out_dir):
        got = read_predictions(part)
        for rid, answer in got.answers.items():
            out.add((rid, answer, got.prompts.get(rid)))
        out.bad_lines += got.bad_lines
    return out


def merge_predictions(out_dir: Path, items: Sequence[EvalItem]) -> bool:
    """Fold the per-process files into ``predictions.jsonl``, in sample order; remove them.

    Records of ids outside ``items`` follow, then complete lines that are not records (they
    stay counted as bad lines); an unterminated partial last line is an interrupted write and
    is dropped (its sample was answered again). Written atomically before the per-process
    files go, so a crash in between leaves nothing lost (merging again gives the same file).

    Returns:
        Whether there was anything to merge.
    """
    parts = prediction_parts(out_dir)
    if not any(p.name != PREDICTIONS for p in parts):
        return False
    lines: dict[str, bytes] = {}
    others: list[bytes] = []
    for part in parts:
        pieces = part.read_bytes().split(b"\n")
        for number, raw in enumerate(pieces, start=1):
            if not raw.strip():
                continue
            record, _ = _record(raw)
            if record is None:
                if number < len(pieces):  # a complete line that is not a record: kept, and counted when scored
                    others.append(raw)
                continue
            lines.pop(record[0], None)
            lines[record[0]] = raw
    ordered = [lines.pop(it.id) for it in items if it.id in lines]
    atomic_write_bytes(out_dir / PREDICTIONS, b"".join(line + b"\n" for line in [*ordered, *lines.values(), *others]))
    for part in parts:
        if part.name != PREDICTIONS:
            part.unlink()
    return True


# -- scoring -------------------------------------------------------------------------------------


def score(
    benchmark: Benchmark,
    items: Sequence[EvalItem],
    predictions: PredictionFile,
    ctx: Context,
    *,
    split: str,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Score the answers in ``predictions`` for ``items``.

    Returns:
        ``(results, per_sample)``: the results dict (counts, ids, scores) and one record per
        sample in order, then one per extra id, each with ``status`` ``ok``, ``unparsable``,
        ``missing`` or ``extra``.
    """
    if not items:
        raise ValueError(f"{benchmark.name} ({split}): the split has no samples to score")
    known = {it.id for it in items}
    answers: list[str] = []
    per_sample: list[dict[str, Any]] = []
    missing: list[str] = []
    unparsable = 0
    for it in items:
        answer = predictions.answers.get(it.id)
        record: dict[str, Any] = {"id": it.id, "index": it.index, "image": str(it.sample.image)}
        if it.sample.prompt is not None:
            record["question" if it.sample.task == "vqa" else "expression"] = it.sample.prompt
        if it.sample.kind is not None:
            record["kind"] = it.sample.kind
        record["reference"] = reference_of(it.sample)
        if answer is None:
            missing.append(it.id)
            answers.append("")
            record.update(answer=None, parsed=None, status="missing")
        else:
            parsed = benchmark.parse(answer, it.sample, ctx)
            unparsable += not parsed.parsable
            answers.append(answer)
            record.update(answer=answer, parsed=parsed.value, status="ok" if parsed.parsable else "unparsable")
        per_sample.append(record)
    extra = [rid for rid in predictions.answers if rid not in known]
    per_sample += [{"id": rid, "answer": predictions.answers[rid], "status": "extra"} for rid in extra]
    scores = benchmark.metric(answers, [it.sample for it in items], [it.id for it in items], ctx)
    results = {
        "benchmark": benchmark.name,
        "dataset": benchmark.dataset,
        "split": split,
        "task": benchmark.task,
        "protocol": benchmark.protocol,
        "box_format": ctx.box_format if benchmark.task == "vg" else None,
        "counts": {
            "samples": len(items),
            "answered": len(items) - len(missing),
            "missing": len(missing),
            "extra": len(extra),
            "unparsable": unparsable,
            "duplicates": predictions.duplicates,
            "bad_lines": len(predictions.bad_lines),
        },
        "missing_ids": missing[:MAX_LISTED_IDS],
        "extra_ids": extra[:MAX_LISTED_IDS],
        "bad_lines": [{"line": n, "reason": r} for n, r in predictions.bad_lines[:MAX_LISTED_IDS]],
        "scores": scores,
    }
    return results, per_sample


def _finish(
    out_dir: Path, results: dict[str, Any], items: Sequence[EvalItem], per_sample: list[dict[str, Any]],
    ctx: Context, benchmark: Benchmark, predictions_name: str,
) -> dict[str, Any]:
    from aerith.eval.report import write_figures, write_results

    results["run_dir"] = str(out_dir)
    figures = write_figures(out_dir, results, items, per_sample, ctx, benchmark)
    results["files"] = ["results.md", "results.json", predictions_name, *figures]
    write_results(out_dir, results)
    return results


# -- running a model -----------------------------------------------------------------------------


def run_info(
    benchmark: str, split: str, model: str, model_fingerprint: Mapping[str, Any] | None, generation: Mapping[str, Any]
) -> dict[str, Any]:
    """What ``run.json`` records of a run: what it asked, of which model, with which decoding settings."""
    return {
        "benchmark": benchmark,
        "split": split,
        "model": model,
        "model_fingerprint": dict(model_fingerprint) if model_fingerprint is not None else None,
        "generation": {k: v for k, v in sorted(generation.items()) if isinstance(v, (int, float, str, bool, type(None)))},
    }


def check_resumable(out_dir: Path, info: Mapping[str, Any]) -> None:
    """Refuse a run folder whose answers were made by another model, weights or decoding settings.

    A folder without answers is always fine (its ``run.json`` is simply rewritten).

    Raises:
        ValueError: the answers there come from another run (the message names what differs),
            or from a run that recorded no readable ``run.json``.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir() or not any(p.stat().st_size for p in prediction_parts(out_dir)):
        return
    hint = "choose another --out, or pass --overwrite to discard those answers and start over"
    path = out_dir / RUN_INFO
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{out_dir} holds answers but no {RUN_INFO}, so what made them is unknown: {hint}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: unreadable ({err}), so what made the answers in {out_dir} is unknown: {hint}") from err
    if not isinstance(old, dict):
        raise ValueError(f"{path}: not a JSON object, so what made the answers in {out_dir} is unknown: {hint}")
    from aerith.eval.fingerprint import differences

    diffs = differences(old, info)
    if diffs:
        raise ValueError(f"{out_dir} holds answers of another run ({'; '.join(diffs)}): {hint}")


def clear_run(out_dir: Path) -> list[Path]:
    """Remove what an evaluation wrote in ``out_dir`` (answers, run.json, results, figures); nothing else.

    Returns:
        The files removed.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir() or not ((out_dir / RUN_INFO).is_file() or prediction_parts(out_dir)):
        return []  # not an evaluation run folder: nothing of ours to remove
    names = {RUN_INFO, *RESULT_FILES}
    try:
        listed = json.loads((out_dir / "results.json").read_text(encoding="utf-8")).get("files", [])
        names |= {n for n in listed if isinstance(n, str) and "/" not in n and "\\" not in n and not n.startswith(".")}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        pass
    removed = []
    for path in [*prediction_parts(out_dir), *(out_dir / n for n in sorted(names))]:
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed


def _prepare_run(
    out_dir: Path, info: dict[str, Any], items: Sequence[EvalItem], prompts: Mapping[str, str], overwrite: bool
) -> list[str]:
    """Main process, before any answer: check the folder may be resumed, record run.json; the ids still to answer."""
    if overwrite:
        clear_run(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_resumable(out_dir, info)
    done = read_run_predictions(out_dir)
    changed = [it.id for it in items if it.id in done.answers and done.prompts.get(it.id) != prompts[it.id]]
    if changed:
        first = changed[0]
        raise ValueError(
            f"{out_dir}: {len(changed)} answer(s) there were asked with another prompt, e.g. {first}: "
            f"{done.prompts.get(first)!r} then, {prompts[first]!r} now: choose another --out, or pass "
            "--overwrite to discard those answers and start over"
        )
    atomic_write_text(out_dir / RUN_INFO, json.dumps(info, indent=2) + "\n")
    return [it.id for it in items if it.id not in done.answers]


def _open_for_append(path: Path) -> None:
    """Make an existing answers file safe to append to: cut an interrupted last write, end the last line."""
    if not path.is_file():
        return
    done = read_predictions(path)
    with open(path, "r+b") as f:
        if done.partial_tail is not None:  # an interrupted write: cut it off, it is redone
            f.truncate(done.valid_bytes)
        if done.valid_bytes:
            f.seek(done.valid_bytes - 1)
            if f.read(1) != b"\n":  # a complete record without its newline: end it before appending
                f.seek(0, os.SEEK_END)
                f.write(b"\n")


def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


def evaluate(
    model: Generator,
    benchmark: Benchmark | str,
    root: str | Path,
    out_dir: str | Path,
    *,
    split: str | None = None,
    limit: int | None = None,
    batch_size: int = 16,
    generate_kwargs: Mapping[str, Any] | None = None,
    model_name: str | None = None,
    model_fingerprint: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    processes: Processes | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Ask ``model`` every sample of ``benchmark`` and write the run folder.

    Args:
        model: an ``AerithVLM`` or any object with ``generate(images, prompts, batch_size=...)``.
        benchmark: a :class:`Benchmark` or its registry name.
        root: the dataset folder as downloaded.
        out_dir: run folder; a folder of the same run is resumed.
        split: defaults to the benchmark's split.
        limit: evaluate the first ``limit`` samples only.
        batch_size: images per ``generate`` call (and per flush of the answers file).
        generate_kwargs: passed to ``model.generate`` (``max_new_tokens`` ...).
        model_name: name recorded in the results (default: ``model.name``).
        model_fingerprint: what identifies the weights (see :mod:`aerith.eval.fingerprint`); a
            folder holding answers of another fingerprint is refused. Default:
            :func:`~aerith.eval.fingerprint.loaded_model_fingerprint` (the model's folder files, or
            its weights in memory; a model without torch weights is compared by name, with a warning).
        overwrite: discard the answers and results already in ``out_dir`` and start over.
        processes: the processes sharing the work (default: this one alone); every one of
            them calls ``evaluate`` with the same arguments.
        progress: show a rich progress bar on stderr (main process only).

    Returns:
        The results dict also written to ``results.json`` (see :func:`score`), with
        ``model``, ``random_weights`` and ``generation`` (counts, seconds, images/s), on
        every process.

    Raises:
        ValueError: bad arguments, or ``out_dir`` holds answers of another run.
    """
    bench = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    procs = processes or Processes()
    out_dir = Path(out_dir)
    split = split or bench.split
    name = model_name or str(getattr(model, "name", type(model).__name__))
    random_init = getattr(model, "is_random_init", None)
    dataset, items = eval_items(bench, root, split, limit)
    ctx = bench.context(dataset, box_format="aerith")
    prompts = {it.id: bench.prompt(it.sample, ctx) for it in items}
    kwargs = dict(generate_kwargs or {})
    if model_fingerprint is None:
        model_fingerprint = procs.on_main(lambda: loaded_model_fingerprint(model))
    if set(model_fingerprint) == {"name"}:
        logger.warning("%s has no torch model to fingerprint: a resumed folder is checked by model name only", name)
    info = run_info(bench.name, split, name, model_fingerprint, kwargs)

    todo_ids = set(procs.on_main(lambda: _prepare_run(out_dir, info, items, prompts, overwrite)))
    todo = [it for it in items if it.id in todo_ids]
    mine = procs.shard([todo[i : i + batch_size] for i in range(0, len(todo), batch_size)])
    error: BaseException | None = None
    answered: _Answered = (0, 0.0, [])
    try:
        answered = _answer(model, bench, ctx, mine, prompts, shard_path(out_dir, procs), kwargs, batch_size,
                           progress=progress and procs.main, label=f"{bench.name} ({split})", name=name)
    except SHARED_ERRORS as err:
        error = err
    shares = procs.gather(answered, error)

    def finish() -> dict[str, Any]:
        merge_predictions(out_dir, items)
        predictions = read_predictions(out_dir / PREDICTIONS)
        results, per_sample = score(bench, items, predictions, ctx, split=split)
        results = {"model": name, "random_weights": random_init, **results}
        # unreadable images (aerith.imageio.ImageReadError) have no answer: scored as missing, counted apart
        unreadable = [u for _, _, part in shares for u in part]
        results["counts"]["unreadable"] = len(unreadable)
        results["unreadable_images"] = unreadable[:MAX_LISTED_IDS]
        generated = sum(n for n, _, _ in shares)
        wall = max(s for _, s, _ in shares)
        results["generation"] = {
            "generated": generated,
            "resumed": len(items) - len(todo),
            "batch_size": batch_size,
            "processes": procs.world,
            "seconds": wall,
            "images_per_s": generated / wall if wall else None,
            **info["generation"],
        }
        if procs.world > 1:
            results["generation"]["per_process"] = [{"generated": n, "seconds": s} for n, s, _ in shares]
        return _finish(out_dir, results, items, per_sample, ctx, bench, PREDICTIONS)

    return procs.on_main(finish)


def _answer(
    model: Generator, bench: Benchmark, ctx: Context, batches: Sequence[Sequence[EvalItem]], prompts: Mapping[str, str],
    log_path: Path, kwargs: Mapping[str, Any], batch_size: int, *, progress: bool, label: str, name: str,
) -> _Answered:
    """Ask ``batches`` in turn, appending one line per answer to ``log_path`` (fsynced per batch).

    An image that cannot be read is left out of its batch and listed (``{"id", "image", "reason"}``).

    Returns:
        ``(samples answered, seconds spent inside model.generate, unreadable images)``.
    """
    _open_for_append(log_path)
    total = sum(len(b) for b in batches)
    seconds, generated = 0.0, 0
    unreadable: list[dict[str, str]] = []
    with open(log_path, "a", encoding="utf-8") as log, _progress(progress) as bar:
        task = bar.add_task(label, total=total, completed=0, rate="")
        for batch in batches:
            chunk, images = [], []
            for it in batch:
                try:
                    images.append(load_image(it.sample, bench.crop_to_box))
                    chunk.append(it)
                except ImageReadError as err:  # counted and scored as missing; the benchmark goes on
                    unreadable.append({"id": it.id, "image": str(it.sample.image), "reason": str(err)})
            if not chunk:
                bar.update(task, advance=len(batch))
                continue
            tic = time.perf_counter()
            answers = model.generate(images, [prompts[it.id] for it in chunk], batch_size=batch_size, **kwargs)
            seconds += time.perf_counter() - tic
            if isinstance(answers, str) or len(answers) != len(chunk):
                raise ValueError(f"{name}.generate returned {type(answers).__name__} for {len(chunk)} prompts; expected a list of {len(chunk)} strings")
            for it, answer in zip(chunk, answers, strict=True):
                parsed = bench.parse(str(answer), it.sample, ctx)
                line = {
                    "id": it.id, "index": it.index, "image": str(it.sample.image), "prompt": prompts[it.id],
                    "answer": str(answer), "reference": reference_of(it.sample), "kind": it.sample.kind,
                    "parsed": parsed.value, "parsable": parsed.parsable,
                }
                log.write(json.dumps(line, ensure_ascii=False) + "\n")
            log.flush()
            os.fsync(log.fileno())
            generated += len(chunk)
            bar.update(task, advance=len(batch), rate=f"{generated / seconds:.2f} img/s" if seconds else "")
    return generated, seconds, unreadable


def score_predictions(
    path: str | Path,
    benchmark: Benchmark | str,
    root: str | Path,
    out_dir: str | Path | None = None,
    *,
    split: str | None = None,
    limit: int | None = None,
    box_format: str = "auto",
    model_name: str | None = None,
) -> dict[str, Any]:
    """Score another model's predictions file against a benchmark.

    Args:
        path: JSONL of ``{"id", "answer"}`` records (ids as :func:`write_prompts` lists them).
        benchmark: a :class:`Benchmark` or its registry name.
        root: the dataset folder.
        out_dir: where results.md/json, the per-sample ``scored_predictions.jsonl`` and figures
            go (default: ``<path without .jsonl>-eval/`` beside the file).
        split, limit: as in :func:`evaluate`.
        box_format: how grounding answers are read (``auto``, ``geochat``, ``vhm``,
            ``lhrs-nova``, ``qwen``, ``pixel``, ``norm``, ``aerith``).
        model_name: name recorded in the results (default: the file name).

    Returns:
        The results dict (see :func:`score`).
    """
    from aerith.parsing.boxes import FORMATS

    bench = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    if box_format not in FORMATS:
        raise ValueError(f"unknown box format {box_format!r}; valid formats: {', '.join(FORMATS)}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no predictions file (JSONL of {{\"id\", \"answer\"}} records)")
    out_dir = Path(out_dir) if out_dir is not None else path.with_name(f"{path.stem}-eval")
    split = split or bench.split
    dataset, items = eval_items(bench, root, split, limit)
    ctx = bench.context(dataset, box_format=box_format)
    predictions = read_predictions(path)
    if predictions.partial_tail is not None:  # someone else's file: an unterminated bad last line is a bad line
        predictions.bad_lines.append((predictions.partial_tail, "truncated last line (not a JSON record)"))
    warnings = check_box_hints(path, items, predictions) if bench.task == "vg" and box_format == "auto" else []
    results, per_sample = score(bench, items, predictions, ctx, split=split)
    results = {
        "model": model_name or path.name, "random_weights": None, "predictions_file": str(path),
        "predictions_format": predictions.format, **results, "warnings": warnings,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    name = "scored_predictions.jsonl"
    atomic_write_text(out_dir / name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in per_sample))
    return _finish(out_dir, results, items, per_sample, ctx, bench, name)


def check_box_hints(path: Path, items: Sequence[EvalItem], predictions: PredictionFile) -> list[str]:
    """Under ``--box-format auto``: refuse pixel boxes read on the grid, warn when they look like pixels.

    Bare integer lists are read on Aerith's 0-1000 grid. A number above 1000 cannot be on it,
    so such a file is refused. When at least ``PIXEL_HINT_MIN_BOXES`` boxes were read on the
    grid and every one also fits inside its image in pixels (images under 1000 px), both
    readings are possible: the results carry a warning.

    Raises:
        ValueError: some grid-read boxes have numbers beyond 1000; the message suggests ``--box-format pixel``.

    Returns:
        Warnings for the results (at most one).
    """
    from aerith.boxes import GRID
    from aerith.parsing.boxes import auto_boxes

    beyond: list[tuple[str, tuple[float, ...]]] = []
    grid_boxes = inside = 0
    largest = 0
    for it in items:
        answer = predictions.answers.get(it.id)
        for fmt, values in auto_boxes(answer):
            if fmt != "aerith":
                continue
            grid_boxes += 1
            if max(abs(v) for v in values) > GRID:
                beyond.append((it.id, values))
                continue
            w, h = sample_image_size(it.sample)
            largest = max(largest, w, h)
            inside += max(values[0], values[2]) <= w and max(values[1], values[3]) <= h
    if beyond:
        rid, values = beyond[0]
        raise ValueError(
            f"{path}: {len(beyond)} of {grid_boxes} boxes read as Aerith's 0-1000 grid have numbers beyond 1000 "
            f"(e.g. {rid}: {[int(v) if v.is_integer() else v for v in values]}), so they are likely pixels: "
            "score with --box-format pixel (or --box-format aerith to read them on the grid anyway)"
        )
    if grid_boxes >= PIXEL_HINT_MIN_BOXES and inside == grid_boxes and largest < GRID:
        return [
            f"all {grid_boxes} boxes were read on Aerith's 0-1000 grid, and every one also fits inside its image "
            f"in pixels (images up to {largest} px): if the model wrote pixels, score with --box-format pixel"
        ]
    return []


def write_prompts(
    benchmark: Benchmark | str, root: str | Path, path: str | Path, *, split: str | None = None, limit: int | None = None
) -> int:
    """Write ``{"id", "image", "prompt", "task"}`` per sample, for another model to answer.

    Its answers, as ``{"id", "answer"}`` lines, are what :func:`score_predictions` reads.

    Returns:
        The number of samples written.
    """
    bench = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    dataset, items = eval_items(bench, root, split, limit)
    ctx = bench.context(dataset)
    lines = []
    for it in items:
        record = {"id": it.id, "image": str(it.sample.image), "prompt": bench.prompt(it.sample, ctx), "task": bench.task}
        if bench.crop_to_box and it.sample.box is not None:
            record["crop"] = list(it.sample.box)
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    atomic_write_text(path, "".join(lines))
    return len(items)


def run_suite(
    model: Generator,
    suite: str,
    roots: Mapping[str, str | Path],
    out_dir: str | Path,
    **kwargs: Any,
) -> dict[str, Any]:
    """Evaluate every benchmark of ``suite`` that has a root; name those that have none.

    Args:
        roots: benchmark or dataset name -> dataset folder.
        out_dir: each benchmark runs in ``out_dir/<benchmark>/``; the suite's table goes
            to ``out_dir/results.md`` and ``results.json``.
        kwargs: passed to :func:`evaluate` (``limit``, ``batch_size``, ``generate_kwargs``,
            ``processes`` ...); with several processes, each benchmark in turn is shared by all.

    Returns:
        ``{"suite", "results": [...], "missing": {benchmark: dataset}, "failed": {benchmark: error}}``.
    """
    from aerith.eval.report import write_suite_results

    procs = kwargs.get("processes") or Processes()
    if kwargs.get("model_fingerprint") is None:  # once for the suite, not once per benchmark
        kwargs["model_fingerprint"] = procs.on_main(lambda: loaded_model_fingerprint(model))
    benchmarks = get_suite(suite)
    known = {b.name for b in benchmarks} | {b.dataset for b in benchmarks}
    unknown = sorted(set(roots) - known)
    if unknown:
        raise KeyError(f"--root given for {unknown}, not in suite {suite!r}: {', '.join(b.name for b in benchmarks)}")
    out_dir = Path(out_dir)
    out: dict[str, Any] = {"suite": suite, "results": [], "missing": {}, "failed": {}}
    for bench in benchmarks:
        root = roots.get(bench.name, roots.get(bench.dataset))
        if root is None:
            out["missing"][bench.name] = bench.dataset
            continue
        try:
            out["results"].append(evaluate(model, bench, root, out_dir / bench.name, **kwargs))
        except SHARED_ERRORS as err:  # one benchmark's bad data does not stop the others
            out["failed"][bench.name] = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    if procs.main:
        write_suite_results(out_dir, out)
    procs.barrier()
    return out
