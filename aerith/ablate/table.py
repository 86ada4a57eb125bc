"""The ablation's outputs: mean and spread over seeds per variant, as a Markdown table and a plot."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aerith.ablate.grid import Variant
from aerith.atomic import atomic_write_bytes, atomic_write_text

# column key -> header; every value is a fraction, shown x100 (CIDEr-D too)
METRICS: dict[str, str] = {
    "cls_accuracy": "cls acc",
    "vqa_oa": "VQA OA",
    "vqa_count": "VQA count",
    "vg_acc50": "VG Acc@0.5",
    "vg_miou": "VG mIoU",
    "cider": "CIDEr-D",
    "sg_f1": "SG-F1",
    "hallucination": "halluc.",
    "well_formed": "well-formed",
}
PLOTTED = ("vg_acc50", "vqa_count", "cider", "hallucination", "well_formed")
TABLE = "ablation.md"
PLOT = "ablation.png"


def summarise(runs: Sequence[Mapping[str, Any]], variants: Sequence[Variant]) -> list[dict[str, Any]]:
    """Per variant (grid order): ``{"variant", "factor", "seeds", "missing_seeds", "metrics": {key: (mean, std, n)},
    "seconds"}``.

    The spread is the sample standard deviation over the ``n`` seeds where the metric is defined (0 for one seed);
    a metric measured but undefined on every seed is ``None``, one never measured is absent. ``missing_seeds``:
    the seeds of other variants' runs this variant has no run of.
    """
    every_seed = sorted({r["seed"] for r in runs})
    out = []
    for v in variants:
        mine = [r for r in runs if r["variant"] == v.name]
        if not mine:
            continue
        metrics = {}
        for key in METRICS:
            values = [r["scores"][key] for r in mine if r["scores"].get(key) is not None]  # None: undefined there
            if values:
                metrics[key] = (float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, len(values))
            elif any(key in r["scores"] for r in mine):
                metrics[key] = None
        out.append({
            "variant": v.name, "factor": v.factor, "seeds": sorted(r["seed"] for r in mine),
            "missing_seeds": [s for s in every_seed if s not in {r["seed"] for r in mine}], "metrics": metrics,
            "seconds": float(np.mean([r["train_seconds"] for r in mine])),
        })
    return out


NOT_MEASURED = "–"
UNDEFINED = "n/a"


def _cell(row: Mapping[str, Any], key: str) -> str:
    """``mean ± std``; ``(n of m seeds)`` where the metric is undefined on some seeds; n/a where on all; – never measured."""
    if key not in row["metrics"]:
        return NOT_MEASURED
    stat = row["metrics"][key]
    if stat is None:  # undefined on every seed (e.g. a hallucination rate where no caption names an object)
        return UNDEFINED
    mean, std, n = stat
    text = f"{100 * mean:.1f}" if n == 1 else f"{100 * mean:.1f} ± {100 * std:.1f}"
    seeds = len(row["seeds"])
    return text if n == seeds else f"{text} ({n} of {seeds} seeds)"


def _name(row: Mapping[str, Any], name: str) -> str:
    """A row's name, with the seeds it has no run of (its means are over fewer seeds than the others')."""
    missing = row.get("missing_seeds")
    if not missing:
        return name
    return f"{name} (no run of seed{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))})"


def table_markdown(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Two tables: the model and SFT factors (every task after SFT), then the SCST reward mixes (captions)."""
    sft_rows = [r for r in rows if r["factor"] != "SCST reward"]
    scst_rows = [r for r in rows if r["factor"] == "SCST reward"]
    lines = []
    if sft_rows:
        keys = list(METRICS)
        lines += ["| factor | variant | " + " | ".join(METRICS[k] for k in keys) + " | train s |",
                  "|---|---|" + "---|" * len(keys) + "---|"]
        for r in sft_rows:
            cells = " | ".join(_cell(r, k) for k in keys)
            lines.append(f"| {r['factor']} | {_name(r, r['variant'])} | {cells} | {r['seconds']:.0f} |")
    if scst_rows:
        keys = ["cider", "sg_f1", "hallucination", "well_formed"]
        base = next((r for r in sft_rows if r["factor"] == "baseline"), None)
        lines += ["", "| SCST reward (from the baseline's SFT model) | " + " | ".join(METRICS[k] for k in keys) + " | train s |",
                  "|---|" + "---|" * len(keys) + "---|"]
        if base is not None:
            lines.append(f"| {_name(base, 'none (the SFT model)')} | " + " | ".join(_cell(base, k) for k in keys) + " | |")
        for r in scst_rows:
            lines.append(f"| {_name(r, r['variant'].removeprefix('SCST: '))} | " + " | ".join(_cell(r, k) for k in keys)
                         + f" | {r['seconds']:.0f} |")
    return lines


