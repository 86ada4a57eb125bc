"""Run-folder outputs: results.md (the seed's layout), results.json, confusion matrices, grounding overlays.

results.md is a ``dataset | metric | value | protocol | reported elsewhere`` table.
Values are percentages (CIDEr-D x100, as papers print it); counts are counts.
The last column holds the best published numbers of ``shared/DATASETS.md``:
claims under other protocols, never a like-for-like comparison. A run of a model
with random weights says so above the table. Every file is written atomically.
"""

from __future__ import annotations

import io
import json
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aerith.atomic import atomic_write_bytes, atomic_write_text
from aerith.eval.benchmarks import PROTOCOLS, REPORTED, SUITES, Benchmark, Context, get_benchmark

RANDOM_WEIGHTS_LINE = "**model weights are random: these numbers are chance level, not results**"
REPORTED_HEADER = "reported elsewhere (protocols differ)"
OVERLAY_SAMPLES = 8

_COUNT_ROWS = (
    ("samples", "samples"),
    ("missing", "missing predictions"),
    ("extra", "extra predictions"),
    ("unparsable", "unparsable answers"),
    ("duplicates", "duplicate ids"),
    ("bad_lines", "bad lines"),
    ("unreadable", "unreadable images (scored as missing)"),
)


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.2f}"


def metric_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """The ``(metric, value)`` rows of one benchmark's results, headline metrics first."""
    s, task = result["scores"], result["task"]
    rows: list[tuple[str, str]] = []
    if task == "cls":
        rows += [("accuracy", _pct(s["accuracy"])), ("balanced accuracy", _pct(s["balanced_accuracy"]))]
        rows.append(("answers matching no class", str(s["unmatched"])))
    elif task == "vqa":
        for qtype, entry in s["per_type"].items():
            rows.append((f"accuracy ({qtype})", _pct(entry["accuracy"])))
            if "accuracy_bucketed" in entry:
                rows.append((f"accuracy bucketed ({qtype})", _pct(entry["accuracy_bucketed"])))
        rows += [("AA", _pct(s["AA"])), ("OA", _pct(s["OA"]))]
        if s["AA_no_count"] != s["AA"]:
            rows += [("AA without count", _pct(s["AA_no_count"])), ("OA without count", _pct(s["OA_no_count"]))]
    elif task == "vg":
        rows.append(("Acc@0.5", _pct(s["acc@0.5"])))
        if "acc@0.7" in s:  # VRSBench's protocol
            rows.append(("Acc@0.7", _pct(s["acc@0.7"])))
        rows += [("Acc@0.5:0.95", _pct(s["acc@0.5:0.95"])), ("mean IoU", _pct(s["mean_iou"]))]
        for group, sub in s.get("subsets", {}).items():  # VRSBench: unique / non-unique expressions
            rows += [(f"Acc@0.5 ({group})", _pct(sub["acc@0.5"])), (f"Acc@0.7 ({group})", _pct(sub["acc@0.7"]))]
            rows.append((f"expressions ({group})", str(sub["n"])))
    elif task == "cap":
        for key in ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D", "SG-F1"):
            rows.append((key, _pct(s.get(key))))
        rows += [
            ("hallucinated object rate", _pct(s.get("hallucination_rate"))),
            ("missing object rate", _pct(s.get("missing_rate"))),
        ]
        if "mean_length" in s:  # VRSBench's Avg_L
            rows.append(("mean length (words)", "n/a" if s["mean_length"] is None else f"{s['mean_length']:.1f}"))
    counts = result["counts"]
    rows += [
        (label, str(counts.get(key, 0)))
        for key, label in _COUNT_ROWS
        if key in ("samples", "missing", "extra", "unparsable") or counts.get(key, 0)
    ]
    return rows


def _table(results: Sequence[dict[str, Any]]) -> list[str]:
    lines = [f"| dataset | metric | value | protocol | {REPORTED_HEADER} |", "|---|---|---|---|---|"]
    for r in results:
        reported = REPORTED.get(r["benchmark"], {})
        protocol = f"{r['task']} protocol, {r['split']} split, n={r['counts']['samples']}"
        for metric, value in metric_rows(r):
            lines.append(f"| {r['benchmark']} | {metric} | {value} | {protocol} | {reported.get(metric, '')} |")
    return lines


