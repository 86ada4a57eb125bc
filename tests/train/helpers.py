"""Shared pieces of the training tests: SynthRS data sources, a recipe writer, a command runner."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import yaml

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Instruction:
    task: str
    prompt: str
    target: str
    sample: Any


TASKS = ("cls", "vqa", "cap", "vg")


def synthrs_sources(root: Path, split: str, tasks: tuple[str, ...] = TASKS) -> list[dict[str, Any]]:
    """One recipe data source per SynthRS task, as ``configs/sft-aerith-tiny.yaml`` lists them."""
    return [{"name": "synthrs", "root": str(root), "split": split, "options": {"task": t}} for t in tasks]


def write_recipe(path: Path, data_root: Path, out_dir: Path, stage: str = "sft", **sections: Any) -> Path:
    """A small recipe on the SynthRS set at ``data_root``; ``sections`` update the defaults (one level deep).

    SFT trains on the four tasks (cls, vqa, cap, vg); align reads each image once (the captioning
    source). Validation reads captions, classes, boxes, then questions, up to ``max_val_samples``
    (the fixture's 4 val scenes: 4 + 4 + 12 + 12 of 24).
    """
    recipe: dict[str, Any] = {
        "stage": stage,
        "out_dir": str(out_dir),
        "seed": 0,
        "model": {"init": "aerith-tiny", "seed": 0, "lora": {"r": 4, "alpha": 8, "dropout": 0.0} if stage == "sft" else None},
        "trainable": ["dino_head"] if stage == "align" else ["towers", "clip_proj", "dino_head", "pooler", "projector", "lora", "language_model"],
        "data": {
            "batch_size": 4,
            "max_val_samples": 32,
            "train": synthrs_sources(data_root, "train", ("cap",) if stage == "align" else TASKS),
            "val": synthrs_sources(data_root, "val", ("cap",) if stage == "align" else ("cap", "cls", "vg", "vqa")),
        },
        "optim": {"lr": 1.0e-3, "grad_clip": 1.0},
        "schedule": {"max_steps": 20, "warmup_steps": 2, "schedule": "cosine"},
        "checkpoint": {"every": 0, "keep_last": 2},
        "logging": {"every": 1, "val_every": 0, "tensorboard": True, "progress": False},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(recipe.get(key), dict):
            recipe[key] = {**recipe[key], **value}
        else:
            recipe[key] = value
    path.write_text(yaml.safe_dump(recipe))
    return path


def run_command(
    args: list[str], *, timeout: float = 240, launcher: list[str] | None = None, threads: int = 2, wait: bool = True,
    env: dict[str, str] | None = None,
):
    """Run ``aerith <args>`` (``python -m aerith.cli``, or under ``launcher``) in a subprocess.

    A command still running after ``timeout`` seconds fails the test with every process's Python stack:
    it and its descendants (torchrun starts its workers in sessions of their own) get SIGABRT, which
    ``PYTHONFAULTHANDLER`` turns into a traceback of each thread, and then SIGKILL, so no worker
    outlives the test.
    """
    env = {**os.environ, **(env or {}), "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONPATH": str(REPO), "PYTHONFAULTHANDLER": "1", "PYTHONUNBUFFERED": "1"}  # fmt: skip
    cmd = [*(launcher or [sys.executable]), "-m", "aerith.cli", *args]
    if not wait:
        return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        root = psutil.Process(proc.pid)
        tree = [root, *root.children(recursive=True)]
        for signum in (signal.SIGABRT, signal.SIGKILL):
            for process in tree:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.send_signal(signum)
            time.sleep(5 if signum == signal.SIGABRT else 0)  # the fault handlers write their tracebacks
        out, err = proc.communicate()
        raise AssertionError(f"{' '.join(cmd)} ran past {timeout} s; the stacks of its processes:\n{out}\n{err}") from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
