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

Sample ids are stable: ``<benchmark>/<split>/<index>:<record id>``, the record id
being the loader's own (image id, question id, object index ...) where it has one.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aerith.atomic import atomic_write_text
from aerith.data.errors import ImageReadError
from aerith.data.sample import Sample
from aerith.eval.benchmarks import Benchmark, Context, get_benchmark, get_suite

PREDICTIONS = "predictions.jsonl"
RUN_INFO = "run.json"
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
    """

    answers: dict[str, str] = field(default_factory=dict)
    records: int = 0
    duplicates: int = 0
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    partial_tail: int | None = None
    valid_bytes: int = 0


def read_predictions(path: str | Path) -> PredictionFile:
    """Read a predictions JSONL file; never raises on its content (only when it cannot be opened)."""
    out = PredictionFile()
    lines = Path(path).read_bytes().split(b"\n")
    offset = 0
    for number, raw in enumerate(lines, start=1):
        terminated = number < len(lines)  # the piece after the last newline has none
        end = offset + len(raw) + terminated
        if raw.strip():
            record, reason = _record(raw)
            if record is None and not terminated:
                out.partial_tail = number
                break
            if record is None:
                out.bad_lines.append((number, reason))
            else:
                rid, answer = record
                out.records += 1
                out.duplicates += rid in out.answers
                out.answers[rid] = answer
        offset = out.valid_bytes = end
    return out


def _record(raw: bytes) -> tuple[tuple[str, str] | None, str]:
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f"not JSON ({err})"
    if not isinstance(obj, dict):
        return None, f"a JSON {type(obj).__name__}, not an object"
    rid = obj.get("id")
    if isinstance(rid, int) and not isinstance(rid, bool):
        rid = str(rid)
    if not isinstance(rid, str) or not rid:
        return None, "no string 'id'"
    answer = obj.get("answer", obj.get("prediction"))
    if not isinstance(answer, str):
        return None, f"id {rid!r}: no string 'answer'"
    return (rid, answer), ""


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


def _check_run_info(out_dir: Path, info: dict[str, Any]) -> None:
    path = out_dir / RUN_INFO
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            old = None
        if isinstance(old, dict):
            for key in ("benchmark", "split", "model"):
                if old.get(key) != info[key]:
                    raise ValueError(
                        f"{out_dir} holds a run of {old.get('model')!r} on {old.get('benchmark')!r} "
                        f"({old.get('split')}); it cannot be resumed as {info['model']!r} on {info['benchmark']!r} "
                        f"({info['split']}): choose another --out"
                    )
    atomic_write_text(path, json.dumps(info, indent=2) + "\n")


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
        batch_size: images per ``generate`` call (and per flush of ``predictions.jsonl``).
        generate_kwargs: passed to ``model.generate`` (``max_new_tokens`` ...).
        model_name: name recorded in the results (default: ``model.name``).
        progress: show a rich progress bar on stderr.

    Returns:
        The results dict also written to ``results.json`` (see :func:`score`), with
        ``model``, ``random_weights`` and ``generation`` (counts, seconds, images/s).
    """
    bench = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    out_dir = Path(out_dir)
    split = split or bench.split
    name = model_name or str(getattr(model, "name", type(model).__name__))
    random_init = getattr(model, "is_random_init", None)
    dataset, items = eval_items(bench, root, split, limit)
    ctx = bench.context(dataset, box_format="aerith")
    prompts = {it.id: bench.prompt(it.sample, ctx) for it in items}

    out_dir.mkdir(parents=True, exist_ok=True)
    _check_run_info(out_dir, {"benchmark": bench.name, "split": split, "model": name})
    pred_path = out_dir / PREDICTIONS
    done = PredictionFile()
    if pred_path.is_file():
        done = read_predictions(pred_path)
        with open(pred_path, "r+b") as f:
            if done.partial_tail is not None:  # an interrupted write: cut it off, it is redone
                f.truncate(done.valid_bytes)
            if done.valid_bytes:
                f.seek(done.valid_bytes - 1)
                if f.read(1) != b"\n":  # a complete record without its newline: end it before appending
                    f.seek(0, os.SEEK_END)
                    f.write(b"\n")
    todo = [it for it in items if it.id not in done.answers]

    kwargs = dict(generate_kwargs or {})
    seconds = 0.0
    generated = 0
    unreadable: list[dict[str, str]] = []
    with open(pred_path, "a", encoding="utf-8") as log, _progress(progress) as bar:
        task = bar.add_task(f"{bench.name} ({split})", total=len(items), completed=len(items) - len(todo), rate="")
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
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

    predictions = read_predictions(pred_path)
    results, per_sample = score(bench, items, predictions, ctx, split=split)
    results = {"model": name, "random_weights": random_init, **results}
    # unreadable images (aerith.imageio.ImageReadError) have no answer: scored as missing, counted apart
    results["counts"]["unreadable"] = len(unreadable)
    results["unreadable_images"] = unreadable[:MAX_LISTED_IDS]
    results["generation"] = {
        "generated": generated,
        "resumed": len(items) - len(todo),
        "batch_size": batch_size,
        "seconds": seconds,
        "images_per_s": generated / seconds if seconds else None,
        **{k: v for k, v in kwargs.items() if isinstance(v, (int, float, str, bool))},
    }
    return _finish(out_dir, results, items, per_sample, ctx, bench, PREDICTIONS)


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
    results, per_sample = score(bench, items, predictions, ctx, split=split)
    results = {"model": model_name or path.name, "random_weights": None, "predictions_file": str(path), **results}
    out_dir.mkdir(parents=True, exist_ok=True)
    name = "scored_predictions.jsonl"
    atomic_write_text(out_dir / name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in per_sample))
    return _finish(out_dir, results, items, per_sample, ctx, bench, name)


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
        kwargs: passed to :func:`evaluate` (``limit``, ``batch_size``, ``generate_kwargs`` ...).

    Returns:
        ``{"suite", "results": [...], "missing": {benchmark: dataset}, "failed": {benchmark: error}}``.
    """
    from aerith.data.errors import DataError
    from aerith.eval.report import write_suite_results

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
        except (DataError, FileNotFoundError, ValueError) as err:
            out["failed"][bench.name] = str(err)
    write_suite_results(out_dir, out)
    return out
