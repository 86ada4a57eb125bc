"""Evaluation throughput: images/s of `aerith eval` with batched generation (batch 16) against batch size 1.

Both runs evaluate the same ``N_SAMPLES`` SynthRS VQA questions (written first,
not timed) with the random-weight ``aerith-tiny`` preset through
:func:`aerith.eval.runner.evaluate`, greedy, with ``min_new_tokens`` equal to
``max_new_tokens`` so that every answer has the same length in both runs. The
questions differ in length, so batches are left-padded as in real use.
"generate images/s" counts only the time inside ``generate`` (what batching
changes); "end-to-end images/s" is the whole ``evaluate`` call (image loading,
prompts, JSONL writes, scoring, results files). A warm-up call precedes the
timed runs. The two batch sizes alternate over ``ROUNDS`` rounds so that load from
other processes on a shared machine hits both alike; the best round of each is
reported (and the median). The ratio is batched over batch-1, in the same process.

Run: ``python benchmarks/bench_eval.py``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

N_SAMPLES = 64
NEW_TOKENS = 16
BATCH = 16
ROUNDS = 3


def run(n_samples: int = N_SAMPLES, new_tokens: int = NEW_TOKENS, batch: int = BATCH, rounds: int = ROUNDS) -> dict[str, Any]:
    from aerith.data.synthrs import generate
    from aerith.eval.runner import evaluate
    from aerith.infer.vlm import AerithVLM

    torch.manual_seed(0)
    vlm = AerithVLM.from_preset("aerith-tiny", seed=0, device="cpu")
    gen = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens}
    runs: dict[int, list[dict[str, float]]] = {1: [], batch: []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synthrs"
        # about 0.6 test questions per scene (six questions, 10% of scenes in test): 3 scenes per sample is plenty
        generate(root, n=3 * n_samples, size=64, seed=0)
        evaluate(vlm, "synthrs-vqa", root, Path(tmp) / "warmup", limit=batch, batch_size=batch, generate_kwargs=gen, progress=False)
        # the two batch sizes alternate, so that load from other processes hits both alike
        for r in range(rounds):
            for bs in runs:
                tic = time.perf_counter()
                result = evaluate(
                    vlm, "synthrs-vqa", root, Path(tmp) / f"r{r}-bs{bs}", limit=n_samples, batch_size=bs,
                    generate_kwargs=gen, progress=False,
                )
                wall = time.perf_counter() - tic
                if result["counts"]["samples"] != n_samples:
                    raise RuntimeError(f"SynthRS test split has {result['counts']['samples']} questions, wanted {n_samples}")
                runs[bs].append({"generate": n_samples / result["generation"]["seconds"], "end_to_end": n_samples / wall})
    rows = []
    for bs, measured in runs.items():
        gen_rates = [m["generate"] for m in measured]
        e2e_rates = [m["end_to_end"] for m in measured]
        rows.append(
            {
                "batch_size": bs,
                "generate_images_per_s_best": max(gen_rates),
                "generate_images_per_s_median": statistics.median(gen_rates),
                "end_to_end_images_per_s_best": max(e2e_rates),
                "end_to_end_images_per_s_median": statistics.median(e2e_rates),
            }
        )
    one, many = rows
    return {
        "model": "aerith-tiny (random weights)",
        "benchmark": "synthrs-vqa",
        "samples": n_samples,
        "rounds": rounds,
        "new_tokens": new_tokens,
        "threads": torch.get_num_threads(),
        "rows": rows,
        "ratio_generate": many["generate_images_per_s_best"] / one["generate_images_per_s_best"],
        "ratio_end_to_end": many["end_to_end_images_per_s_best"] / one["end_to_end_images_per_s_best"],
        "ratio_generate_median": many["generate_images_per_s_median"] / one["generate_images_per_s_median"],
    }


def to_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"{result['model']}, {result['benchmark']}, {result['samples']} questions per run, greedy, exactly "
        f"{result['new_tokens']} new tokens per answer, CPU, {result['threads']} torch threads; "
        f"{result['rounds']} alternating rounds, best and median.",
        "",
        "| batch size | generate images/s best | generate images/s median | end-to-end images/s best | end-to-end images/s median |",
        "|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['batch_size']} | {r['generate_images_per_s_best']:.2f} | {r['generate_images_per_s_median']:.2f} "
            f"| {r['end_to_end_images_per_s_best']:.2f} | {r['end_to_end_images_per_s_median']:.2f} |"
        )
    bs = result["rows"][1]["batch_size"]
    lines += [
        "",
        f"Batch {bs} over batch 1 (best of rounds): {result['ratio_generate']:.2f}x images/s in generate, "
        f"{result['ratio_end_to_end']:.2f}x end to end (median rounds, generate: {result['ratio_generate_median']:.2f}x).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(to_markdown(run()))
