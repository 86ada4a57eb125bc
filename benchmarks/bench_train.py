"""Training throughput and model FLOPs utilisation (MFU) of `aerith sft` on this machine's CPU.

The whole training loop (``aerith.train.loop.train``: data loading, collation,
forward, backward, AdamW, logging) runs the aerith-tiny and instructblip-tiny
presets on fake UCM images; samples/s is taken over the steady-state window
after the first logging window. FLOPs per step are *measured* with
``torch.utils.flop_counter.FlopCounterMode`` on one forward+backward of the
same objective and batch (matmuls, convolutions and attention; elementwise ops
are not counted). The peak is the machine's own fp32 matmul rate, measured in
the same run before and after each model (best of several 2048x2048 matmuls; the
best of all is used, since other processes may share the cores). Peak memory is the process's
max RSS. No GPU machine was lent to this task, so there are no GPU numbers.

Run: ``python benchmarks/bench_train.py``.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STEPS = 30
WINDOW = 10


def matmul_peak(n: int = 2048, repeats: int = 8) -> float:
    """Best fp32 matmul FLOP/s of this process (same threads as training)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def _recipe(root: Path, out: Path, init: str, batch: int) -> dict:
    aerith = init.startswith("aerith")
    return {
        "stage": "sft",
        "out_dir": str(out),
        "model": {"init": init, "lora": {"r": 8, "alpha": 16, "dropout": 0.0} if aerith else None},
        "trainable": ["towers", "clip_proj", "dino_head", "pooler", "projector", "lora", "language_model"]
        if aerith
        else ["vision_model", "qformer", "query_tokens", "language_projection", "language_model"],
        "data": {"batch_size": batch, "train": [{"name": "ucm", "root": str(root), "split": "train"}], "val": []},
        "optim": {"lr": 1.0e-4},
        "schedule": {"max_steps": STEPS, "warmup_steps": 1},
        "logging": {"every": WINDOW, "tensorboard": False, "progress": False},
    }


def _flops_per_step(config, instruction_fn) -> float:
    """Measured FLOPs of one forward+backward of the objective on one micro-batch."""
    from torch.utils.flop_counter import FlopCounterMode

    from aerith.train.backbones import load_backbone
    from aerith.train.data import load_sources
    from aerith.train.sft import SFT

    backbone = load_backbone(config.model.init)
    if config.model.lora:
        backbone.add_lora(config.model.lora)
    backbone.set_trainable(config.trainable)
    backbone.train_mode()
    ds = load_sources(config.data.train)[0]
    names = getattr(ds, "class_names", None) or None  # as the loop passes them (UCM's glued names)
    items = [instruction_fn(ds[i], classes=ds.classes, seed=config.seed, index=i, names=names)
             for i in range(config.data.batch_size)]
    batch = SFT.collate(backbone, items, config.data.max_length)
    objective = SFT.objective(backbone, None)
    counter = FlopCounterMode(display=False)
    with counter:
        objective(batch).backward()
    return float(counter.get_total_flops())


def run() -> dict:
    from aerith.train.commands import build_config
    from aerith.train.loop import train
    from tests.fakes.ucm.data import write_fake
    from aerith.train.data import default_instruction_fn

    instruction = default_instruction_fn()  # what `aerith sft` makes of each sample

    peaks = [matmul_peak()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = write_fake(Path(tmp) / "ucm", split_files=True)
        for init, batch in (("aerith-tiny", 8), ("aerith-tiny", 16), ("instructblip-tiny", 8)):
            out = Path(tmp) / f"{init}-{batch}"
            recipe = Path(tmp) / f"{init}-{batch}.yaml"
            recipe.write_text(yaml.safe_dump(_recipe(root, out, init, batch)))
            config = build_config("sft", recipe)
            train(config, instruction_fn=instruction)
            records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
            steady = [r["samples_per_s"] for r in records if "samples_per_s" in r and r["step"] > WINDOW]
            sps = sum(steady) / len(steady)
            flops = _flops_per_step(config, instruction)
            achieved = flops / batch * sps
            peaks.append(matmul_peak())
            rows.append(
                {
                    "model": init,
                    "batch": batch,
                    "samples_per_s": round(sps, 1),
                    "gflop_per_sample": round(flops / batch / 1e9, 3),
                    "achieved_gflops": round(achieved / 1e9, 2),
                    "achieved": achieved,
                }
            )
    peak = max(peaks)  # other processes share the cores; the best measurement is the machine's peak
    for row in rows:
        row["mfu"] = round(row.pop("achieved") / peak, 4)
    return {
        "threads": torch.get_num_threads(),
        "matmul_peak_gflops": round(peak / 1e9, 1),
        "matmul_peak_samples_gflops": [round(p / 1e9, 1) for p in peaks],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rows": rows,
    }


def to_markdown(result: dict) -> str:
    lines = [
        f"fp32 matmul peak measured in the same run: {result['matmul_peak_gflops']} GFLOP/s "
        f"({result['threads']} threads; best of {result['matmul_peak_samples_gflops']}). Peak RSS of the whole benchmark process: {result['peak_rss_mib']} MiB.",
        "",
        "| model | batch | samples/s | GFLOP/sample (measured) | achieved GFLOP/s | MFU |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['samples_per_s']} | {r['gflop_per_sample']} | {r['achieved_gflops']} | {r['mfu']:.1%} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(to_markdown(run()))