def _protocols(results: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["## Protocols", ""]
    seen: set[str] = set()
    for r in results:
        if r["task"] not in seen:
            seen.add(r["task"])
            lines.append(f"- **{r['task']}**: {PROTOCOLS[r['task']]}")
    for r in results:
        bench = get_benchmark(r["benchmark"])
        if bench.note:
            lines.append(f"- **{r['benchmark']}**: {bench.note}")
        if r.get("box_format"):
            lines.append(f"- **{r['benchmark']}**: boxes read as `{r['box_format']}`.")
    lines += [
        "- Values in %, CIDEr-D x100 as papers print it; counts are counts.",
        f"- '{REPORTED_HEADER}': best published numbers, each cell naming the model whose paper reports it, measured under other "
        "prompts, splits and parsers; not a like-for-like comparison.",
    ]
    return lines


def _header(results: Sequence[dict[str, Any]], title: str) -> list[str]:
    lines = [f"# {title}", ""]
    models = sorted({str(r.get("model")) for r in results})
    if models:
        lines += [f"Model: {', '.join(models)}.", ""]
    if any(r.get("random_weights") for r in results):
        lines += [RANDOM_WEIGHTS_LINE, ""]
    for r in results:
        c = r["counts"]
        problems = [f"{c[k]} {label}" for k, label in _COUNT_ROWS[1:] if c.get(k)]
        if problems:
            lines.append(f"- {r['benchmark']}: " + ", ".join(problems) + " (see results.json).")
        lines += [f"- {r['benchmark']}: WARNING: {w}" for w in r.get("warnings", [])]
    if lines[-1] != "":
        lines.append("")
    return lines


def results_markdown(result: dict[str, Any]) -> str:
    """results.md of one benchmark run."""
    lines = _header([result], f"Results: {result['benchmark']} ({result['split']})")
    lines += _table([result]) + [""] + _protocols([result])
    return "\n".join(lines) + "\n"


def write_results(out_dir: Path, result: dict[str, Any]) -> None:
    """Write results.json and results.md of one benchmark run."""
    atomic_write_text(out_dir / "results.json", json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    atomic_write_text(out_dir / "results.md", results_markdown(result))


def write_suite_results(out_dir: Path, suite: dict[str, Any]) -> None:
    """The suite's results.md / results.json: one table over the benchmarks run, and what was not run."""
    results = suite["results"]
    lines = _header(results, f"Results: suite {suite['suite']}")
    if results:
        lines += _table(results) + [""]
    else:
        lines += ["No benchmark of the suite was run.", ""]
    if suite["missing"]:
        lines.append("Not run, no root given: " + ", ".join(f"{b} (dataset {d})" for b, d in suite["missing"].items())
                     + ". Give one with `--root NAME=DIR`.")
        lines.append("")
    for name, err in suite["failed"].items():
        lines.append(f"- FAILED {name}: {err}")
    if suite["failed"]:
        lines.append("")
    if results:
        lines += _protocols(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {**suite, "benchmarks": SUITES.get(suite["suite"], [])}
    atomic_write_text(out_dir / "results.json", json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n")
    atomic_write_text(out_dir / "results.md", "\n".join(lines) + "\n")


# -- figures -------------------------------------------------------------------------------------


def _figure(**kwargs: Any) -> Any:
    """A figure outside pyplot: no backend is chosen or switched, so a notebook's inline plots keep working."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _save(fig: Any, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def confusion_png(path: Path, scores: dict[str, Any], title: str) -> Path:
    """Confusion matrix (true rows, predicted columns, counts) of ``classification_scores`` output."""
    import numpy as np

    classes = scores["classes"]
    matrix = np.asarray(scores["confusion_matrix"], dtype=float)
    n = len(classes)
    side = max(4.0, 0.32 * n + 2.5)
    fig = _figure(figsize=(side, side))
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues", vmin=0)
    ax.set_xticks(range(n), classes, rotation=90, fontsize=8 if n <= 30 else 6)
    ax.set_yticks(range(n), classes, fontsize=8 if n <= 30 else 6)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    ax.set_title(f"{title}\n{scores['unmatched']} of {scores['n']} answers matched no class (not shown)", fontsize=9)
    _save(fig, path)
    return path


def grounding_png(path: Path, records: Sequence[dict[str, Any]], ctx: Context, title: str, n: int = OVERLAY_SAMPLES) -> Path:
    """The first ``n`` grounding samples: true box green, first predicted box red, IoU in the title."""
    import numpy as np
    from matplotlib.patches import Rectangle

    from aerith.boxes import box_iou
    from aerith.errors import ImageReadError
    from aerith.imageio import load_rgb

    shown = [r for r in records if r["status"] != "extra"][:n]
    cols = min(4, len(shown))
    rows = (len(shown) + cols - 1) // cols
    fig = _figure(figsize=(3.2 * cols, 3.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, r in zip(axes.flat, shown):
        expression = textwrap.shorten(r.get("expression", ""), 60)
        try:
            image = load_rgb(r["image"])
            # boxes are edge coordinates (0 = the image's left edge); imshow's default extent starts at -0.5
            ax.imshow(image, extent=(0, image.width, image.height, 0))
        except ImageReadError:  # counted as unreadable in the results: a grey panel, named so
            ax.imshow(np.full((8, 8, 3), 225, np.uint8))
            ax.text(3.5, 3.5, f"unreadable\n{Path(str(r['image'])).name}", ha="center", va="center", fontsize=7)
            ax.set_title("\n".join(textwrap.wrap(expression, 32)) + "\nunreadable image", fontsize=7)
            continue
        gt = r["reference"]
        ax.add_patch(Rectangle((gt[0], gt[1]), gt[2] - gt[0], gt[3] - gt[1], fill=False, color="lime", lw=2))
        boxes = r["parsed"] or []
        label = r["status"]
        if boxes:
            b = boxes[0]
            ax.add_patch(Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, color="red", lw=2))
            label = f"IoU {box_iou(b, gt):.2f}"
        ax.set_title("\n".join(textwrap.wrap(expression, 32)) + f"\n{label}", fontsize=7)
    fig.suptitle(f"{title}: true box green, prediction red", fontsize=9)
    _save(fig, path)
    return path


def write_figures(
    out_dir: Path,
    result: dict[str, Any],
    items: Sequence[Any],
    per_sample: Sequence[dict[str, Any]],
    ctx: Context,
    benchmark: Benchmark,
) -> list[str]:
    """The task's pictures: ``confusion_matrix.png`` (cls) or ``grounding.png`` (vg); returns file names."""
    title = f"{result['benchmark']} ({result['split']}), {result.get('model')}"
    if benchmark.task == "cls":
        confusion_png(out_dir / "confusion_matrix.png", result["scores"], title)
        return ["confusion_matrix.png"]
    if benchmark.task == "vg":
        grounding_png(out_dir / "grounding.png", per_sample, ctx, title)
        return ["grounding.png"]
    return []