def plot_png(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """One panel per headline metric: a bar per variant with the spread over seeds as an error bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PLOTTED), figsize=(3.3 * len(PLOTTED), 0.32 * len(rows) + 1.6), sharey=True, squeeze=False)
    names = [r["variant"] for r in rows]
    for ax, key in zip(axes[0], PLOTTED):
        stats = [r["metrics"].get(key) for r in rows]  # None: undefined or never measured, no bar
        ys = [i for i, s in enumerate(stats) if s is not None]
        means, spreads = [100 * stats[i][0] for i in ys], [100 * stats[i][1] for i in ys]
        top = float("inf") if key == "cider" else 100.0  # the others are shares: a bar's spread stops at 0 and 100
        xerr = [[min(s, m) for m, s in zip(means, spreads)], [min(s, top - m) for m, s in zip(means, spreads)]]
        ax.barh(ys, means, xerr=xerr, color="tab:blue", alpha=0.8, error_kw={"elinewidth": 1, "capsize": 2})
        ax.set_title(METRICS[key] + " (%)", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(names)), names, fontsize=8)
    axes[0][0].invert_yaxis()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def write_outputs(out: Path, info: Mapping[str, Any], runs: Sequence[Mapping[str, Any]],
                  variants: Sequence[Variant]) -> tuple[Path, Path]:
    """Write ``ablation.md``, ``ablation.png`` and ``ablation.json`` (each atomically); returns the table and plot paths."""
    rows = summarise(runs, variants)
    s = info["settings"]
    seeds = ", ".join(str(x) for x in sorted({r["seed"] for r in runs}))  # this and earlier invocations' runs
    lines = [
        "# Aerith ablation on SynthRS",
        "",
        f"{info['date']}, {info['machine']}.",
        "",
        f"aerith-tiny variants from random weights (the quickstart recipe with one factor changed), each trained "
        f"for the same steps (align {s['align_steps']}, SFT {s['sft_steps']}, SCST {s['scst_steps']}) on "
        f"{s['scenes']} SynthRS scenes of {s['size']} px, over seeds {seeds}; test split"
        + (f" (first {s['eval_limit']} samples per task)" if s["eval_limit"] else "")
        + ". Mean ± sample standard deviation over seeds, percentages (CIDEr-D x100); "
        "\"(n of m seeds)\": the metric is undefined on the other seeds (e.g. a hallucination rate where no caption "
        "names an object), n/a: undefined on every seed, –: not measured; \"(no run of seed S)\" after a variant: "
        "its means leave out seeds the other variants ran. Random-initialised tiny towers "
        "on synthetic scenes rank training recipes and connectors, not pretrained encoders.",
        "",
        *table_markdown(rows),
        "",
        f"![ablation]({PLOT})",
    ]
    if s.get("quick"):
        lines[4:4] = ["**Quick grid: a few steps to check the plumbing; its numbers mean nothing.**", ""]
    atomic_write_bytes(out / PLOT, plot_png(rows))
    atomic_write_text(out / TABLE, "\n".join(lines) + "\n")
    atomic_write_text(out / "ablation.json", json.dumps({**info, "runs": list(runs), "summary": rows}, indent=2) + "\n")
    return out / TABLE, out / PLOT
