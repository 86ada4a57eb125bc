"""The quickstart's table (each metric beside its in-run baseline) and its report folder."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aerith.atomic import atomic_dir

REPORT = "report"
COUNT_MARGIN = 0.20  # counting VQA must beat its majority answer by 20 points (issue 20)
GROUNDING_FLOOR = 0.15  # grounding Acc@0.5 must reach 15% (issue 20), and twice the best constant box
EXAMPLES = 8  # grounding examples and captions shown (the grounding overlay shows the same first eight)


def build_rows(data_root: Path, evals: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per metric: value, baseline computed from the same run's data, target, pass."""
    from aerith.data import load_dataset
    from aerith.data.synthrs.grammar import well_formed_share
    from aerith.quickstart.baselines import classification_baseline, constant_box_baseline, vqa_baseline
    from aerith.quickstart.stages import read_predictions

    def split(task: str, name: str):
        return load_dataset("synthrs", data_root, name, task=task)

    rows: list[dict[str, Any]] = []
    cls = evals["final-cls"]["scores"]
    base = classification_baseline(split("cls", "train"), split("cls", "test"), len(cls["classes"]))
    rows.append(_row("classification", "accuracy", cls["accuracy"], base["chance"], "chance (1/K)", 3 * base["chance"], ">="))
    rows.append(_row("classification", "accuracy", cls["accuracy"], base["majority"], f"majority class ({base['majority_class']})", None, None))

    vqa = evals["final-vqa"]["scores"]
    base_vqa = vqa_baseline(split("vqa", "train"), split("vqa", "test"))
    rows.append(_row("VQA", "overall accuracy", vqa["OA"], base_vqa["overall"], "per-type majority answer", base_vqa["overall"] + 0.15, ">="))
    for kind, value in base_vqa["per_type"].items():
        acc = _type_accuracy(vqa, kind)
        if acc is not None:
            target = value + COUNT_MARGIN if kind == "count" else None
            rows.append(_row("VQA", f"{kind} accuracy", acc, value, f"majority ({base_vqa['answers'][kind]})", target,
                             ">=" if target is not None else None))

    vg = evals["final-vg"]["scores"]
    base_vg = constant_box_baseline(split("vg", "train"), split("vg", "test"))
    rows.append(_row("grounding", "Acc@0.5", vg["acc@0.5"], base_vg["acc@0.5"], "best constant box",
                     max(GROUNDING_FLOOR, 2 * base_vg["acc@0.5"]), ">=", strict=True))
    rows.append(_row("grounding", "mean IoU", vg["mean_iou"], base_vg["mean_iou"], "best constant box", 2 * base_vg["mean_iou"], ">=", strict=True))

    sft, final = evals["sft-cap"]["scores"], evals["final-cap"]["scores"]
    before = "the SFT model (before SCST)"
    rows.append(_row("captioning", "CIDEr-D", final["CIDEr-D"], sft["CIDEr-D"], before, sft["CIDEr-D"], ">", strict=True))
    rows.append(_row("captioning", "SG-F1", final["SG-F1"], sft["SG-F1"], before, sft["SG-F1"], ">", strict=True))
    rows.append(_row("captioning", "hallucination rate", final["hallucination_rate"], sft["hallucination_rate"], before,
                     sft["hallucination_rate"], "<"))
    captions = {key: [r["answer"] for r in read_predictions(evals[key])] for key in ("sft-cap", "final-cap")}
    well = {key: well_formed_share(texts) for key, texts in captions.items()}
    rows.append(_row("captioning", "well-formed", well["final-cap"], well["sft-cap"], before, well["sft-cap"], ">="))
    # how many different sentences the captioner writes, per test image: a low share means a few templates
    distinct = {key: len(set(texts)) / max(len(texts), 1) for key, texts in captions.items()}
    rows.append(_row("captioning", "distinct captions", distinct["final-cap"], distinct["sft-cap"], before, None, None))
    for metric in ("BLEU-4", "METEOR", "missing_rate"):
        if metric in final:
            rows.append(_row("captioning", metric.replace("_", " "), final[metric], sft.get(metric), before, None, None))
    return rows


