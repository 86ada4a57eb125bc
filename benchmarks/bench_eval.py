"""Evaluation throughput: images/s of `aerith eval` with batched generation (batch 16) against batch size 1, and with 2 processes against 1.

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

Processes: the whole command ``aerith eval aerith-tiny --benchmark synthrs-vqa`` on
``PROC_SAMPLES`` questions, batch 16, ``PROC_NEW_TOKENS`` tokens per answer, run as one process
with all cores as torch threads, as one process with half of them, and as ``accelerate launch``
with 2 gloo processes (the cores split between them), alternating over ``PROC_ROUNDS`` rounds;
best round of each. Every run sets ``OMP_WAIT_POLICY=PASSIVE`` (as ``aerith quickstart`` does):
spinning OpenMP threads slow a multi-threaded process by an order of magnitude as soon as other
processes share the cores, which would measure the machine's load rather than the sharding.
"generation images/s" is the samples answered over the generation time of the slowest process
(``results.json``: ``generation.images_per_s``); "command" is the wall time of the whole command,
start-up (imports, model build, the launcher) included.

Run: ``python benchmarks/bench_eval.py`` (``--processes-only`` for the second part).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

N_SAMPLES = 64
NEW_TOKENS = 16
BATCH = 16
ROUNDS = 3
PROC_SAMPLES = 384
PROC_NEW_TOKENS = 32
PROC_ROUNDS = 2
REPO = Path(__file__).resolve().parents[1]


def run(processes_only: bool = False) -> dict[str, Any]:
    out = {} if processes_only else run_batching()
    out["processes"] = run_processes()
    return out


def run_batching(n_samples: int = N_SAMPLES, new_tokens: int = NEW_TOKENS, batch: int = BATCH, rounds: int = ROUNDS) -> dict[str, Any]:
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


def _eval_command(root: Path, out: Path, processes: int, threads: int) -> tuple[float, dict[str, Any]]:
    args = ["-m", "aerith.cli", "eval", "aerith-tiny", "--benchmark", "synthrs-vqa", "--root", str(root), "--out", str(out),
            "--limit", str(PROC_SAMPLES), "--batch-size", str(BATCH), "--max-new-tokens", str(PROC_NEW_TOKENS), "--no-progress",
            "--device", "cpu"]  # the default is cuda where present: one process on a GPU against two gloo CPU processes
    if processes == 1:
        cmd = [sys.executable, *args]
    else:
        accelerate = shutil.which("accelerate")
        if accelerate is None:
            raise RuntimeError("the accelerate launcher is not installed")
        cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", *args]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE", "ACCELERATE_USE_CPU": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    tic = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - tic
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall, json.loads((out / "results.json").read_text())


def run_processes(rounds: int = PROC_ROUNDS, cores: int | None = None) -> dict[str, Any]:
    """The same evaluation as one process and as two (``accelerate launch``), alternating."""
    from aerith.data.synthrs import generate

    cores = cores or os.cpu_count() or 2
    load_before = os.getloadavg()[0]
    half = max(1, cores // 2)
    modes = [(1, cores), (1, half), (2, half)]  # (processes, torch threads each)
    runs: dict[tuple[int, int], list[dict[str, float]]] = {m: [] for m in modes}
    same = True
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synthrs"
        generate(root, n=3 * PROC_SAMPLES, size=64, seed=0)
        reference = None
        for r in range(rounds):
            for procs, threads in modes:
                out = Path(tmp) / f"r{r}-p{procs}-t{threads}"
                wall, result = _eval_command(root, out, procs, threads)
                if result["counts"]["samples"] != PROC_SAMPLES:
                    raise RuntimeError(f"synthrs-vqa test split has {result['counts']['samples']} questions, wanted {PROC_SAMPLES}")
                predictions = (out / "predictions.jsonl").read_bytes()
                reference = reference or predictions
                same = same and predictions == reference
                runs[(procs, threads)].append(
                    {"generation": result["generation"]["images_per_s"], "command": PROC_SAMPLES / wall, "wall": wall}
                )
    rows = [
        {"processes": p, "threads_each": t,
         "generation_images_per_s_best": max(m["generation"] for m in runs[(p, t)]),
         "command_images_per_s_best": max(m["command"] for m in runs[(p, t)]),
         "command_seconds_best": min(m["wall"] for m in runs[(p, t)])}
        for p, t in modes
    ]
    one, one_half, two = rows
    return {
        "samples": PROC_SAMPLES, "new_tokens": PROC_NEW_TOKENS, "batch": BATCH, "rounds": rounds, "cores": cores, "rows": rows,
        "ratio_generation": two["generation_images_per_s_best"] / one["generation_images_per_s_best"],
        "ratio_command": two["command_images_per_s_best"] / one["command_images_per_s_best"],
        "ratio_generation_same_threads": two["generation_images_per_s_best"] / one_half["generation_images_per_s_best"],
        "same_predictions": same,
        "load_average": [load_before, os.getloadavg()[0]],
    }


def _processes_markdown(p: dict[str, Any]) -> list[str]:
    lines = [
        f"Processes: `aerith eval aerith-tiny --benchmark synthrs-vqa`, {p['samples']} questions, batch {p['batch']}, "
        f"{p['new_tokens']} new tokens per answer (greedy, random weights), {p['cores']} cores, OMP_WAIT_POLICY=PASSIVE; "
        f"one process against `accelerate launch` with 2 gloo processes; best of {p['rounds']} alternating rounds.",
        "",
        "| processes | torch threads each | generation images/s | whole command (s) | whole command images/s |",
        "|---|---|---|---|---|",
    ]
    for r in p["rows"]:
        lines.append(f"| {r['processes']} | {r['threads_each']} | {r['generation_images_per_s_best']:.1f} | "
                     f"{r['command_seconds_best']:.1f} | {r['command_images_per_s_best']:.1f} |")
    lines += ["", f"2 processes over 1 process with all {p['cores']} cores: {p['ratio_generation']:.2f}x images/s in generation, "
                  f"{p['ratio_command']:.2f}x for the whole command (start-up included); over 1 process with the same "
                  f"threads per process: {p.get('ratio_generation_same_threads', float('nan')):.2f}x in generation. "
                  f"predictions.jsonl identical in every run: {'yes' if p['same_predictions'] else 'NO'}."]
    if "load_average" in p:
        lines += ["", f"Load average (1 min) at the start and end: {p['load_average'][0]:.1f} and {p['load_average'][1]:.1f} "
                      f"on {p['cores']} cores (other processes shared the machine)."]
    return lines


def to_markdown(result: dict[str, Any]) -> str:
    if "rows" not in result:
        return "\n".join(_processes_markdown(result["processes"]))
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
    if "processes" in result:
        lines += ["", *_processes_markdown(result["processes"])]
    return "\n".join(lines)


if __name__ == "__main__":
    print(to_markdown(run(processes_only="--processes-only" in sys.argv)))
