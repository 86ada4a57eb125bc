"""Training throughput and model FLOPs utilisation (MFU) of `aerith sft` on the device it trains on here.

The whole training loop (``aerith.train.loop.train``: data loading, collation,
forward, backward, AdamW, logging) runs the aerith-tiny and instructblip-tiny
presets on fake UCM images; samples/s is taken over the steady-state window
after the first logging window. FLOPs per step are *measured* with
``torch.utils.flop_counter.FlopCounterMode`` on one forward+backward of the
same objective and batch (matmuls, convolutions and attention; elementwise ops
are not counted). The peak is the training device's own matmul rate, measured in
the same run before and after each model (best of several square matmuls; the
best of all is used, since other processes may share the cores): fp32 2048x2048 on the
CPU; on a CUDA GPU, where ``aerith sft`` trains under bf16 autocast, bf16 8192x8192,
timed between ``torch.cuda.synchronize`` calls. Peak memory is the process's max RSS.

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


def peak_device() -> tuple[torch.device, torch.dtype]:
    """Where ``aerith sft`` trains here (accelerate's device: a CUDA GPU if there is one) and the dtype its
    matmuls run in there (bf16 under the ``auto`` mixed precision where the GPU has it, else fp32: as
    ``aerith.train.loop.resolve_mixed_precision``)."""
    if not torch.cuda.is_available():
        return torch.device("cpu"), torch.float32
    return torch.device("cuda"), torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32


def matmul_peak(n: int | None = None, repeats: int = 8) -> float:
    """Best matmul FLOP/s of the training device in its training dtype (on the CPU: this process's threads)."""
    device, dtype = peak_device()
    n = n or (8192 if device.type == "cuda" else 2048)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    sync()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        sync()
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
    device, dtype = peak_device()
    return {
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU",
        "peak_dtype": str(dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "matmul_peak_gflops": round(peak / 1e9, 1),
        "matmul_peak_samples_gflops": [round(p / 1e9, 1) for p in peaks],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rows": rows,
    }


def to_markdown(result: dict) -> str:
    lines = [
        f"Trained on: {result.get('device', 'CPU')}. {result.get('peak_dtype', 'float32')} matmul peak of that device measured "
        f"in the same run: {result['matmul_peak_gflops']} GFLOP/s "
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