def _type_accuracy(vqa: Mapping[str, Any], kind: str) -> float | None:
    mine = vqa.get("per_type", {}).get(kind, {})
    return mine.get("accuracy") if isinstance(mine, Mapping) else mine


def _row(task: str, metric: str, value: float, baseline: float | None, baseline_name: str, target: float | None,
         op: str | None, strict: bool = False) -> dict[str, Any]:
    passed = None
    if op is not None and (value is None or target is None):
        passed = False  # undefined before or after training (e.g. no caption names an object): not shown to be learned
    elif target is not None:
        if op == "<":
            passed = value < target
        elif op == ">" or (strict and target == 0):  # a zero baseline must still be beaten ("strict")
            passed = value > target
        else:
            passed = value >= target
    return {"task": task, "metric": metric, "value": value, "baseline": baseline, "baseline_name": baseline_name,
            "target": target, "op": op, "pass": passed}


def _fmt(value: float | None) -> str:
    """Every metric here is a fraction (CIDEr-D too, before papers' x100): printed x100."""
    return "" if value is None else f"{100 * value:.1f}"


def table_markdown(rows: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["| task | metric | value | baseline (same run) | target | learned |", "|---|---|---|---|---|---|"]
    for r in rows:
        target = f"{r['op']} {_fmt(r['target'])}" if r["target"] is not None else ""
        verdict = {True: "yes", False: "**no**", None: ""}[r["pass"]]
        base = f"{_fmt(r['baseline'])} ({r['baseline_name']})" if r["baseline"] is not None else ""
        value = "n/a" if r["value"] is None else _fmt(r["value"])  # undefined (e.g. no caption names an object)
        lines.append(f"| {r['task']} | {r['metric']} | {value} | {base} | {target} | {verdict} |")
    return lines


def _metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def loss_curves_png(runs: Mapping[str, Path]) -> bytes:
    """One panel per training stage: training loss (and validation loss or reward) against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.2), squeeze=False)
    for ax, (stage, run_dir) in zip(axes[0], runs.items()):
        records = _metrics(run_dir)
        for key, style in (("loss", "-"), ("val_loss", "o:"), ("reward", "-"), ("val_reward", "o:")):
            points = [(r["step"], r[key]) for r in records if key in r]
            if points:
                ax.plot(*zip(*points), style, label=key, markersize=3)
        ax.set_title(stage)
        ax.set_xlabel("optimizer step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def mark_objects(caption: str, names: Sequence[str]) -> str:
    """``caption`` with every mention of the objects ``names`` (canonical scene-graph names) in bold.

    The mentions are the ones the scene-graph parser reads as those objects (the parser the
    hallucination rate counts with), so "car" in "car park" (a parking lot) is not marked as a
    vehicle, and "factories" is marked as a building.
    """
    from aerith.eval.scene_graph import _TOKEN, DEFAULT_PARSER

    wanted = set(names)
    if not wanted:
        return caption
    spans = [m.span() for m in _TOKEN.finditer(caption)]  # the parser's tokens (it lower-cases them)
    marked = [(spans[c.start][0], spans[c.end - 1][1]) for c in DEFAULT_PARSER._chunks([caption[a:b].lower() for a, b in spans])
              if c.kind == "object" and c.value in wanted]
    for start, end in reversed(marked):
        caption = f"{caption[:start]}**{caption[start:end]}**{caption[end:]}"
    return caption


def caption_examples(evals: Mapping[str, Mapping[str, Any]], n: int = EXAMPLES) -> list[dict[str, Any]]:
    """The first ``n`` test images: a reference, the SFT and the SCST captions, each with its hallucinated
    objects (named in no reference) and whether SynthRS's caption grammar accepts it."""
    from aerith.data.synthrs.grammar import is_well_formed
    from aerith.eval.scene_graph import object_errors
    from aerith.quickstart.stages import read_predictions

    before = {r["id"]: r for r in read_predictions(evals["sft-cap"])}
    after = {r["id"]: r for r in read_predictions(evals["final-cap"])}
    examples = []
    for rid in list(before)[:n]:
        references = before[rid]["reference"]
        example: dict[str, Any] = {"image": Path(before[rid]["image"]).name, "reference": references[0]}
        for stage, records in (("sft", before), ("scst", after)):
            caption = records.get(rid, {}).get("answer") or ""
            hallucinated = object_errors(caption, references)["hallucinated"] if caption else []
            example[stage] = {"caption": caption, "hallucinated": hallucinated, "well_formed": is_well_formed(caption)}
        examples.append(example)
    return examples


def _caption_cell(entry: Mapping[str, Any]) -> str:
    text = mark_objects(entry["caption"], entry["hallucinated"]) or "(empty)"
    return text if entry["well_formed"] else f"{text} ✗"


def grounding_examples(evals: Mapping[str, Mapping[str, Any]], n: int = EXAMPLES) -> list[dict[str, Any]]:
    """The first ``n`` grounding test samples (those of the overlay): expression, boxes in pixels, IoU."""
    from aerith.boxes import box_iou
    from aerith.quickstart.stages import read_predictions

    out = []
    for r in read_predictions(evals["final-vg"])[:n]:
        boxes = r.get("parsed") or []
        predicted = [round(v, 1) for v in boxes[0]] if boxes else None
        out.append({"image": Path(r["image"]).name, "expression": r["prompt"].split(":", 1)[-1].strip(),
                    "true": r["reference"], "predicted": predicted,
                    "iou": box_iou(boxes[0], r["reference"]) if boxes else 0.0, "answer": r["answer"]})
    return out


def vqa_types(evals: Mapping[str, Mapping[str, Any]], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """A table per question type: questions, accuracy, the majority baseline."""
    per_type = evals["final-vqa"]["scores"].get("per_type", {})
    base = {r["metric"].removesuffix(" accuracy"): r for r in rows if r["task"] == "VQA" and r["metric"] != "overall accuracy"}
    lines = ["| question type | questions | accuracy | majority answer (train) | its accuracy |", "|---|---|---|---|---|"]
    for kind, entry in sorted(per_type.items()):
        acc = entry.get("accuracy") if isinstance(entry, Mapping) else entry
        n = entry.get("n", "") if isinstance(entry, Mapping) else ""
        b = base.get(kind)
        answer = b["baseline_name"].removeprefix("majority (").removesuffix(")") if b else ""
        lines.append(f"| {kind} | {n} | {_fmt(acc)} | {answer} | {_fmt(b['baseline']) if b else ''} |")
    return lines


def _box(box: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"


def _grounding_row(e: Mapping[str, Any]) -> str:
    predicted = _box(e["predicted"]) if e["predicted"] else f"unparsable: `{e['answer']}`"
    return f"| {e['image']} | {e['expression']} | {_box(e['true'])} | {predicted} | {e['iou']:.2f} |"


def _box_fit_lines(runs: Mapping[str, Path]) -> list[str]:
    """Where the final model's boxes come from, when a box head was fitted (``box_fit/box_fit.json``)."""
    path = Path(runs["box_fit"]) / "box_fit.json" if "box_fit" in runs else None
    if path is None or not path.is_file():
        return []
    fit = json.loads(path.read_text())
    val = fit["log"][-1].get("val_acc@0.5") if fit.get("log") else None
    held_out = f"; Acc@0.5 on the validation split {100 * val:.1f}%" if val is not None else ""
    return [
        f"Boxes come from the box head (AerithConfig.box_head), fitted alone after SCST for {fit['steps']} steps "
        f"on {fit['samples']} samples (the training expressions, each in {len(fit['config']['flips'])} flips){held_out}.",
        "",
    ]


def scst_signal_lines(runs: Mapping[str, Path]) -> list[str]:
    """How much of SCST's rollouts taught the policy anything: the mean ``no_signal_share`` of its log (the images whose
    sampled captions all scored alike, so their advantages were 0); none when the log holds no such record."""
    shares = [r["no_signal_share"] for r in _metrics(runs["scst"]) if "no_signal_share" in r] if "scst" in runs else []
    if not shares:
        return []
    mean = sum(shares) / len(shares)
    return [
        f"SCST: on {100 * mean:.0f}% of the training images of a step (mean over its log) every sampled caption scored "
        "the same, so those images gave no learning signal; a high share means the SFT captioner samples one sentence "
        "per image and SCST can only choose among few.",
        "",
    ]


def write_report(out: Path, settings: Any, budget: Any, rows: Sequence[dict[str, Any]],
                 evals: Mapping[str, Mapping[str, Any]], runs: Mapping[str, Path]) -> Path:
    """Write ``OUT/report/`` in one rename: report.md, results.json, loss_curves.png and the eval figures."""
    target = out / REPORT
    passed = all(r["pass"] for r in rows if r["pass"] is not None)
    examples = caption_examples(evals)
    boxes = grounding_examples(evals)
    with atomic_dir(target) as tmp:
        (tmp / "loss_curves.png").write_bytes(loss_curves_png(runs))
        figures = {"confusion_matrix.png": "final-cls", "grounding.png": "final-vg"}
        for name, key in figures.items():
            source = Path(evals[key]["run_dir"]) / name
            if source.is_file():
                shutil.copyfile(source, tmp / name)
        spent = ", ".join(f"{k} {v:.0f} s" for k, v in budget.spent.items())
        lines = [
            "# Aerith quickstart",
            "",
            f"aerith-tiny trained from random weights on {settings.scenes} SynthRS scenes of {settings.size} px "
            f"(seed {settings.seed}) in {budget.elapsed() / 60:.1f} min of a {settings.minutes:g}-minute budget ({spent}). "
            "Scores are on the held-out test split; every baseline is computed from the same run's data. "
            "Percentages, CIDEr-D x100.",
            "",
            f"Learning shown on every check: **{'yes' if passed else 'no'}**.",
            "",
            *table_markdown(rows),
            "",
            "![loss curves](loss_curves.png)",
            "",
            "![confusion matrix](confusion_matrix.png)",
            "",
            "## Grounding",
            "",
            *_box_fit_lines(runs),
            "![grounding](grounding.png)",
            "",
            "The overlay's examples (true box green, prediction red), boxes in pixels:",
            "",
            "| image | expression | true box | predicted box | IoU |",
            "|---|---|---|---|---|",
            *[_grounding_row(e) for e in boxes],
            "",
            "## VQA per question type",
            "",
            *vqa_types(evals, rows),
            "",
            "## Captions before and after SCST",
            "",
            "Objects named in no reference caption (hallucinated) are in **bold**; ✗ marks a caption that "
            "SynthRS's caption grammar does not accept (aerith.data.synthrs.grammar).",
            "",
            *scst_signal_lines(runs),
            "| image | a reference | after SFT | after SCST |",
            "|---|---|---|---|",
            *[f"| {e['image']} | {e['reference']} | {_caption_cell(e['sft'])} | {_caption_cell(e['scst'])} |" for e in examples],
            "",
            "Run folders: " + ", ".join(f"`{k}/`" for k in runs) + ", `eval/`, `data/synthrs/`.",
        ]
        (tmp / "report.md").write_text("\n".join(lines) + "\n")
        summary = {"passed": passed, "rows": list(rows), "stage_seconds": dict(budget.spent),
                   "total_seconds": budget.elapsed(), "captions": examples, "grounding": boxes}
        (tmp / "results.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return target / "report.md"
