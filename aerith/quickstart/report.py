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


def build_rows(data_root: Path, evals: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per metric: value, baseline computed from the same run's data, target, pass."""
    from aerith.data import load_dataset
    from aerith.quickstart.baselines import classification_baseline, constant_box_baseline, vqa_baseline

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
        mine = vqa.get("per_type", {}).get(kind, {})
        acc = mine.get("accuracy") if isinstance(mine, Mapping) else mine
        if acc is not None:
            rows.append(_row("VQA", f"{kind} accuracy", acc, value, f"majority ({base_vqa['answers'][kind]})", None, None))

    vg = evals["final-vg"]["scores"]
    base_vg = constant_box_baseline(split("vg", "train"), split("vg", "test"))
    rows.append(_row("grounding", "Acc@0.5", vg["acc@0.5"], base_vg["acc@0.5"], "best constant box", 2 * base_vg["acc@0.5"], ">=", strict=True))
    rows.append(_row("grounding", "mean IoU", vg["mean_iou"], base_vg["mean_iou"], "best constant box", 2 * base_vg["mean_iou"], ">=", strict=True))

    sft, final = evals["sft-cap"]["scores"], evals["final-cap"]["scores"]
    rows.append(_row("captioning", "CIDEr-D", final["CIDEr-D"], sft["CIDEr-D"], "the SFT model (before SCST)", sft["CIDEr-D"], ">", strict=True))
    for metric in ("BLEU-4", "METEOR", "SG-F1", "hallucination_rate"):
        if metric in final:
            rows.append(_row("captioning", metric, final[metric], sft.get(metric), "the SFT model (before SCST)", None, None))
    return rows


def _row(task: str, metric: str, value: float, baseline: float | None, baseline_name: str, target: float | None,
         op: str | None, strict: bool = False) -> dict[str, Any]:
    passed = None
    if target is not None:
        # ">=" against a positive target; a zero baseline must still be beaten ("strict")
        passed = value > target if op == ">" or (strict and target == 0) else value >= target
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
        lines.append(f"| {r['task']} | {r['metric']} | {_fmt(r['value'])} | {base} | {target} | {verdict} |")
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


def caption_examples(evals: Mapping[str, Mapping[str, Any]], n: int = 5) -> list[dict[str, Any]]:
    """The first ``n`` test images: a reference, the SFT caption and the SCST caption."""

    def answers(key: str) -> dict[str, dict[str, Any]]:
        path = Path(evals[key]["run_dir"]) / "predictions.jsonl"
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return {r["id"]: r for r in records}

    before, after = answers("sft-cap"), answers("final-cap")
    examples = []
    for rid in list(before)[:n]:
        reference = before[rid]["reference"]
        examples.append({
            "image": Path(before[rid]["image"]).name,
            "reference": reference[0] if isinstance(reference, list) and reference else reference,
            "sft": before[rid]["answer"],
            "scst": after.get(rid, {}).get("answer"),
        })
    return examples


def write_report(out: Path, settings: Any, budget: Any, rows: Sequence[dict[str, Any]],
                 evals: Mapping[str, Mapping[str, Any]], runs: Mapping[str, Path]) -> Path:
    """Write ``OUT/report/`` in one rename: report.md, results.json, loss_curves.png and the eval figures."""
    target = out / REPORT
    passed = all(r["pass"] for r in rows if r["pass"] is not None)
    examples = caption_examples(evals)
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
            "![grounding](grounding.png)",
            "",
            "## Captions before and after SCST",
            "",
            "| image | a reference | after SFT | after SCST |",
            "|---|---|---|---|",
            *[f"| {e['image']} | {e['reference']} | {e['sft']} | {e['scst']} |" for e in examples],
            "",
            "Run folders: " + ", ".join(f"`{k}/`" for k in runs) + ", `eval/`, `data/synthrs/`.",
        ]
        (tmp / "report.md").write_text("\n".join(lines) + "\n")
        summary = {"passed": passed, "rows": list(rows), "stage_seconds": dict(budget.spent),
                   "total_seconds": budget.elapsed(), "captions": examples}
        (tmp / "results.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return target / "report.md"
