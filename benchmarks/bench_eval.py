"""Evaluation throughput: images/s of `aerith eval` with batched generation (batch 16) against batch size 1.

Both runs evaluate the same ``N_SAMPLES`` SynthRS VQA questions (written first,
not timed) with the random-weight ``aerith-tiny`` preset through
:func:`aerith.eval.runner.evaluate`, greedy, with ``min_new_tokens`` equal to
``max_new_tokens`` so that every answer has the same length in both runs. The
questions differ in length, so batches are left-padded as in real use.
"generate images/s" counts only the time inside ``generate`` (what batching
changes); "end-to-end images/s" is the whole ``evaluate`` call (image loading,
prompts, JSONL writes, scoring, results files). A warm-up call precedes the
timed runs. The ratio is batched over batch-1, measured in the same process.

Run: ``python benchmarks/bench_eval.py``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch

N_SAMPLES = 64
NEW_TOKENS = 16
BATCH = 16


def run(n_samples: int = N_SAMPLES, new_tokens: int = NEW_TOKENS, batch: int = BATCH) -> dict[str, Any]:
    from aerith.data.synthrs import generate
    from aerith.eval.runner import evaluate
    from aerith.infer.vlm import AerithVLM

    torch.manual_seed(0)
    vlm = AerithVLM.from_preset("aerith-tiny", seed=0, device="cpu")
    gen = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synthrs"
        # six questions per scene; 10% of scenes are test, so write enough scenes for n_samples test questions
        generate(root, n=max(40, 2 * n_samples), size=64, seed=0)
        evaluate(vlm, "synthrs-vqa", root, Path(tmp) / "warmup", limit=batch, batch_size=batch, generate_kwargs=gen, progress=False)
        for bs in (1, batch):
            tic = time.perf_counter()
            result = evaluate(
                vlm, "synthrs-vqa", root, Path(tmp) / f"bs{bs}", limit=n_samples, batch_size=bs, generate_kwargs=gen, progress=False
            )
            wall = time.perf_counter() - tic
            g = result["generation"]
            rows.append(
                {
                    "batch_size": bs,
                    "samples": result["counts"]["samples"],
                    "generate_s": g["seconds"],
                    "generate_images_per_s": g["images_per_s"],
                    "end_to_end_s": wall,
                    "end_to_end_images_per_s": result["counts"]["samples"] / wall,
                }
            )
    one, many = rows
    return {
        "model": "aerith-tiny (random weights)",
        "benchmark": "synthrs-vqa",
        "new_tokens": new_tokens,
        "threads": torch.get_num_threads(),
        "rows": rows,
        "ratio_generate": many["generate_images_per_s"] / one["generate_images_per_s"],
        "ratio_end_to_end": many["end_to_end_images_per_s"] / one["end_to_end_images_per_s"],
    }


def to_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"{result['model']}, {result['benchmark']}, greedy, exactly {result['new_tokens']} new tokens per answer, "
        f"CPU, {result['threads']} torch threads.",
        "",
        "| batch size | samples | generate s | generate images/s | end-to-end s | end-to-end images/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['batch_size']} | {r['samples']} | {r['generate_s']:.2f} | {r['generate_images_per_s']:.2f} "
            f"| {r['end_to_end_s']:.2f} | {r['end_to_end_images_per_s']:.2f} |"
        )
    bs = result["rows"][1]["batch_size"]
    lines += [
        "",
        f"Batch {bs} over batch 1: {result['ratio_generate']:.2f}x images/s in generate, "
        f"{result['ratio_end_to_end']:.2f}x end to end.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(to_markdown(run()))
